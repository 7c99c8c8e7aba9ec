// The .kbc format: exact round trips, determinism, the header and hash, every decoding
// error with its offset, and robustness against every single-byte change and every
// truncation of a real module.
#include "kotoba/vm/disassembler.h"
#include "kotoba/vm/json.h"
#include "kotoba/vm/module_format.h"

#include "vm/bytecode_samples.h"

#include <doctest/doctest.h>

#include <llvm/ADT/ArrayRef.h>
#include <llvm/Support/SHA256.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

using namespace kotoba;
using namespace kotoba::vm;

namespace {

// Hand-written .kbc bytes, for inputs the writer would never produce.
class KbcBytes {
public:
  KbcBytes &byte(uint8_t value) {
    body_.push_back(value);
    return *this;
  }
  KbcBytes &varint(uint64_t value) {
    while (value >= 0x80) {
      body_.push_back(static_cast<uint8_t>(value | 0x80));
      value >>= 7;
    }
    body_.push_back(static_cast<uint8_t>(value));
    return *this;
  }
  KbcBytes &raw(std::initializer_list<uint8_t> bytes) {
    body_.insert(body_.end(), bytes);
    return *this;
  }
  // A string pool holding these strings.
  KbcBytes &pool(std::initializer_list<std::string_view> strings) {
    varint(strings.size());
    for (std::string_view text : strings) {
      varint(text.size());
      body_.insert(body_.end(), text.begin(), text.end());
    }
    return *this;
  }
  // After the pool: no source files, then the constant count (`count` constants follow).
  KbcBytes &constants(uint64_t count) { return varint(0).varint(count); }
  // Empty activity, host activity and workflow tables.
  KbcBytes &emptyTables() { return varint(0).varint(0).varint(0); }
  // The format version the header states (default: the current one).
  KbcBytes &version(uint32_t number) {
    version_ = number;
    return *this;
  }

  [[nodiscard]] std::vector<uint8_t> file() const {
    std::vector<uint8_t> file(kKbcMagic.begin(), kKbcMagic.end());
    for (int shift = 0; shift < 32; shift += 8) {
      file.push_back(static_cast<uint8_t>(version_ >> shift));
    }
    file.resize(kKbcHeaderSize);
    file.insert(file.end(), body_.begin(), body_.end());
    fixHash(file);
    return file;
  }

  static void fixHash(std::vector<uint8_t> &file) {
    ModuleHash hash = computeContentHash(file);
    std::memcpy(file.data() + kKbcHashOffset, hash.data(), hash.size());
  }

private:
  std::vector<uint8_t> body_;
  uint32_t version_ = kKbcFormatVersion;
};

// A file whose one constant is encoded by `constant`.
std::vector<uint8_t> fileWithConstant(std::initializer_list<std::string_view> strings,
                                      std::initializer_list<uint8_t> constant) {
  return KbcBytes().pool(strings).constants(1).raw(constant).emptyTables().file();
}

// A copy, so that callers may pass a temporary result.
ModuleError onlyError(const ModuleResult<LoadedModule> &result) {
  REQUIRE_FALSE(result.ok());
  REQUIRE(result.errors().size() >= 1);
  return result.errors().front();
}

std::vector<uint8_t> sampleBytes() { return writeModule(samples::orderModule()); }

} // namespace

TEST_CASE("a module survives write, read, write byte for byte") {
  Module original = samples::orderModule();
  REQUIRE(verifyModule(original).empty());
  std::vector<uint8_t> bytes = writeModule(original);

  ModuleResult<LoadedModule> loaded = loadModule(bytes);
  REQUIRE(loaded.ok());
  CHECK(writeModule(loaded->module) == bytes);
  CHECK(disassemble(loaded->module) == disassemble(original));
  CHECK(loaded->hash == computeContentHash(bytes));

  const Module &copy = loaded->module;
  CHECK(copy.sourceFiles == original.sourceFiles);
  CHECK(copy.activities == original.activities);
  CHECK(copy.hostActivities == original.hostActivities);
  REQUIRE(copy.constants.size() == original.constants.size());
  for (size_t index = 0; index < copy.constants.size(); ++index) {
    CHECK(toJson(copy.constants[index]) == toJson(original.constants[index]));
  }
  REQUIRE(copy.workflows.size() == original.workflows.size());
  for (size_t index = 0; index < copy.workflows.size(); ++index) {
    const Workflow &a = copy.workflows[index];
    const Workflow &b = original.workflows[index];
    CHECK(a.id == b.id);
    CHECK(a.inputs == b.inputs);
    CHECK(a.outputs == b.outputs);
    CHECK(a.timeoutMs == b.timeoutMs);
    CHECK(a.registerCount == b.registerCount);
    REQUIRE(a.blocks.size() == b.blocks.size());
    for (size_t block = 0; block < a.blocks.size(); ++block) {
      CHECK(a.blocks[block].kind == b.blocks[block].kind);
      CHECK(a.blocks[block].code == b.blocks[block].code);
      CHECK(a.blocks[block].locations == b.blocks[block].locations);
    }
  }
}

TEST_CASE("the same module always serializes to the same bytes") {
  std::vector<uint8_t> first = writeModule(samples::orderModule());
  std::vector<uint8_t> second = writeModule(samples::orderModule());
  CHECK(first == second);
  CHECK(writeModule(samples::orderModule()) == first);
}

TEST_CASE("integers and doubles round-trip exactly and stay distinct") {
  const std::vector<Value> numbers = {
      Value(int64_t{0}),
      Value(0.0),
      Value(-0.0),
      Value(int64_t{1}),
      Value(1.0),
      Value(int64_t{-1}),
      Value(std::numeric_limits<int64_t>::min()),
      Value(std::numeric_limits<int64_t>::max()),
      Value(int64_t{(int64_t{1} << 53) + 1}),
      Value(9007199254740993.0),
      Value(std::numeric_limits<double>::denorm_min()),
      Value(std::numeric_limits<double>::max()),
      Value(-1.5),
      Value(0.1),
  };
  ModuleBuilder builder;
  std::vector<ConstIndex> indexes;
  for (const Value &number : numbers) {
    indexes.push_back(builder.addConstant(number));
  }
  // 0 and 0.0 and -0.0 are three constants, as are 1 and 1.0.
  CHECK(builder.module().constants.size() == numbers.size());

  ModuleResult<LoadedModule> read = readModule(writeModule(builder.module()));
  REQUIRE(read.ok());
  for (size_t index = 0; index < numbers.size(); ++index) {
    const Value &expected = numbers[index];
    const Value &actual = read->module.constant(indexes[index]);
    CAPTURE(toJson(expected));
    REQUIRE(actual.kind() == expected.kind());
    if (expected.isInt()) {
      CHECK(actual.asInt() == expected.asInt());
    } else {
      CHECK(std::bit_cast<uint64_t>(actual.asDouble()) ==
            std::bit_cast<uint64_t>(expected.asDouble()));
    }
  }
}

TEST_CASE("constants are de-duplicated exactly") {
  ModuleBuilder builder;
  Object ab;
  ab.set("a", Value(int64_t{1}));
  ab.set("b", Value(int64_t{2}));
  Object ba;
  ba.set("b", Value(int64_t{2}));
  ba.set("a", Value(int64_t{1}));
  ConstIndex first = builder.addConstant(Value(ab));
  CHECK(builder.addConstant(Value(ab)) == first);
  CHECK_FALSE(builder.addConstant(Value(ba)) == first);
  CHECK(builder.addConstant(Value("x")) == builder.addConstant(Value("x")));
  CHECK_FALSE(builder.addConstant(Value(int64_t{1})) == builder.addConstant(Value(1.0)));
  // ab, ba, "x", 1 and 1.0
  CHECK(builder.module().constants.size() == 5);
}

TEST_CASE("strings and values of every kind round-trip, unicode included") {
  Object nested;
  nested.set("emoji \xF0\x9F\x98\x80", Value(Array{Value(), Value(true), Value(false)}));
  nested.set("", Value("combining e\xCC\x81 and U+FFFE \xEF\xBF\xBE"));
  nested.set("deep", Value(Array{Value(Array{Value(Object{})})}));
  ModuleBuilder builder;
  builder.addConstant(Value(nested));
  builder.addConstant(Value(std::string(1000, 'x')));
  std::vector<uint8_t> bytes = writeModule(builder.module());
  ModuleResult<LoadedModule> read = readModule(bytes);
  REQUIRE(read.ok());
  CHECK(toJson(read->module.constants[0]) == toJson(Value(nested)));
  CHECK(read->module.constants[1].asString() == std::string(1000, 'x'));
  CHECK(writeModule(read->module) == bytes);
}

TEST_CASE("a declaration's source file is kept from format version 2 on") {
  Module module = samples::orderModule();
  REQUIRE_FALSE(module.activities.empty());
  std::vector<uint8_t> before = writeModule(module);
  REQUIRE(before[kKbcVersionOffset] == 1);

  module.sourceFiles.push_back("lib/acts.kotoba");
  module.activities.front().declaredIn = FileIndex{static_cast<uint32_t>(
      module.sourceFiles.size() - 1)};
  std::vector<uint8_t> bytes = writeModule(module);
  CHECK(bytes[kKbcVersionOffset] == 2);
  ModuleResult<LoadedModule> loaded = loadModule(bytes);
  REQUIRE(loaded.ok());
  CHECK(loaded->module.activities == module.activities);
  CHECK(writeModule(loaded->module) == bytes);
  CHECK(disassemble(loaded->module).find("  declared in f") != std::string::npos);

  // Version 1 bytes, as written before version 2 existed, still load: no file recorded.
  ModuleResult<LoadedModule> old = loadModule(before);
  REQUIRE(old.ok());
  CHECK_FALSE(old->module.activities.front().declaredIn);
  CHECK(writeModule(old->module) == before);
}

TEST_CASE("a declaration naming a source file the module lacks is rejected") {
  // One activity "a" (no timeout, retry or implementation) declared in file 0 of none.
  std::vector<uint8_t> bytes =
      KbcBytes().pool({"a"}).constants(0).varint(1).raw({0, 0, 0, 0, 0, 1, 0}).raw({0, 0}).file();
  const ModuleError &error = onlyError(readModule(bytes));
  CHECK(error.byteOffset == kKbcHeaderSize + 12);
  CHECK(error.message ==
        "activity source file index 0 out of range (the module has 0 source files)");

  // The same declaration in a version 1 file has no such field.
  std::vector<uint8_t> old =
      KbcBytes().version(1).pool({"a"}).constants(0).varint(1).raw({0, 0, 0, 0, 0}).raw({0, 0})
          .file();
  ModuleResult<LoadedModule> read = readModule(old);
  REQUIRE(read.ok());
  REQUIRE(read->module.activities.size() == 1);
  CHECK_FALSE(read->module.activities.front().declaredIn);
}

TEST_CASE("the header holds the magic, the version and the SHA-256 of the rest") {
  std::vector<uint8_t> bytes = sampleBytes();
  REQUIRE(bytes.size() > kKbcHeaderSize);
  CHECK(std::equal(kKbcMagic.begin(), kKbcMagic.end(), bytes.begin()));
  // The sample's declarations name no source file: the oldest format holds it.
  CHECK(bytes[kKbcVersionOffset] == kKbcOldestFormatVersion);
  CHECK(bytes[kKbcVersionOffset + 1] == 0);
  CHECK(bytes[kKbcVersionOffset + 2] == 0);
  CHECK(bytes[kKbcVersionOffset + 3] == 0);
  std::array<uint8_t, 32> expected = llvm::SHA256::hash(
      llvm::ArrayRef<uint8_t>(bytes.data() + kKbcHeaderSize, bytes.size() - kKbcHeaderSize));
  CHECK(std::equal(expected.begin(), expected.end(), bytes.begin() + kKbcHashOffset));

  // The hash of an empty body is the well-known SHA-256 of nothing.
  std::vector<uint8_t> headerOnly(kKbcHeaderSize);
  CHECK(hashToHex(computeContentHash(headerOnly)) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("the smallest module body reads") {
  ModuleResult<LoadedModule> read =
      readModule(KbcBytes().pool({}).constants(0).emptyTables().file());
  REQUIRE(read.ok());
  CHECK(read->module.workflows.empty());
  // ... but does not load: a module needs a workflow.
  ModuleResult<LoadedModule> loaded =
      loadModule(KbcBytes().pool({}).constants(0).emptyTables().file());
  CHECK(onlyError(loaded).message == "the module has no workflow");
}

TEST_CASE("header problems are reported at their offset") {
  SUBCASE("too short") {
    std::vector<uint8_t> bytes(10, 0);
    const ModuleError &error = onlyError(readModule(bytes));
    CHECK(error.byteOffset == 0u);
    CHECK(error.message == "the file is 10 bytes, shorter than the 44-byte .kbc header");
  }
  SUBCASE("not a .kbc file") {
    std::vector<uint8_t> bytes = sampleBytes();
    bytes[1] = 'X';
    const ModuleError &error = onlyError(readModule(bytes));
    CHECK(error.byteOffset == 0u);
    CHECK(error.message ==
          "not a .kbc file (the magic number is wrong); compile the .kotoba source with "
          "kotobac build");
  }
  SUBCASE("a newer format version") {
    std::vector<uint8_t> bytes = sampleBytes();
    bytes[kKbcVersionOffset] = 3;
    const ModuleError &error = onlyError(readModule(bytes));
    CHECK(error.byteOffset == kKbcVersionOffset);
    CHECK(error.message == "format version 3 is not supported (this build reads versions 1 to "
                           "2); rebuild the module with this kotobac");
  }
  SUBCASE("a corrupt body") {
    std::vector<uint8_t> bytes = sampleBytes();
    bytes.back() ^= 1;
    const ModuleError &error = onlyError(readModule(bytes));
    CHECK(error.byteOffset == kKbcHashOffset);
    CHECK(error.message.find("content hash mismatch (stored ") == 0);
    CHECK(error.message.find("): the file is corrupt") != std::string::npos);
    ReadOptions lenient;
    lenient.checkHash = false;
    // With the hash check off, the change itself (a column in the line table) is harmless.
    CHECK(readModule(bytes, lenient).ok());
  }
  SUBCASE("trailing bytes") {
    std::vector<uint8_t> bytes = sampleBytes();
    size_t end = bytes.size();
    bytes.push_back(0);
    bytes.push_back(0);
    KbcBytes::fixHash(bytes);
    const ModuleError &error = onlyError(readModule(bytes));
    CHECK(error.byteOffset == end);
    CHECK(error.message == "2 bytes after the end of the module");
  }
}

TEST_CASE("decoding errors name the offset and the problem") {
  constexpr uint64_t body = kKbcHeaderSize;
  SUBCASE("a varint that is not in its shortest form") {
    // The string pool count 0 spelled in two bytes.
    std::vector<uint8_t> bytes = KbcBytes().raw({0x80, 0x00}).file();
    const ModuleError &error = onlyError(readModule(bytes));
    CHECK(error.byteOffset == body);
    CHECK(error.message == "string pool size: varint is not in its shortest form");
  }
  SUBCASE("a varint longer than 64 bits") {
    std::vector<uint8_t> bytes =
        KbcBytes().raw({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}).file();
    CHECK(onlyError(readModule(bytes)).message == "string pool size: varint overflows 64 bits");
  }
  SUBCASE("a count larger than 32 bits") {
    std::vector<uint8_t> bytes = KbcBytes().varint(uint64_t{1} << 32).file();
    CHECK(onlyError(readModule(bytes)).message ==
          "string pool size: 4294967296 does not fit 32 bits");
  }
  SUBCASE("a count larger than the rest of the file") {
    std::vector<uint8_t> bytes = KbcBytes().varint(1000000).raw({0, 0, 0}).file();
    const ModuleError &error = onlyError(readModule(bytes));
    CHECK(error.byteOffset == body);
    CHECK(error.message ==
          "string pool size 1000000 is more than the 3 bytes that remain can hold");
  }
  SUBCASE("a string longer than the rest of the file") {
    std::vector<uint8_t> bytes = KbcBytes().varint(1).varint(50).raw({'a', 'b'}).file();
    const ModuleError &error = onlyError(readModule(bytes));
    CHECK(error.byteOffset == body + 1);
    CHECK(error.message == "string length 50 is more than the 2 bytes that remain can hold");
  }
  SUBCASE("a string that is not UTF-8") {
    std::vector<uint8_t> bytes = KbcBytes().varint(1).varint(3).raw({'a', 0xC3, 0x28}).file();
    const ModuleError &error = onlyError(readModule(bytes));
    CHECK(error.byteOffset == body + 3);
    CHECK(error.message == "string 0 is not valid UTF-8");
  }
  SUBCASE("a string index past the pool") {
    std::vector<uint8_t> bytes = fileWithConstant({"a"}, {5, 1});
    const ModuleError &error = onlyError(readModule(bytes));
    CHECK(error.byteOffset == body + 6);
    CHECK(error.message == "string value: string index 1 out of range (the pool has 1 strings)");
  }
  SUBCASE("an unknown value tag") {
    const ModuleError &error = onlyError(readModule(fileWithConstant({}, {9})));
    CHECK(error.byteOffset == body + 3);
    CHECK(error.message == "unknown value tag 9");
  }
  SUBCASE("a double that is not finite") {
    uint64_t nan = std::bit_cast<uint64_t>(std::numeric_limits<double>::quiet_NaN());
    std::initializer_list<uint8_t> constant = {4,
                                               static_cast<uint8_t>(nan),
                                               static_cast<uint8_t>(nan >> 8),
                                               static_cast<uint8_t>(nan >> 16),
                                               static_cast<uint8_t>(nan >> 24),
                                               static_cast<uint8_t>(nan >> 32),
                                               static_cast<uint8_t>(nan >> 40),
                                               static_cast<uint8_t>(nan >> 48),
                                               static_cast<uint8_t>(nan >> 56)};
    CHECK(onlyError(readModule(fileWithConstant({}, constant))).message ==
          "double is not finite (NaN and infinities cannot occur in values)");
    std::vector<uint8_t> infinity = fileWithConstant({}, {4, 0, 0, 0, 0, 0, 0, 0xF0, 0x7F});
    CHECK(onlyError(readModule(infinity)).message ==
          "double is not finite (NaN and infinities cannot occur in values)");
  }
  SUBCASE("a double cut short") {
    std::vector<uint8_t> bytes = KbcBytes().pool({}).constants(1).raw({4, 0, 0}).file();
    CHECK(onlyError(readModule(bytes)).message == "the file ends in the middle of double");
  }
  SUBCASE("a duplicate object key") {
    std::vector<uint8_t> bytes = fileWithConstant({"k"}, {7, 2, 0, 0, 0, 1});
    const ModuleError &error = onlyError(readModule(bytes));
    CHECK(error.byteOffset == body + 9);
    CHECK(error.message == "duplicate object key \"k\"");
  }
  SUBCASE("the same key through two equal pool strings") {
    std::vector<uint8_t> bytes = fileWithConstant({"k", "k"}, {7, 2, 0, 0, 1, 1});
    CHECK(onlyError(readModule(bytes)).message == "duplicate object key \"k\"");
  }
  SUBCASE("values nested beyond the limit") {
    KbcBytes deep;
    deep.pool({}).constants(1);
    for (uint32_t level = 0; level <= kMaxConstantDepth; ++level) {
      deep.raw({6, 1});
    }
    deep.raw({0}).emptyTables();
    CHECK(onlyError(readModule(deep.file())).message == "value nested deeper than 256 levels");

    KbcBytes limit;
    limit.pool({}).constants(1);
    for (uint32_t level = 0; level < kMaxConstantDepth; ++level) {
      limit.raw({6, 1});
    }
    limit.raw({0}).emptyTables();
    CHECK(readModule(limit.file()).ok());
  }
  SUBCASE("an optional with a bad presence byte") {
    // One activity: name "a", description "a", timeout presence 2.
    std::vector<uint8_t> bytes =
        KbcBytes().pool({"a"}).constants(0).varint(1).raw({0, 0, 2, 5}).file();
    CHECK(onlyError(readModule(bytes)).message ==
          "activity timeout: presence byte must be 0 or 1, found 2");
  }
  SUBCASE("a timeout beyond int64") {
    std::vector<uint8_t> bytes = KbcBytes()
                                     .pool({"a"})
                                     .constants(0)
                                     .varint(1)
                                     .raw({0, 0, 1})
                                     .varint(uint64_t{1} << 63)
                                     .raw({0, 0})
                                     .file();
    CHECK(onlyError(readModule(bytes)).message ==
          "activity timeout: 9223372036854775808 ms does not fit a signed 64-bit integer");
  }
}

namespace {

// Opcode bytes for the hand-written code below, taken from the enum so that the numbers are
// pinned in one place (opcodes_test.cpp).
constexpr uint8_t kCompleteByte = static_cast<uint8_t>(Opcode::Complete);
constexpr uint8_t kRetByte = static_cast<uint8_t>(Opcode::Ret);

// A body with one workflow "w" and one block whose kind byte and code follow.
KbcBytes oneWorkflow() {
  KbcBytes bytes;
  bytes.pool({"w", "string"});
  bytes.raw({1, 0});          // one source file, "w"
  bytes.raw({0, 0});          // no constants, no activities
  bytes.raw({0, 1});          // no host activities, one workflow
  bytes.raw({0, 0, 0, 0, 0}); // id, name, version, description "w"; metadata null
  bytes.raw({1, 0, 1, 3, 0}); // one input: "w": string, required, default null
  bytes.raw({0, 0, 0});       // no outputs, no timeout, no retry policy
  bytes.raw({0, 1});          // no host predicates, one register
  return bytes;
}

} // namespace

TEST_CASE("workflow decoding errors name the offset and the problem") {
  SUBCASE("param flags with unknown bits") {
    KbcBytes bytes;
    bytes.pool({"w"}).constants(0).raw({0, 0, 1}); // no activities or host activities, 1 workflow
    bytes.raw({0, 0, 0, 0, 0, 1, 0, 0, 4});
    const ModuleError &error = onlyError(readModule(bytes.file()));
    CHECK(error.message == "param flags 0x04 have unknown bits (only 0x01 required and 0x02 has "
                           "default are defined)");
  }
  SUBCASE("an unknown block kind") {
    std::vector<uint8_t> bytes = oneWorkflow().raw({1, 7, 1, kRetByte, 0, 0, 0, 0}).file();
    CHECK(onlyError(readModule(bytes)).message == "unknown block kind 7");
  }
  SUBCASE("an unknown opcode") {
    std::vector<uint8_t> bytes = oneWorkflow().raw({1, 0, 1, 200, 0, 0, 0}).file();
    const ModuleError &error = onlyError(readModule(bytes));
    CHECK(error.message == "unknown opcode 200");
    REQUIRE(error.byteOffset.has_value());
    CHECK(bytes[*error.byteOffset] == 200);
  }
  SUBCASE("an instruction count the rest of the file cannot hold") {
    std::vector<uint8_t> bytes = oneWorkflow().raw({1, 0, 2, kCompleteByte, 0, 0, 0, 1}).file();
    CHECK(onlyError(readModule(bytes)).message ==
          "instruction count 2 is more than the 5 bytes that remain can hold");
  }
  SUBCASE("a well-formed workflow loads") {
    // COMPLETE r0 at f0:1:1.
    std::vector<uint8_t> bytes = oneWorkflow().raw({1, 0, 1, kCompleteByte, 0, 0, 1, 1}).file();
    ModuleResult<LoadedModule> loaded = loadModule(bytes);
    REQUIRE(loaded.ok());
    CHECK(loaded->module.workflows[0].inputs[0].required);
    CHECK(loaded->module.workflows[0].inputs[0].defaultValue == Value());
  }
}

TEST_CASE("a module that would expand far beyond its size is rejected") {
  // One 100 kB string used as the key of 300 objects: 30 MB of copies from a 101 kB file.
  std::string longKey(100000, 'k');
  KbcBytes bytes;
  bytes.pool({longKey}).constants(1).byte(6).varint(300);
  for (int index = 0; index < 300; ++index) {
    bytes.raw({7, 1, 0, 0});
  }
  bytes.emptyTables();
  CHECK(onlyError(readModule(bytes.file())).message.find("the module expands to more than") == 0);
}

TEST_CASE("verifier errors from a loaded file point at the instruction's bytes") {
  Module module = samples::orderModule();
  Instruction &bad = module.workflows[1].blocks[1].code[2];
  REQUIRE(bad.opcode == Opcode::Mul);
  bad.operands[1] = 999;
  std::vector<uint8_t> bytes = writeModule(module);
  ModuleResult<LoadedModule> loaded = loadModule(bytes);
  const ModuleError &error = onlyError(loaded);
  CHECK(error.location == "workflow 'refund_items' block b1 instruction 2");
  CHECK(error.message ==
        "operand B (Reg): register r999 out of range (the workflow has 13 registers)");
  REQUIRE(error.byteOffset.has_value());
  CHECK(bytes[*error.byteOffset] == static_cast<uint8_t>(Opcode::Mul));
  CHECK(error.describe() == "byte " + std::to_string(*error.byteOffset) +
                                ": workflow 'refund_items' block b1 instruction 2: operand B "
                                "(Reg): register r999 out of range (the workflow has 13 "
                                "registers)");
}

TEST_CASE("every single-byte change of a real module is rejected or loads cleanly") {
  const std::vector<uint8_t> original = sampleBytes();
  ReadOptions lenient;
  lenient.checkHash = false;
  size_t loadedAfterFix = 0;
  for (size_t position = 0; position < original.size(); ++position) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xFF}}) {
      std::vector<uint8_t> changed = original;
      changed[position] ^= mask;
      CAPTURE(position);
      CAPTURE(mask);
      // As stored: the hash catches every change.
      REQUIRE_FALSE(loadModule(changed).ok());
      // With the hash made to match, the decoder and verifier must cope on their own.
      if (position >= kKbcHeaderSize) {
        KbcBytes::fixHash(changed);
      }
      ModuleResult<LoadedModule> loaded = loadModule(changed, lenient);
      if (loaded.ok()) {
        ++loadedAfterFix;
        // A module that loads is a valid module: it writes and reloads to a fixed point.
        std::vector<uint8_t> rewritten = writeModule(loaded->module);
        ModuleResult<LoadedModule> again = loadModule(rewritten);
        REQUIRE(again.ok());
        REQUIRE(writeModule(again->module) == rewritten);
        (void)disassemble(loaded->module);
      } else {
        REQUIRE_FALSE(loaded.errors().front().message.empty());
      }
    }
  }
  // Flips in line numbers, register numbers and string bytes keep a module valid; most of
  // the rest must not. Both outcomes occur.
  CHECK(loadedAfterFix > 0);
  CHECK(loadedAfterFix < original.size() * 3);
}

TEST_CASE("every truncation of a real module is rejected") {
  const std::vector<uint8_t> original = sampleBytes();
  for (size_t length = 0; length < original.size(); ++length) {
    CAPTURE(length);
    std::vector<uint8_t> prefix(original.begin(), original.begin() + length);
    REQUIRE_FALSE(loadModule(prefix).ok());
    if (length >= kKbcHeaderSize) {
      KbcBytes::fixHash(prefix);
      ModuleResult<LoadedModule> loaded = loadModule(prefix);
      REQUIRE_FALSE(loaded.ok());
      REQUIRE(loaded.errors().front().byteOffset.has_value());
      REQUIRE(*loaded.errors().front().byteOffset <= length);
    }
  }
}

TEST_CASE("the module loader's fuzz seeds are the bytes of the sample modules") {
  // One workflow whose body completes with null outputs: the smallest module that loads.
  ModuleBuilder minimal;
  FileIndex file = minimal.addSourceFile("minimal.kotoba");
  WorkflowBuilder workflow(minimal, "minimal");
  Reg outputs = workflow.newRegister();
  workflow.emit(BlockId{0}, Opcode::LoadK, {outputs, workflow.constant(Value(Object{}))},
                SourceLocation{file, 1, 1});
  workflow.emit(BlockId{0}, Opcode::Complete, {outputs}, SourceLocation{file, 1, 1});
  minimal.addWorkflow(std::move(workflow).finish());

  const std::pair<const char *, std::vector<uint8_t>> seeds[] = {
      {"order-processing", sampleBytes()},
      {"minimal", writeModule(minimal.module())},
  };
  // With KOTOBA_UPDATE_GOLDEN=1 the seeds are rewritten (after a deliberate format change).
  const char *update = std::getenv("KOTOBA_UPDATE_GOLDEN");
  for (const auto &[name, bytes] : seeds) {
    CAPTURE(name);
    REQUIRE(loadModule(bytes).ok());
    std::string path = std::string(KOTOBA_SOURCE_DIR) + "/tests/fuzz/seeds/module/" + name;
    if (update != nullptr && std::string_view(update) == "1") {
      std::ofstream(path, std::ios::binary)
          .write(reinterpret_cast<const char *>(bytes.data()),
                 static_cast<std::streamsize>(bytes.size()));
      continue;
    }
    std::ifstream seed(path, std::ios::binary);
    REQUIRE_MESSAGE(seed.good(), "missing seed " << path << "; run with KOTOBA_UPDATE_GOLDEN=1");
    std::vector<uint8_t> stored((std::istreambuf_iterator<char>(seed)),
                                std::istreambuf_iterator<char>());
    CHECK(stored == bytes);
  }
}
