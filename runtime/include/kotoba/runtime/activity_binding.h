// `kotoba-vm run|worker --bind NAME=SPEC` (runtime.md section 9): binds an activity the
// module does not implement to a program or a URL from the command line.
//
//   --bind charge='process:./bin/charge --mode test'   a program (process.h)
//   --bind charge=http:http://127.0.0.1:8080/charge    POST the input, result from the body
//   --bind charge=http://127.0.0.1:8080/charge         the same, without the `http:` prefix
//
// After `process:` comes a command line split into words the way a shell splits them, and
// nothing more: whitespace separates words, '...' keeps its text as it is, "..." too except
// for \" and \\, a backslash outside quotes keeps the next character. No variable,
// command or glob expansion ever happens, and the program is started without a shell.
// Words may hold implementation templates (`${$.input.id}`), as in a declaration.
//
// The result is an implementation object, {type: "process", command, args} or {type:
// "http", method: "POST", url, result: "body"}, which ActivityRegistry::bindImplementation
// turns into an activity. The http factory comes from the standard activities
// (kotoba::stdlib::registerStandardActivities); a registry without them accepts an http
// binding and its attempts fail with ActivityUnavailable.
//
// A run keeps the bindings it started with, and the directory its declarations' relative
// paths resolve against, as a RunHost stored in runs.host; runHostToValue and
// runHostFromValue are that column's JSON form (runtime/schema/store.sql).
#pragma once

#include "kotoba/runtime/activity_registry.h"
#include "kotoba/vm/error.h"
#include "kotoba/vm/value.h"

#include <string>
#include <string_view>
#include <vector>

namespace kotoba::runtime {

// The error type of a malformed --bind (a usage error: kotoba-vm exits with 2).
inline constexpr std::string_view kInvalidBinding = "InvalidBinding";

struct ActivityBinding {
  std::string name;
  Value implementation;
};

// Parses the text after `--bind`: NAME=SPEC.
[[nodiscard]] Result<ActivityBinding> parseBinding(std::string_view option);

// runs.host: {"base_directory": DIR, "bindings": [{"name", "implementation",
// "base_directory"}]}.
[[nodiscard]] Value runHostToValue(const RunHost &host);
// The reverse; a value of another shape (a store written by something else) is an
// InvalidBinding error naming what is wrong.
[[nodiscard]] Result<RunHost> runHostFromValue(const Value &value);

// Splits a command line into words with the quoting rules above.
[[nodiscard]] Result<std::vector<std::string>> splitCommandLine(std::string_view text);

} // namespace kotoba::runtime
