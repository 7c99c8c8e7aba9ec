// Path evaluation: every segment kind, projections, optional reads, and the exact text of
// every PathError.
#include "kotoba/vm/path.h"

#include "vm/value_testing.h"

#include <doctest/doctest.h>

#include <limits>
#include <vector>

using namespace kotoba;
using kotoba::testing::failMessage;
using kotoba::testing::json;
using kotoba::testing::okJson;
using kotoba::testing::okValue;
using Kind = vm::PathSegment::Kind;

namespace {

vm::PathSegment member(std::string name) { return {Kind::Member, std::move(name), 0}; }
vm::PathSegment index(int64_t position) { return {Kind::Index, {}, position}; }
vm::PathSegment projection() { return {Kind::Project, {}, 0}; }
vm::PathSegment dynamic(int64_t slot) { return {Kind::Dynamic, {}, slot}; }

vm::PathDescriptor path(std::string text, std::vector<vm::PathSegment> segments) {
  return vm::PathDescriptor{std::move(text), std::move(segments)};
}

// A run's state as the roots would show it.
const char *kResults = R"({
  "pay": {"ids": [7, 8], "status": "ok", "amount": 12.5, "note": null},
  "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}, {"qty": 3}],
  "empty": [],
  "matrix": [[1, 2], [3, 4]],
  "odd key": {"with space": true},
  "big": {"k1": 1, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6, "k7": 7, "k8": 8, "k9": 9}
})";

Result<Value> read(const vm::PathDescriptor &descriptor, std::vector<Value> dynamics = {},
                   PathMode mode = PathMode::Required) {
  return evaluatePath(json(kResults), descriptor, dynamics, mode);
}

Result<Value> readOptional(const vm::PathDescriptor &descriptor,
                           std::vector<Value> dynamics = {}) {
  return read(descriptor, std::move(dynamics), PathMode::Optional);
}

} // namespace

TEST_CASE("members, indexes and negative indexes lead to values") {
  CHECK(okJson(read(path("$.results.pay.status", {member("pay"), member("status")}))) ==
        R"("ok")");
  CHECK(okJson(read(path("$.results.pay.ids[0]", {member("pay"), member("ids"), index(0)}))) ==
        "7");
  CHECK(okJson(read(path("$.results.pay.ids[-1]", {member("pay"), member("ids"), index(-1)}))) ==
        "8");
  CHECK(okJson(read(path("$.results.pay.ids[-2]", {member("pay"), member("ids"), index(-2)}))) ==
        "7");
  CHECK(okJson(read(path("$.results['odd key']['with space']",
                         {member("odd key"), member("with space")}))) == "true");
  CHECK(okJson(read(path("$.results", {}))) == toJson(json(kResults)));
}

TEST_CASE("a present null is a value like any other") {
  Result<Value> note = read(path("$.results.pay.note", {member("pay"), member("note")}));
  CHECK(okValue(note).isNull());
  CHECK_FALSE(okValue(note).isMissing());
}

TEST_CASE("a missing member names the full path, the place and a close key") {
  CHECK(failMessage(read(path("$.results.pay.id", {member("pay"), member("id")})),
                    "PathError") == "$.results.pay.id: $.results.pay has no member 'id'; did "
                                    "you mean 'ids'?");
  CHECK(failMessage(read(path("$.results.pay.currency", {member("pay"), member("currency")})),
                    "PathError") ==
        "$.results.pay.currency: $.results.pay has no member 'currency'; its members are "
        "'ids', 'status', 'amount' and 'note'");
  CHECK(failMessage(read(path("$.results.big.zzz", {member("big"), member("zzz")})),
                    "PathError") == "$.results.big.zzz: $.results.big has no member 'zzz'");
  CHECK(failMessage(read(path("$.results.pays", {member("pays")})), "PathError") ==
        "$.results.pays: $.results has no member 'pays'; did you mean 'pay'?");
}

TEST_CASE("an empty object says so when a member is missing") {
  vm::PathDescriptor descriptor = path("$.vars.x", {member("x")});
  CHECK(failMessage(evaluatePath(json("{}"), descriptor, {}, PathMode::Required),
                    "PathError") == "$.vars.x: $.vars has no member 'x'; the object is empty");
}

TEST_CASE("a member of a non-object is a PathError") {
  CHECK(failMessage(read(path("$.results.pay.status.code",
                              {member("pay"), member("status"), member("code")})),
                    "PathError") == "$.results.pay.status.code: $.results.pay.status is string "
                                    "\"ok\", not an object, so it has no member 'code'");
  CHECK(failMessage(read(path("$.results.pay.ids.length",
                              {member("pay"), member("ids"), member("length")})),
                    "PathError") == "$.results.pay.ids.length: $.results.pay.ids is array "
                                    "[7,8], not an object, so it has no member 'length'");
  CHECK(failMessage(read(path("$.results.pay.note.text",
                              {member("pay"), member("note"), member("text")})),
                    "PathError") == "$.results.pay.note.text: $.results.pay.note is null, so it "
                                    "has no member 'text'; use ?? to supply a default for "
                                    "absent data");
}

TEST_CASE("an index out of range names the valid range") {
  CHECK(failMessage(read(path("$.results.pay.ids[5]", {member("pay"), member("ids"), index(5)})),
                    "PathError") == "$.results.pay.ids[5]: index 5 is out of range for "
                                    "$.results.pay.ids, which has 2 elements (valid: 0 to 1, "
                                    "or -2 to -1)");
  CHECK(failMessage(read(path("$.results.pay.ids[-3]",
                              {member("pay"), member("ids"), index(-3)})),
                    "PathError") == "$.results.pay.ids[-3]: index -3 is out of range for "
                                    "$.results.pay.ids, which has 2 elements (valid: 0 to 1, "
                                    "or -2 to -1)");
  CHECK(failMessage(read(path("$.results.empty[0]", {member("empty"), index(0)})),
                    "PathError") ==
        "$.results.empty[0]: index 0 is out of range for $.results.empty, which is empty");
  CHECK(failMessage(read(path("$.results.items[-9223372036854775808]",
                              {member("items"), index(std::numeric_limits<int64_t>::min())})),
                    "PathError")
            .find("index -9223372036854775808 is out of range") != std::string::npos);
}

TEST_CASE("indexing a non-array is a PathError") {
  CHECK(failMessage(read(path("$.results.pay[0]", {member("pay"), index(0)})), "PathError") ==
        "$.results.pay[0]: $.results.pay is object "
        "{\"ids\":[7,8],\"status\":\"ok\",\"amount\":12.5..., not an array, so it cannot be "
        "indexed with [0]");
  CHECK(failMessage(read(path("$.results.pay.note[1]",
                              {member("pay"), member("note"), index(1)})),
                    "PathError") == "$.results.pay.note[1]: $.results.pay.note is null, so it has "
                                    "no element [1]; use ?? to supply a default for absent data");
}

TEST_CASE("a projection applies the rest of the path to every element") {
  CHECK(okJson(read(path("$.results.matrix[*][0]", {member("matrix"), projection(), index(0)}))) ==
        "[1,3]");
  CHECK(okJson(read(path("$.results.matrix[*][*]",
                         {member("matrix"), projection(), projection()}))) == "[[1,2],[3,4]]");
  CHECK(okJson(read(path("$.results.items[*].qty",
                         {member("items"), projection(), member("qty")}))) == "[1,2,3]");
  CHECK(okJson(read(path("$.results.empty[*].x", {member("empty"), projection(), member("x")}))) ==
        "[]");
  CHECK(okJson(read(path("$.results.pay.ids[*]", {member("pay"), member("ids"), projection()}))) ==
        "[7,8]");
}

TEST_CASE("an error inside a projection names the element where it broke") {
  CHECK(failMessage(read(path("$.results.items[*].sku",
                              {member("items"), projection(), member("sku")})),
                    "PathError") == "$.results.items[*].sku: $.results.items[2] has no member "
                                    "'sku'; its members are 'qty'");
  CHECK(failMessage(read(path("$.results.pay[*]", {member("pay"), projection()})), "PathError")
            .find("not an array, so [*] cannot project over it") != std::string::npos);
  CHECK(failMessage(read(path("$.results.pay.note[*]",
                              {member("pay"), member("note"), projection()})),
                    "PathError") == "$.results.pay.note[*]: $.results.pay.note is null, so [*] "
                                    "has nothing to project over; use ?? to supply a default for "
                                    "absent data");
}

TEST_CASE("dynamic indexes index arrays with integers and objects with strings") {
  vm::PathDescriptor byIndex =
      path("$.results.pay.ids[$.vars.i]", {member("pay"), member("ids"), dynamic(0)});
  CHECK(okJson(read(byIndex, {Value(1)})) == "8");
  CHECK(okJson(read(byIndex, {Value(-2)})) == "7");
  CHECK(failMessage(read(byIndex, {Value(2)}), "PathError") ==
        "$.results.pay.ids[$.vars.i]: index 2 is out of range for $.results.pay.ids, which has 2 "
        "elements (valid: 0 to 1, or -2 to -1)");
  vm::PathDescriptor byKey = path("$.results[$.vars.step][\"status\"]",
                                  {dynamic(0), member("status")});
  CHECK(okJson(read(byKey, {Value("pay")})) == R"("ok")");
  CHECK(failMessage(read(byKey, {Value("pai")}), "PathError") ==
        "$.results[$.vars.step][\"status\"]: $.results has no member 'pai'; did you mean 'pay'?");
  CHECK(failMessage(read(byKey, {Value(1.0)}), "PathError") ==
        "$.results[$.vars.step][\"status\"]: the index [$.vars.step] is double 1.0; an index must "
        "be an integer (for an array) or a string key (for an object)");
  CHECK(failMessage(read(byIndex, {Value("x")}), "PathError")
            .find("$.results.pay.ids is array [7,8], not an object, so it has no member 'x'") !=
        std::string::npos);
}

TEST_CASE("several dynamic indexes are used in path order, also after a projection") {
  vm::PathDescriptor twoDynamics =
      path("$.results.matrix[$.vars.row][$.vars.column]",
           {member("matrix"), dynamic(0), dynamic(1)});
  CHECK(okJson(read(twoDynamics, {Value(1), Value(0)})) == "3");
  vm::PathDescriptor projected =
      path("$.results.matrix[*][$.vars.column]", {member("matrix"), projection(), dynamic(0)});
  CHECK(okJson(read(projected, {Value(-1)})) == "[2,4]");
}

TEST_CASE("brackets, quotes and calls inside segment text do not confuse the place names") {
  vm::PathDescriptor quoted = path("$.results['odd key']['a.b[c]']",
                                   {member("odd key"), member("a.b[c]")});
  CHECK(failMessage(read(quoted), "PathError") ==
        "$.results['odd key']['a.b[c]']: $.results['odd key'] has no member 'a.b[c]'; its members "
        "are 'with space'");
  vm::PathDescriptor call = path("json_decode($.vars.text).a", {member("a")});
  CHECK(failMessage(evaluatePath(json("{}"), call, {}, PathMode::Required), "PathError") ==
        "json_decode($.vars.text).a: json_decode($.vars.text) has no member 'a'; the object is "
        "empty");
}

TEST_CASE("a descriptor whose text does not match its segments still gets readable places") {
  vm::PathDescriptor handMade = path("", {member("pay"), member("weird key"), index(3)});
  CHECK(failMessage(read(handMade), "PathError") ==
        "$.pay['weird key'][3]: $.pay has no member 'weird key'; its members are 'ids', "
        "'status', 'amount' and 'note'");
}

TEST_CASE("optional reads turn absent data into the missing marker") {
  Value missingKey = okValue(readOptional(path("$.results.nope", {member("nope")})));
  CHECK(missingKey.isMissing());
  CHECK(okValue(readOptional(path("$.results.pay.ids[9]",
                                  {member("pay"), member("ids"), index(9)})))
            .isMissing());
  CHECK(okValue(readOptional(path("$.results.pay.note.text",
                                  {member("pay"), member("note"), member("text")})))
            .isMissing());
  CHECK(okValue(readOptional(path("$.results.pay.note[0]",
                                  {member("pay"), member("note"), index(0)})))
            .isMissing());
  CHECK(okValue(readOptional(path("$.results.pay.note[*]",
                                  {member("pay"), member("note"), projection()})))
            .isMissing());
  Value present = okValue(readOptional(path("$.results.pay.note", {member("pay"),
                                                                   member("note")})));
  CHECK(present.isNull());
  CHECK_FALSE(present.isMissing());
  CHECK(okJson(readOptional(path("$.results.pay.status", {member("pay"), member("status")}))) ==
        R"("ok")");
}

TEST_CASE("a projection with a missing element is missing as a whole in optional mode") {
  Value sku = okValue(readOptional(path("$.results.items[*].sku",
                                        {member("items"), projection(), member("sku")})));
  CHECK(sku.isMissing());
}

TEST_CASE("optional reads still fail on steps into the wrong kind") {
  CHECK(failMessage(readOptional(path("$.results.pay.status.code",
                                      {member("pay"), member("status"), member("code")})),
                    "PathError") == "$.results.pay.status.code: $.results.pay.status is string "
                                    "\"ok\", not an object, so it has no member 'code'");
  CHECK_FALSE(readOptional(path("$.results.pay[0]", {member("pay"), index(0)})).ok());
  CHECK_FALSE(readOptional(path("$.results.pay[*]", {member("pay"), projection()})).ok());
  CHECK_FALSE(readOptional(path("$.results.pay.ids[$.x]",
                                {member("pay"), member("ids"), dynamic(0)}),
                           {Value(true)})
                  .ok());
}

TEST_CASE("pathExists counts a present null as existing") {
  Value state = json(kResults);
  CHECK(okValue(pathExists(state, path("$.results.pay.note", {member("pay"), member("note")}),
                           {})));
  CHECK_FALSE(okValue(pathExists(state, path("$.results.pay.x", {member("pay"), member("x")}),
                                 {})));
  CHECK_FALSE(pathExists(state, path("$.results.pay.status.x",
                                     {member("pay"), member("status"), member("x")}),
                         {})
                  .ok());
}
