// The store's thin layer over the SQLite C API, private to runtime/src: one connection with
// its cache of prepared statements, statements that reset themselves when released, and
// the Operation that turns a SQLite failure into a StoreError naming the file and what the
// store was doing. Nothing outside the store*.cpp files sees a sqlite3 type.
#pragma once

#include "kotoba/runtime/store_types.h"

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

namespace kotoba::runtime::detail {

class Connection;

// What the store is doing, for error messages: `format` holds one `{}` for `subject`, as in
// ("append events to run {}", runId). Formatted only when something fails.
struct Operation {
  const Connection &connection;
  const char *format;
  std::string_view subject = {};

  [[nodiscard]] std::string describe() const;
  // A StoreError for SQLite result code `code`; busy and locked codes become Busy.
  [[nodiscard]] StoreError sqlite(int code) const;
  [[nodiscard]] StoreError fail(StoreErrorKind kind, std::string_view cause) const;
};

// A prepared statement borrowed from the connection's cache. Releasing it (destruction)
// resets it and clears its bindings, so the next user starts clean.
class Statement {
public:
  Statement(sqlite3_stmt *statement, bool *inUse) : statement_(statement), inUse_(inUse) {}
  Statement(Statement &&other) noexcept;
  Statement(const Statement &) = delete;
  Statement &operator=(const Statement &) = delete;
  Statement &operator=(Statement &&) = delete;
  ~Statement();

  // Parameters are numbered from 1, as in SQL's ?1, ?2. Text and blobs are copied.
  Statement &bind(int index, int64_t value);
  Statement &bind(int index, std::string_view text);
  // Spelled out so that strings do not also match the optional<std::string> overload.
  Statement &bind(int index, const std::string &text) {
    return bind(index, std::string_view(text));
  }
  Statement &bind(int index, const char *text) { return bind(index, std::string_view(text)); }
  Statement &bind(int index, const std::optional<int64_t> &value);
  Statement &bind(int index, const std::optional<std::string> &text);
  Statement &bindBlob(int index, std::span<const uint8_t> bytes);
  Statement &bindBlob(int index, std::string_view bytes);
  Statement &bindNull(int index);

  // Advances: true with a row to read, false when done.
  [[nodiscard]] StoreResult<bool> next(const Operation &operation);
  // Runs to completion, ignoring rows.
  [[nodiscard]] StoreStatus run(const Operation &operation);

  [[nodiscard]] bool isNull(int column) const;
  [[nodiscard]] int64_t integer(int column) const;
  [[nodiscard]] std::optional<int64_t> optionalInteger(int column) const;
  // The bytes of a text or blob column, valid until the next step or release.
  [[nodiscard]] std::string_view bytes(int column) const;
  [[nodiscard]] std::string text(int column) const { return std::string(bytes(column)); }
  [[nodiscard]] std::optional<std::string> optionalText(int column) const;

private:
  void noteBind(int code);
  sqlite3_stmt *statement_;
  bool *inUse_;
  int bindError_ = SQLITE_OK;
};

class Connection {
public:
  Connection(sqlite3 *database, std::string displayPath);
  ~Connection();
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;

  // A cached statement for `sql`, which must be a string literal (or otherwise live as long
  // as the connection): the cache is keyed on its address. A statement is used by one
  // caller at a time; nesting two uses of the same SQL is a bug and asserts.
  [[nodiscard]] StoreResult<Statement> prepare(const Operation &operation, const char *sql);
  // Runs SQL text that may hold several statements (schema creation).
  [[nodiscard]] StoreStatus execScript(const Operation &operation, const char *sql);

  [[nodiscard]] sqlite3 *database() const { return database_; }
  [[nodiscard]] const std::string &path() const { return path_; }
  [[nodiscard]] std::string lastMessage() const;
  // Rows changed by the last INSERT, UPDATE or DELETE, and the last inserted rowid.
  [[nodiscard]] int64_t changes() const { return sqlite3_changes64(database_); }
  [[nodiscard]] int64_t lastInsertRowId() const { return sqlite3_last_insert_rowid(database_); }

  // Serializes use of the connection between threads. Taking it twice on one thread (a
  // write function that calls Store::write or Store::read) would deadlock: it asserts.
  class Lock {
  public:
    explicit Lock(Connection &connection);
    ~Lock();
    Lock(const Lock &) = delete;
    Lock &operator=(const Lock &) = delete;

  private:
    Connection &connection_;
  };

  // Counters behind Store::stats().
  mutable std::atomic<uint64_t> commits{0};
  mutable std::atomic<uint64_t> writes{0};
  mutable std::atomic<uint64_t> busyRetries{0};

private:
  struct CachedStatement {
    sqlite3_stmt *statement = nullptr;
    bool inUse = false;
  };

  sqlite3 *database_;
  std::string path_;
  std::unordered_map<const char *, CachedStatement> cache_;
  std::mutex mutex_;
  std::atomic<std::thread::id> holder_{};
};

} // namespace kotoba::runtime::detail
