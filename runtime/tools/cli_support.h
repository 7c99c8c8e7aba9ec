// What every kotoba-vm command shares: the exit codes of runtime.md section 9, the failure
// value commands return instead of printing half-way, the global options, and the small
// conversions between command-line text, JSON and times. Messages go to stderr and results
// to stdout; the helpers here are the only code that writes either.
#pragma once

#include "kotoba/runtime/store.h"
#include "kotoba/vm/error.h"
#include "kotoba/vm/value.h"

#include <cassert>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace CLI {
class App;
class Error;
} // namespace CLI

namespace kotoba::cli {

// runtime.md section 9. The numbers are part of the command line's contract.
enum class ExitCode : int {
  Completed = 0,
  RunFailed = 1, // the run failed, was cancelled, timed out or was terminated
  Usage = 2,     // usage or input error: bad JSON, missing file, unknown run, ...
  CompileError = 3,
  StoreError = 4,
  NonDeterminism = 5,
  // Not in the contract: the conventional code of a process stopped by SIGINT, used when
  // an interrupted `run` leaves its run unfinished.
  Interrupted = 130,
};

// Why a command could not do what it was asked: one line for stderr, plus optional
// indented lines (every problem of an invalid input, the unbound activity names).
struct Failure {
  ExitCode exitCode = ExitCode::Usage;
  std::string message;
  std::vector<std::string> notes;
};

[[nodiscard]] Failure usageFailure(std::string message);
[[nodiscard]] Failure storeFailure(const runtime::StoreError &error);

// A T, or the Failure that prevented it.
template <typename T> class [[nodiscard]] CliResult {
public:
  CliResult(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  CliResult(Failure failure) : state_(std::in_place_index<1>, std::move(failure)) {}

  [[nodiscard]] bool ok() const { return state_.index() == 0; }
  [[nodiscard]] T &value() & {
    assert(ok() && "value() of a failed CliResult; check ok() first");
    return std::get<0>(state_);
  }
  [[nodiscard]] T &&value() && {
    assert(ok() && "value() of a failed CliResult; check ok() first");
    return std::get<0>(std::move(state_));
  }
  [[nodiscard]] const Failure &failure() const {
    assert(!ok() && "failure() of a successful CliResult");
    return std::get<1>(state_);
  }

private:
  std::variant<T, Failure> state_;
};

// A failure from an error the engine returned: usage errors (unknown or finished run, invalid
// inputs, unbound activities) exit with 2, store errors with 4, non-determinism with 5, and
// any other type with `otherwise`. Problems listed in the error's details become notes.
[[nodiscard]] Failure engineFailure(const WorkflowError &error, ExitCode otherwise);

// Prints `kotoba-vm: error: message` and the notes to stderr; returns the exit code.
[[nodiscard]] int report(const Failure &failure);
// A line on stderr that is not an error (`kotoba-vm: note: ...`).
void note(std::string_view message);
// A command-line parse error in the format of every other error, for CLI::App's
// failure_message: a command name CLI11 did not know is reported as such.
[[nodiscard]] std::string parseFailureMessage(const CLI::App *app, const CLI::Error &error);

// Options every command accepts.
struct GlobalOptions {
  std::string dbPath = "kotoba.db";
  bool json = false;
  runtime::Durability durability = runtime::Durability::Normal;
};

// Opens (and creates on first use) the store, or `--db :memory:` for a private database.
[[nodiscard]] CliResult<std::unique_ptr<runtime::Store>> openStore(const GlobalOptions &global);
// For commands that only look: nullptr (not a failure) when the file does not exist, so
// that `list` or a mistyped `--db` creates no store.
[[nodiscard]] CliResult<std::unique_ptr<runtime::Store>>
openExistingStore(const GlobalOptions &global);

// The text of `--input`, `signal ... JSON` and `emit ... JSON`: JSON itself, or `@PATH` to
// read it from a file. `what` names the argument in messages ("--input").
[[nodiscard]] CliResult<Value> parseJsonArgument(std::string_view text, std::string_view what);

// RFC 3339 UTC with milliseconds, `2026-12-04T15:56:05.123Z`; the number itself when the
// time has no such spelling.
[[nodiscard]] std::string formatTime(int64_t unixMs);
[[nodiscard]] Value timeValue(std::optional<int64_t> unixMs);

// Writes `value` as indented JSON and a line break to stdout.
void printJson(const Value &value);

// A one-line rendering of `value` as compact JSON cut to at most `maxBytes` bytes (on a
// UTF-8 character boundary, ending in "..." when cut).
[[nodiscard]] std::string compactJson(const Value &value, size_t maxBytes);

// The lines that describe a workflow error for a person: the type and message, then
// details, chain and any extension (a saga's `compensation`), one per line.
[[nodiscard]] std::vector<std::string> describeError(const WorkflowError &error);

// The absolute form of the current directory, of a file's directory, and of a directory.
[[nodiscard]] std::string currentDirectory();
[[nodiscard]] std::string directoryOf(const std::string &path);
[[nodiscard]] std::string absoluteDirectory(const std::string &path);

// A run status as a person types it (`--status failed`, `timed-out`, `TIMED_OUT`); an unknown
// one is a usage failure naming every status, or only the final ones where only those apply.
[[nodiscard]] CliResult<runtime::RunStatus> parseStatus(const std::string &text,
                                                        bool suggestFinalOnly = false);

// The wall clock in Unix milliseconds, for the few rows the CLI itself writes.
[[nodiscard]] int64_t wallClockMs();

} // namespace kotoba::cli
