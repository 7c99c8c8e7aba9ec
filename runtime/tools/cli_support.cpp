// The shared pieces of kotoba-vm: exit codes and failures, store opening, JSON arguments,
// time formatting and the printing of results and errors.
#include "cli_support.h"

#include "kotoba/runtime/activity.h"
#include "kotoba/runtime/activity_binding.h"
#include "kotoba/runtime/engine.h"
#include "kotoba/vm/builtins.h"
#include "kotoba/vm/json.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <system_error>

namespace kotoba::cli {

Failure usageFailure(std::string message) {
  return Failure{ExitCode::Usage, std::move(message), {}};
}

Failure storeFailure(const runtime::StoreError &error) {
  // A run or row the user named that is not there is their mistake, not a broken store.
  ExitCode code =
      error.kind == runtime::StoreErrorKind::NotFound ? ExitCode::Usage : ExitCode::StoreError;
  return Failure{code, error.message, {}};
}

namespace {

// One listed problem: a string as it is, an object by its message (and where, when it says).
std::string problemText(const Value &problem) {
  if (problem.isString()) {
    return problem.asString();
  }
  if (problem.isObject()) {
    const Value *message = problem.asObject().find("message");
    if (message != nullptr && message->isString()) {
      for (std::string_view key : {"input", "name", "path", "activity"}) {
        const Value *where = problem.asObject().find(key);
        if (where != nullptr && where->isString() &&
            message->asString().find(where->asString()) == std::string::npos) {
          return where->asString() + ": " + message->asString();
        }
      }
      return message->asString();
    }
  }
  return toJson(problem);
}

// Lists of problems in an error's details (an array, or arrays inside an object) become one
// note each; anything else is shown as JSON.
std::vector<std::string> detailNotes(const Value &details) {
  std::vector<std::string> notes;
  if (details.isNull()) {
    return notes;
  }
  if (details.isArray()) {
    for (const Value &problem : details.asArray()) {
      notes.push_back("- " + problemText(problem));
    }
    return notes;
  }
  if (details.isObject()) {
    bool listed = false;
    for (const ObjectEntry &entry : details.asObject()) {
      if (!entry.value.isArray()) {
        continue;
      }
      listed = true;
      for (const Value &problem : entry.value.asArray()) {
        notes.push_back("- " + problemText(problem));
      }
    }
    if (listed) {
      return notes;
    }
  }
  notes.push_back("details: " + toJson(details));
  return notes;
}

bool isUsageErrorType(std::string_view type) {
  for (std::string_view usage :
       {runtime::engine_errors::RunNotFound, runtime::engine_errors::RunFinished,
        runtime::engine_errors::UnknownWorkflow, runtime::engine_errors::UnboundActivities,
        error_types::InputValidationError, error_types::InvalidPayload,
        error_types::PayloadTooLarge, runtime::kInvalidBinding,
        runtime::activity_errors::InvalidImplementation}) {
    if (type == usage) {
      return true;
    }
  }
  return false;
}

} // namespace

Failure engineFailure(const WorkflowError &error, ExitCode otherwise) {
  ExitCode code = otherwise;
  if (isUsageErrorType(error.type)) {
    code = ExitCode::Usage;
  } else if (error.type == runtime::engine_errors::StoreFailure) {
    code = ExitCode::StoreError;
  } else if (error.type == runtime::engine_errors::NonDeterminism) {
    code = ExitCode::NonDeterminism;
  }
  Failure failure{code, error.message.empty() ? error.type : error.message, {}};
  failure.notes = detailNotes(error.details);
  // These two spell their list out in the message as well; with one problem per line
  // below it, the message keeps only its summary.
  bool listsInMessage = error.type == error_types::InputValidationError ||
                        error.type == runtime::engine_errors::UnboundActivities;
  size_t colon = failure.message.find(": ");
  if (listsInMessage && error.details.isArray() && colon != std::string::npos) {
    failure.message.resize(colon);
  }
  if (error.type == runtime::engine_errors::UnboundActivities) {
    // The engine lists a host predicate as "predicate NAME"; --bind cannot supply one.
    bool needsPredicate = false;
    bool needsActivity = false;
    for (const Value &name : error.details.isArray() ? error.details.asArray() : Array{}) {
      bool predicate = name.isString() && name.asString().starts_with("predicate ");
      needsPredicate = needsPredicate || predicate;
      needsActivity = needsActivity || !predicate;
    }
    if (needsActivity || !needsPredicate) {
      failure.notes.push_back("bind each with --bind NAME=process:PATH (or NAME=http:URL), or "
                              "give its declaration an implementation");
    }
    if (needsPredicate) {
      failure.notes.push_back("a predicate cannot be bound on the command line: define it in "
                              "the workflow's predicates, or run the module from a program "
                              "that registers it");
    }
  }
  return failure;
}

int report(const Failure &failure) {
  std::cerr << "kotoba-vm: error: " << failure.message << "\n";
  for (const std::string &line : failure.notes) {
    std::cerr << "  " << line << "\n";
  }
  std::cerr.flush();
  return static_cast<int>(failure.exitCode);
}

void note(std::string_view message) { std::cerr << "kotoba-vm: " << message << "\n"; }

std::string parseFailureMessage(const CLI::App *app, const CLI::Error &error) {
  std::string message = error.what();
  std::vector<std::string> left = app->remaining();
  if (error.get_name() == "RequiredError" && app->get_subcommands().empty() && !left.empty()) {
    std::vector<std::string> names;
    for (const CLI::App *command : app->get_subcommands({})) {
      names.push_back(command->get_name());
    }
    message = fmt::format("unknown command '{}'; the commands are {}", left.front(),
                          fmt::join(names, ", "));
  } else if (!message.empty()) {
    message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
  }
  return fmt::format("kotoba-vm: error: {}\nrun `kotoba-vm --help` for the commands and "
                     "options\n",
                     message);
}

CliResult<std::unique_ptr<runtime::Store>> openStore(const GlobalOptions &global) {
  runtime::StoreOptions options;
  options.durability = global.durability;
  runtime::StoreResult<std::unique_ptr<runtime::Store>> opened =
      global.dbPath == ":memory:" ? runtime::Store::openInMemory(options)
                                  : runtime::Store::open(global.dbPath, options);
  if (!opened.ok()) {
    return Failure{ExitCode::StoreError, opened.error().message, {}};
  }
  return std::move(opened).value();
}

CliResult<std::unique_ptr<runtime::Store>> openExistingStore(const GlobalOptions &global) {
  if (global.dbPath != ":memory:") {
    std::error_code error;
    if (!std::filesystem::exists(global.dbPath, error)) {
      return std::unique_ptr<runtime::Store>();
    }
  }
  return openStore(global);
}

CliResult<Value> parseJsonArgument(std::string_view text, std::string_view what) {
  std::string owned;
  std::string source;
  if (!text.empty() && text.front() == '@') {
    std::string path(text.substr(1));
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::error_code error(errno, std::generic_category());
      return usageFailure(
          fmt::format("{}: cannot read '{}': {}", what, path, error.message()));
    }
    owned.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    text = owned;
    source = " (in '" + path + "')";
  }
  Result<Value> parsed = parseJson(text);
  if (!parsed.ok()) {
    // A file name given without its '@' is the usual cause; say so when it looks like one.
    std::string hint;
    std::error_code ignored;
    if (source.empty() && (text.ends_with(".json") ||
                           std::filesystem::is_regular_file(std::string(text), ignored))) {
      hint = fmt::format(" (to read the file '{}', write '@{}')", text, text);
    }
    return usageFailure(std::string(what) + source + ": " + parsed.error().message + hint);
  }
  return std::move(parsed).value();
}

std::string formatTime(int64_t unixMs) {
  Result<std::string> text = formatTimestampMs(unixMs);
  return text.ok() ? text.value() : std::to_string(unixMs);
}

Value timeValue(std::optional<int64_t> unixMs) {
  if (!unixMs) {
    return Value(nullptr);
  }
  return Value(formatTime(*unixMs));
}

void printJson(const Value &value) {
  std::cout << toPrettyJson(value) << "\n";
  std::cout.flush();
}

std::string compactJson(const Value &value, size_t maxBytes) {
  std::string text = toJson(value);
  if (text.size() <= maxBytes) {
    return text;
  }
  size_t cut = maxBytes > 3 ? maxBytes - 3 : 0;
  // Back up over continuation bytes so the cut never splits a character.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  text.resize(cut);
  text += "...";
  return text;
}

std::vector<std::string> describeError(const WorkflowError &error) {
  std::vector<std::string> lines;
  lines.push_back(error.message.empty() ? error.type : error.type + ": " + error.message);
  if (!error.details.isNull()) {
    lines.push_back("details: " + toJson(error.details));
  }
  if (!error.chain.empty()) {
    std::string chain;
    for (const std::string &workflowId : error.chain) {
      chain += chain.empty() ? workflowId : " -> " + workflowId;
    }
    lines.push_back("chain: " + chain);
  }
  for (const ObjectEntry &entry : error.extensions) {
    lines.push_back(entry.key + ": " + toJson(entry.value));
  }
  return lines;
}

std::string currentDirectory() {
  std::error_code error;
  std::filesystem::path path = std::filesystem::current_path(error);
  return error ? std::string() : path.string();
}

std::string directoryOf(const std::string &path) {
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(path, error);
  if (error) {
    return std::string();
  }
  return absolute.lexically_normal().parent_path().string();
}

} // namespace kotoba::cli

namespace kotoba::cli {

std::string absoluteDirectory(const std::string &path) {
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(path, error);
  if (error) {
    return path;
  }
  std::filesystem::path normal = absolute.lexically_normal();
  // "/a/b/" and "/a/b" are the same directory; keep the form without the separator.
  if (!normal.has_filename() && normal.has_parent_path() && normal != normal.root_path()) {
    normal = normal.parent_path();
  }
  return normal.string();
}

CliResult<runtime::RunStatus> parseStatus(const std::string &text, bool suggestFinalOnly) {
  std::string upper = text;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  std::replace(upper.begin(), upper.end(), '-', '_');
  if (std::optional<runtime::RunStatus> status = runtime::runStatusFromName(upper)) {
    return *status;
  }
  using runtime::RunStatus;
  std::string known;
  for (RunStatus status : {RunStatus::Running, RunStatus::Compensating, RunStatus::Completed,
                           RunStatus::Failed, RunStatus::Cancelled, RunStatus::TimedOut,
                           RunStatus::Terminated, RunStatus::ContinuedAsNew, RunStatus::Blocked}) {
    if (suggestFinalOnly && !runtime::isFinalStatus(status)) {
      continue;
    }
    known += (known.empty() ? "" : ", ") + std::string(runtime::runStatusName(status));
  }
  return usageFailure("--status " + text + ": no such status; use one of " + known);
}

int64_t wallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace kotoba::cli
