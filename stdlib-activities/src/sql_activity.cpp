// The `sql` activity: runs one SQLite statement, or a list of them in one transaction, on a
// database file, with named parameters bound from the activity's input.
//
//   { type: "sql", database: "shop.db",
//     statement: "INSERT INTO orders(id, amount) VALUES (:order_id, :amount)" }
//
// Parameters are always bound, never spliced: a `statement` may not hold templates at all,
// so an input holding `'; DROP TABLE x; --` can only ever be a value. Each attempt opens its
// own connection and closes it, so nothing is shared between threads or attempts. Stopping
// (timeout, cancel) interrupts a running statement through SQLite's progress handler and a
// wait for a lock through the busy handler. docs/activities.md has the rules in full.
#include "kotoba/stdlib/standard_activities.h"

#include "implementation_fields.h"

#include "kotoba/runtime/activity_template.h"
#include "kotoba/runtime/function.h"
#include "kotoba/vm/duration.h"
#include "kotoba/vm/json.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>
#include <cmath>
#include <memory>

namespace kotoba::stdlib {

using runtime::ActivityContext;

namespace {

// How long a statement waits for another connection's lock before SqlBusy, by default. Long
// enough to ride out another writer's transaction, short against a 5-minute attempt timeout.
constexpr int64_t kDefaultBusyTimeoutMs = 5000;
// SQLite calls the progress handler every this many virtual machine instructions; checking
// an atomic flag that often costs nothing measurable and stops a runaway query within
// microseconds.
constexpr int kProgressInstructions = 1000;
// What a value adds to the result's size estimate besides its text (punctuation, numbers).
constexpr size_t kValueOverheadBytes = 16;

struct SqlConfig {
  std::string database; // as written after evaluation, for messages
  std::string path;     // absolute, or ":memory:"
  std::vector<std::string> statements;
  bool isList = false;
  int64_t busyTimeoutMs = kDefaultBusyTimeoutMs;
  bool create = false;
  bool readOnly = false;
};

// What the busy and progress handlers need; lives on the attempt's stack.
struct AttemptState {
  ActivityContext &context;
  int64_t busyTimeoutMs;
  std::chrono::steady_clock::time_point busySince;
};

// Waits for a lock held by another connection, in growing slices, until the busy timeout
// passes or the attempt is asked to stop. SQLite starts each wait with count 0.
int waitWhileBusy(void *data, int count) {
  auto *state = static_cast<AttemptState *>(data);
  auto now = std::chrono::steady_clock::now();
  if (count == 0) {
    state->busySince = now;
  }
  if (state->context.cancelled()) {
    return 0;
  }
  int64_t waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(now - state->busySince).count();
  if (waited >= state->busyTimeoutMs) {
    return 0;
  }
  static constexpr std::array<int64_t, 7> kSlicesMs = {1, 2, 5, 10, 20, 50, 100};
  int64_t slice = kSlicesMs[std::min<size_t>(size_t(count), kSlicesMs.size() - 1)];
  slice = std::min(slice, state->busyTimeoutMs - waited);
  return state->context.waitForCancellation(std::chrono::milliseconds(slice)) ? 0 : 1;
}

int interruptWhenStopped(void *data) {
  return static_cast<AttemptState *>(data)->context.cancelled() ? 1 : 0;
}

struct ConnectionCloser {
  void operator()(sqlite3 *db) const { sqlite3_close_v2(db); }
};
using Connection = std::unique_ptr<sqlite3, ConnectionCloser>;

struct StatementFinalizer {
  void operator()(sqlite3_stmt *statement) const { sqlite3_finalize(statement); }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

// "statement 2" in a list, "statement" alone.
std::string statementName(const SqlConfig &config, size_t index) {
  return config.isList ? fmt::format("statement {}", index + 1) : "statement";
}

// One attempt: a connection, the statements in order, the result.
class SqlAttempt {
public:
  SqlAttempt(std::string_view activityName, const SqlConfig &config, const Value &input,
             ActivityContext &context)
      : activityName_(activityName), config_(config), input_(input),
        context_(context), state_{context, config.busyTimeoutMs, {}} {}

  [[nodiscard]] Result<Value> run();

private:
  [[nodiscard]] std::optional<WorkflowError> open();
  [[nodiscard]] Result<Value> runStatement(size_t index);
  [[nodiscard]] Result<Statement> prepare(size_t index);
  [[nodiscard]] std::optional<WorkflowError> bindParameters(sqlite3_stmt *statement, size_t index);
  [[nodiscard]] Result<Value> columnValue(sqlite3_stmt *statement, int column, size_t index);
  [[nodiscard]] std::optional<WorkflowError> execute(const char *sql);
  void rollback();
  // The error for SQLite result `code`, with the connection's message. `index` is the
  // statement, when one was running.
  [[nodiscard]] WorkflowError failure(int code, std::optional<size_t> index) const;

  std::string_view activityName_;
  const SqlConfig &config_;
  const Value &input_;
  ActivityContext &context_;
  AttemptState state_;
  Connection db_;
  size_t resultBytes_ = 0;
};

Result<Value> SqlAttempt::run() {
  if (std::optional<WorkflowError> problem = open()) {
    return std::move(*problem);
  }
  if (config_.isList) {
    // IMMEDIATE takes the write lock up front: a deferred transaction that upgrades from
    // reading to writing halfway can fail with SQLITE_BUSY no busy handler can resolve.
    if (std::optional<WorkflowError> problem =
            execute(config_.readOnly ? "BEGIN DEFERRED" : "BEGIN IMMEDIATE")) {
      return std::move(*problem);
    }
  }
  Array results;
  for (size_t index = 0; index < config_.statements.size(); ++index) {
    Result<Value> result = runStatement(index);
    if (!result.ok()) {
      rollback();
      return std::move(result).error();
    }
    results.push_back(std::move(result).value());
  }
  if (config_.isList) {
    if (std::optional<WorkflowError> problem = execute("COMMIT")) {
      rollback();
      return std::move(*problem);
    }
  }
  Object last = results.back().asObject();
  if (config_.isList) {
    last.set("results", Value(std::move(results)));
  }
  return Value(std::move(last));
}

std::optional<WorkflowError> SqlAttempt::open() {
  int flags = SQLITE_OPEN_EXRESCODE;
  if (config_.readOnly) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE | (config_.create ? SQLITE_OPEN_CREATE : 0);
  }
  sqlite3 *raw = nullptr;
  int code = sqlite3_open_v2(config_.path.c_str(), &raw, flags, nullptr);
  db_.reset(raw);
  if (code != SQLITE_OK) {
    std::string reason = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(code);
    Object details;
    details.set("database", config_.database);
    details.set("path", config_.path);
    details.set("sqlite_code", int64_t(code));
    std::string fix = config_.create ? ""
                                     : "; check the path (a relative one starts at the workflow "
                                       "file's directory), or set create: true to create it";
    WorkflowError error =
        makeError(stdlib_errors::SqlError,
                  fmt::format("cannot open database '{}': {}{}", config_.database, reason, fix),
                  Value(std::move(details)));
    // A database locked while it is being opened (a hot journal being rolled back by
    // another connection) is worth another attempt; a missing file is not.
    error.retryable = (code & 0xff) == SQLITE_BUSY;
    return error;
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_handler(raw, waitWhileBusy, &state_);
  sqlite3_progress_handler(raw, kProgressInstructions, interruptWhenStopped, &state_);
  // SQLite leaves foreign keys unenforced by default, for compatibility with 2009; a
  // workflow that declares them expects them to hold.
  return execute("PRAGMA foreign_keys = ON");
}

std::optional<WorkflowError> SqlAttempt::execute(const char *sql) {
  int code = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
  if (code != SQLITE_OK) {
    return failure(code, std::nullopt);
  }
  return std::nullopt;
}

void SqlAttempt::rollback() {
  if (sqlite3_get_autocommit(db_.get()) != 0) {
    return;
  }
  // The progress handler would interrupt the rollback of a cancelled attempt too.
  sqlite3_progress_handler(db_.get(), 0, nullptr, nullptr);
  // Closing the connection rolls back as well; this only makes it explicit and early.
  (void)sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

Result<Statement> SqlAttempt::prepare(size_t index) {
  const std::string &text = config_.statements[index];
  sqlite3_stmt *raw = nullptr;
  const char *tail = nullptr;
  int code = sqlite3_prepare_v3(db_.get(), text.data(), int(text.size()), 0, &raw, &tail);
  Statement statement(raw);
  if (code != SQLITE_OK) {
    return failure(code, index);
  }
  if (statement == nullptr) {
    return detail::invalidImplementation(
        activityName_,
        fmt::format("sql {} holds no SQL, only blanks or comments", statementName(config_, index)));
  }
  // Whatever follows the first statement must be blanks or comments: a second statement
  // would otherwise be silently ignored.
  std::string_view rest(tail, size_t(text.data() + text.size() - tail));
  sqlite3_stmt *extra = nullptr;
  int restCode = sqlite3_prepare_v3(db_.get(), rest.data(), int(rest.size()), 0, &extra, nullptr);
  Statement extraStatement(extra);
  if (restCode != SQLITE_OK || extraStatement != nullptr) {
    return detail::invalidImplementation(
        activityName_, fmt::format("sql {} holds more than one SQL statement; give a list, "
                                   "statement: [\"...\", \"...\"], to run several in one "
                                   "transaction",
                                   statementName(config_, index)));
  }
  return statement;
}

std::optional<WorkflowError> SqlAttempt::bindParameters(sqlite3_stmt *statement, size_t index) {
  int count = sqlite3_bind_parameter_count(statement);
  for (int parameter = 1; parameter <= count; ++parameter) {
    const char *rawName = sqlite3_bind_parameter_name(statement, parameter);
    if (rawName == nullptr || rawName[0] == '?') {
      return detail::invalidImplementation(
          activityName_, fmt::format("sql {} uses a positional parameter ('?'); name it, as in "
                                     ":order_id, and give order_id in the activity's input",
                                     statementName(config_, index)));
    }
    std::string_view name = rawName;
    std::string key(name.substr(1));
    const Value *value = input_.isObject() ? input_.asObject().find(key) : nullptr;
    if (value == nullptr) {
      Object details;
      details.set("parameter", std::string(name));
      std::string found = input_.isObject()
                              ? "the input has no '" + key + "'"
                              : fmt::format("the input is {}", kindWithArticle(input_.kind()));
      return makeError(runtime::kInvalidInput,
                       fmt::format("sql {} uses parameter '{}' but {}; give the activity an "
                                   "input object with '{}' (input_mapping)",
                                   statementName(config_, index), name, found, key),
                       Value(std::move(details)));
    }
    int code = SQLITE_OK;
    switch (value->kind()) {
    case ValueKind::Null:
      code = sqlite3_bind_null(statement, parameter);
      break;
    case ValueKind::Bool:
      code = sqlite3_bind_int64(statement, parameter, value->asBool() ? 1 : 0);
      break;
    case ValueKind::Int:
      code = sqlite3_bind_int64(statement, parameter, value->asInt());
      break;
    case ValueKind::Double:
      code = sqlite3_bind_double(statement, parameter, value->asDouble());
      break;
    case ValueKind::String: {
      const std::string &text = value->asString();
      code = sqlite3_bind_text64(statement, parameter, text.data(), text.size(), SQLITE_TRANSIENT,
                                 SQLITE_UTF8);
      break;
    }
    case ValueKind::Array:
    case ValueKind::Object: {
      // As JSON text, which SQLite's json_extract and json_each read.
      std::string text = toJson(*value);
      code = sqlite3_bind_text64(statement, parameter, text.data(), text.size(), SQLITE_TRANSIENT,
                                 SQLITE_UTF8);
      break;
    }
    }
    if (code != SQLITE_OK) {
      return failure(code, index);
    }
  }
  return std::nullopt;
}

Result<Value> SqlAttempt::columnValue(sqlite3_stmt *statement, int column, size_t index) {
  switch (sqlite3_column_type(statement, column)) {
  case SQLITE_INTEGER:
    resultBytes_ += kValueOverheadBytes;
    return Value(int64_t(sqlite3_column_int64(statement, column)));
  case SQLITE_FLOAT: {
    resultBytes_ += kValueOverheadBytes;
    double number = sqlite3_column_double(statement, column);
    if (!std::isfinite(number)) {
      Object details;
      details.set("column", sqlite3_column_name(statement, column));
      return makeError(stdlib_errors::SqlError,
                       fmt::format("sql {} returned an infinite REAL in column '{}', which "
                                   "JSON cannot hold; select it as text (CAST(x AS TEXT))",
                                   statementName(config_, index),
                                   sqlite3_column_name(statement, column)),
                       Value(std::move(details)));
    }
    return Value(number);
  }
  case SQLITE_TEXT: {
    const auto *text = reinterpret_cast<const char *>(sqlite3_column_text(statement, column));
    size_t size = size_t(sqlite3_column_bytes(statement, column));
    resultBytes_ += kValueOverheadBytes + size;
    return Value(std::string(text, size));
  }
  case SQLITE_BLOB: {
    const auto *bytes = static_cast<const char *>(sqlite3_column_blob(statement, column));
    size_t size = size_t(sqlite3_column_bytes(statement, column));
    resultBytes_ += kValueOverheadBytes + size * 4 / 3;
    return Value(detail::base64Encode(std::string_view(bytes == nullptr ? "" : bytes, size)));
  }
  case SQLITE_NULL:
    resultBytes_ += kValueOverheadBytes;
    return Value();
  }
  // sqlite3_column_type has exactly the five answers above.
  assert(false && "sqlite3_column_type returned an unknown type");
  return Value();
}

Result<Value> SqlAttempt::runStatement(size_t index) {
  Result<Statement> prepared = prepare(index);
  if (!prepared.ok()) {
    return std::move(prepared).error();
  }
  sqlite3_stmt *statement = prepared.value().get();
  if (std::optional<WorkflowError> problem = bindParameters(statement, index)) {
    return std::move(*problem);
  }
  std::vector<std::string> columns;
  for (int column = 0; column < sqlite3_column_count(statement); ++column) {
    columns.emplace_back(sqlite3_column_name(statement, column));
  }
  sqlite3_int64 changesBefore = sqlite3_total_changes64(db_.get());
  Array rows;
  for (;;) {
    int code = sqlite3_step(statement);
    if (code == SQLITE_DONE) {
      break;
    }
    if (code != SQLITE_ROW) {
      return failure(code, index);
    }
    Object row;
    row.reserve(columns.size());
    for (size_t column = 0; column < columns.size(); ++column) {
      Result<Value> value = columnValue(statement, int(column), index);
      if (!value.ok()) {
        return std::move(value).error();
      }
      resultBytes_ += columns[column].size();
      // set, not appendNew: `SELECT a, a` names two columns alike; the last one wins.
      row.set(columns[column], std::move(value).value());
    }
    rows.push_back(Value(std::move(row)));
    if (resultBytes_ > context_.payloadLimitBytes()) {
      Object details;
      details.set("limit_bytes", int64_t(context_.payloadLimitBytes()));
      details.set("rows_read", int64_t(rows.size()));
      return makeError(error_types::PayloadTooLarge,
                       fmt::format("the rows of sql {} pass the payload limit of {} bytes after "
                                   "{} rows; select fewer rows or columns (LIMIT, OFFSET)",
                                   statementName(config_, index), context_.payloadLimitBytes(),
                                   rows.size()),
                       Value(std::move(details)));
    }
  }
  // sqlite3_changes keeps the count of the last INSERT, UPDATE or DELETE, so a SELECT or a
  // CREATE after one would report its count again; the total tells whether this statement
  // changed anything at all.
  bool changed = sqlite3_total_changes64(db_.get()) != changesBefore;
  Object result;
  result.set("rows", Value(std::move(rows)));
  result.set("rows_affected", int64_t(changed ? sqlite3_changes64(db_.get()) : 0));
  result.set("last_insert_id", int64_t(sqlite3_last_insert_rowid(db_.get())));
  return Value(std::move(result));
}

WorkflowError SqlAttempt::failure(int code, std::optional<size_t> index) const {
  if (context_.cancelled()) {
    return runtime::stoppedError(context_.identity(), context_.stopReason());
  }
  std::string reason = sqlite3_errmsg(db_.get());
  Object details;
  details.set("database", config_.database);
  if (index && config_.isList) {
    details.set("statement", int64_t(*index + 1));
  }
  details.set("sqlite_code", int64_t(code));
  details.set("sqlite_error", sqlite3_errstr(code));
  std::string where = index ? "sql " + statementName(config_, *index) : std::string("sql");
  int primary = code & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    details.set("busy_timeout_ms", config_.busyTimeoutMs);
    WorkflowError error = makeError(
        stdlib_errors::SqlBusy,
        fmt::format("{} on '{}' gave up after waiting {} for another connection's lock: {}", where,
                    config_.database, formatDurationMs(config_.busyTimeoutMs), reason),
        Value(std::move(details)));
    error.retryable = true;
    return error;
  }
  if (primary == SQLITE_CONSTRAINT) {
    return makeError(
        stdlib_errors::SqlConstraint,
        fmt::format("{} on '{}' broke a constraint: {}", where, config_.database, reason),
        Value(std::move(details)));
  }
  WorkflowError error =
      makeError(stdlib_errors::SqlError,
                fmt::format("{} on '{}' failed: {}", where, config_.database, reason),
                Value(std::move(details)));
  // A failing disk or a full one may recover; a syntax error or a missing table will not.
  error.retryable = primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_NOMEM;
  return error;
}

class SqlActivity final : public runtime::Activity {
public:
  SqlActivity(std::string activityName, runtime::TemplateValue implementation,
              std::string baseDirectory, runtime::EnvironmentLookup environment)
      : activityName_(std::move(activityName)), implementation_(std::move(implementation)),
        baseDirectory_(std::move(baseDirectory)), environment_(std::move(environment)) {}

  [[nodiscard]] Result<Value> run(const Value &input, ActivityContext &context) override {
    Result<SqlConfig> config = resolve(input, context);
    if (!config.ok()) {
      return std::move(config).error();
    }
    SqlAttempt attempt(activityName_, config.value(), input, context);
    return attempt.run();
  }
  [[nodiscard]] std::string_view type() const override { return "sql"; }

private:
  [[nodiscard]] Result<SqlConfig> resolve(const Value &input, ActivityContext &context) const {
    Result<Value> evaluated =
        implementation_.evaluate(runtime::TemplateScope{input, environment_, context.redactor()});
    if (!evaluated.ok()) {
      return std::move(evaluated).error();
    }
    const Object &fields = evaluated->asObject();
    SqlConfig config;
    config.database = fields.find("database")->asString();
    if (config.database.empty()) {
      return detail::invalidImplementation(activityName_, "'database' evaluated to an empty path");
    }
    config.path = config.database == ":memory:"
                      ? config.database
                      : detail::resolvePath(config.database, baseDirectory_);
    config.isList = fields.find("statement")->isArray();
    config.statements = detail::readStrings(fields, "statement");
    Result<std::optional<int64_t>> busy =
        detail::readDurationMs(activityName_, fields, "busy_timeout");
    if (!busy.ok()) {
      return std::move(busy).error();
    }
    config.busyTimeoutMs = busy.value().value_or(kDefaultBusyTimeoutMs);
    if (const Value *create = fields.find("create")) {
      config.create = create->asBool();
    }
    if (const Value *readOnly = fields.find("read_only")) {
      config.readOnly = readOnly->asBool();
    }
    return config;
  }

  std::string activityName_;
  runtime::TemplateValue implementation_;
  std::string baseDirectory_;
  runtime::EnvironmentLookup environment_;
};

constexpr std::string_view kSqlExample =
    "{type: \"sql\", database: \"shop.db\", statement: \"SELECT * FROM orders WHERE id = :id\"}";

std::optional<WorkflowError> checkStatements(const runtime::ImplementationRequest &request) {
  const Value &statement = *request.implementation.asObject().find("statement");
  if (statement.isArray() && statement.asArray().empty()) {
    return detail::invalidImplementation(request.activityName,
                                         "'statement' is an empty list; give at least one "
                                         "statement");
  }
  std::vector<std::string> texts;
  if (statement.isString()) {
    texts.push_back(statement.asString());
  } else {
    for (const Value &element : statement.asArray()) {
      texts.push_back(element.asString());
    }
  }
  for (const std::string &text : texts) {
    if (text.find("${") != std::string::npos) {
      return detail::invalidImplementation(
          request.activityName,
          "a sql statement cannot hold templates (${...}): they would splice values into the "
          "SQL text; use a named parameter such as :order_id, bound from the activity's input");
    }
  }
  return std::nullopt;
}

} // namespace

runtime::ActivityFactory sqlActivityFactory() {
  return [](const runtime::ImplementationRequest &request)
             -> Result<std::shared_ptr<runtime::Activity>> {
    detail::FieldChecker check(request, "sql");
    for (std::optional<WorkflowError> problem :
         {detail::checkFieldNames(request, "sql",
                                  {"database", "statement", "busy_timeout", "create", "read_only"}),
          check.required("database", kSqlExample), check.required("statement", kSqlExample),
          check.string("database"), check.strings("statement"), check.duration("busy_timeout"),
          check.boolean("create"), check.boolean("read_only")}) {
      if (problem) {
        return std::move(*problem);
      }
    }
    if (std::optional<WorkflowError> problem = checkStatements(request)) {
      return std::move(*problem);
    }
    const Object &fields = request.implementation.asObject();
    const Value *create = fields.find("create");
    const Value *readOnly = fields.find("read_only");
    if (create != nullptr && readOnly != nullptr && create->asBool() && readOnly->asBool()) {
      return detail::invalidImplementation(request.activityName,
                                           "'create' and 'read_only' exclude each other; a "
                                           "read-only connection cannot create a database");
    }
    Result<runtime::TemplateValue> compiled = runtime::TemplateValue::compile(
        request.implementation, fmt::format("activity '{}' implementation", request.activityName));
    if (!compiled.ok()) {
      return std::move(compiled).error();
    }
    return std::shared_ptr<runtime::Activity>(
        std::make_shared<SqlActivity>(request.activityName, std::move(compiled).value(),
                                      request.baseDirectory, request.environment));
  };
}

} // namespace kotoba::stdlib
