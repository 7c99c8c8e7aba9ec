// The SQLite wrapper behind the store: statement caching, binding, stepping, and turning
// result codes into StoreErrors whose messages say which file and which operation failed.
#include "store_connection.h"

#include <fmt/format.h>

#include <cassert>
#include <utility>

namespace kotoba::runtime::detail {

std::string Operation::describe() const {
  return fmt::format(fmt::runtime(format), subject);
}

StoreError Operation::sqlite(int code) const {
  int primary = code & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    // The write loop retries these; the message is only seen if it runs out of patience.
    return fail(StoreErrorKind::Busy, "another connection holds the database lock");
  }
  std::string cause = connection.lastMessage();
  if (cause.empty() || cause == "not an error") {
    cause = sqlite3_errstr(code);
  }
  if (code == SQLITE_CONSTRAINT_FOREIGNKEY) {
    return fail(StoreErrorKind::NotFound,
                "a row it refers to (a run, a module or a published event) does not exist");
  }
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    return fail(StoreErrorKind::Corrupt,
                fmt::format("{}; the file is damaged or not a SQLite database", cause));
  }
  if (primary == SQLITE_FULL) {
    return fail(StoreErrorKind::Sqlite, fmt::format("{}; free some disk space", cause));
  }
  if (primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN || primary == SQLITE_PERM) {
    return fail(StoreErrorKind::Sqlite,
                fmt::format("{}; check that the file and its directory are writable", cause));
  }
  return fail(StoreErrorKind::Sqlite, cause);
}

StoreError Operation::fail(StoreErrorKind kind, std::string_view cause) const {
  return StoreError{kind, fmt::format("{}: cannot {}: {}", connection.path(), describe(), cause)};
}

Statement::Statement(Statement &&other) noexcept
    : statement_(std::exchange(other.statement_, nullptr)), inUse_(other.inUse_),
      bindError_(other.bindError_) {}

Statement::~Statement() {
  if (statement_ == nullptr) {
    return;
  }
  sqlite3_reset(statement_);
  sqlite3_clear_bindings(statement_);
  *inUse_ = false;
}

void Statement::noteBind(int code) {
  // A wrong parameter index is a bug in the SQL or its caller; anything else (a value too
  // big, out of memory) is reported by the next step.
  assert(code != SQLITE_RANGE && "binding a parameter the statement does not have");
  if (code != SQLITE_OK && bindError_ == SQLITE_OK) {
    bindError_ = code;
  }
}

Statement &Statement::bind(int index, int64_t value) {
  noteBind(sqlite3_bind_int64(statement_, index, value));
  return *this;
}

Statement &Statement::bind(int index, std::string_view text) {
  // SQLITE_TRANSIENT copies: callers may bind temporaries such as toJson(...).
  noteBind(sqlite3_bind_text64(statement_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                               SQLITE_UTF8));
  return *this;
}

Statement &Statement::bind(int index, const std::optional<int64_t> &value) {
  return value ? bind(index, *value) : bindNull(index);
}

Statement &Statement::bind(int index, const std::optional<std::string> &text) {
  return text ? bind(index, std::string_view(*text)) : bindNull(index);
}

Statement &Statement::bindBlob(int index, std::span<const uint8_t> bytes) {
  // A zero-length blob with a null pointer would bind NULL; point at something instead.
  static const uint8_t kEmpty = 0;
  const void *data = bytes.empty() ? &kEmpty : bytes.data();
  noteBind(sqlite3_bind_blob64(statement_, index, data, bytes.size(), SQLITE_TRANSIENT));
  return *this;
}

Statement &Statement::bindBlob(int index, std::string_view bytes) {
  return bindBlob(index, std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(bytes.data()),
                                                  bytes.size()));
}

Statement &Statement::bindNull(int index) {
  noteBind(sqlite3_bind_null(statement_, index));
  return *this;
}

StoreResult<bool> Statement::next(const Operation &operation) {
  if (bindError_ != SQLITE_OK) {
    return operation.sqlite(bindError_);
  }
  int code = sqlite3_step(statement_);
  if (code == SQLITE_ROW) {
    return true;
  }
  if (code == SQLITE_DONE) {
    return false;
  }
  return operation.sqlite(code);
}

StoreStatus Statement::run(const Operation &operation) {
  while (true) {
    StoreResult<bool> row = next(operation);
    if (!row.ok()) {
      return std::move(row).error();
    }
    if (!row.value()) {
      return {};
    }
  }
}

bool Statement::isNull(int column) const {
  return sqlite3_column_type(statement_, column) == SQLITE_NULL;
}

int64_t Statement::integer(int column) const {
  return sqlite3_column_int64(statement_, column);
}

std::optional<int64_t> Statement::optionalInteger(int column) const {
  if (isNull(column)) {
    return std::nullopt;
  }
  return integer(column);
}

std::string_view Statement::bytes(int column) const {
  // sqlite3_column_blob returns the bytes of a text value unchanged too; the length must be
  // read after the pointer (the documented order).
  const void *data = sqlite3_column_blob(statement_, column);
  int size = sqlite3_column_bytes(statement_, column);
  if (data == nullptr) {
    return {};
  }
  return std::string_view(static_cast<const char *>(data), static_cast<size_t>(size));
}

std::optional<std::string> Statement::optionalText(int column) const {
  if (isNull(column)) {
    return std::nullopt;
  }
  return text(column);
}

Connection::Connection(sqlite3 *database, std::string displayPath)
    : database_(database), path_(std::move(displayPath)) {}

Connection::~Connection() {
  for (auto &[sql, cached] : cache_) {
    sqlite3_finalize(cached.statement);
  }
  sqlite3_close_v2(database_);
}

std::string Connection::lastMessage() const {
  return sqlite3_errmsg(database_);
}

StoreResult<Statement> Connection::prepare(const Operation &operation, const char *sql) {
  auto found = cache_.find(sql);
  if (found == cache_.end()) {
    sqlite3_stmt *statement = nullptr;
    int code =
        sqlite3_prepare_v3(database_, sql, -1, SQLITE_PREPARE_PERSISTENT, &statement, nullptr);
    if (code != SQLITE_OK) {
      sqlite3_finalize(statement);
      return operation.sqlite(code);
    }
    found = cache_.emplace(sql, CachedStatement{statement, false}).first;
  }
  assert(!found->second.inUse &&
         "a cached statement used twice at once; finish the first use before the second");
  found->second.inUse = true;
  return Statement(found->second.statement, &found->second.inUse);
}

StoreStatus Connection::execScript(const Operation &operation, const char *sql) {
  int code = sqlite3_exec(database_, sql, nullptr, nullptr, nullptr);
  if (code != SQLITE_OK) {
    return operation.sqlite(code);
  }
  return {};
}

Connection::Lock::Lock(Connection &connection) : connection_(connection) {
  assert(connection.holder_.load() != std::this_thread::get_id() &&
         "the store was called from inside one of its own write or read functions; use the "
         "Transaction or StoreReader handed to that function instead");
  connection.mutex_.lock();
  connection.holder_.store(std::this_thread::get_id());
}

Connection::Lock::~Lock() {
  connection_.holder_.store(std::thread::id());
  connection_.mutex_.unlock();
}

} // namespace kotoba::runtime::detail
