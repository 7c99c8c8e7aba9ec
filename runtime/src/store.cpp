// Opening a store, running writes and reads on it, and batch mode's group commit. The table
// operations themselves are in store_reads.cpp and store_writes.cpp; hashing and
// verification in store_hash.cpp; schema creation in store_schema.cpp.
#include "kotoba/runtime/store.h"

#include "store_internal.h"

#include "kotoba/vm/json.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <exception>
#include <thread>
#include <utility>

namespace kotoba::runtime {

const char *storeErrorKindName(StoreErrorKind kind) {
  switch (kind) {
  case StoreErrorKind::Sqlite:
    return "sqlite";
  case StoreErrorKind::Busy:
    return "busy";
  case StoreErrorKind::NotFound:
    return "not found";
  case StoreErrorKind::Conflict:
    return "conflict";
  case StoreErrorKind::Corrupt:
    return "corrupt";
  case StoreErrorKind::Incompatible:
    return "incompatible";
  case StoreErrorKind::Invalid:
    return "invalid";
  }
  return "unknown";
}

namespace {

constexpr std::array<std::pair<RunStatus, std::string_view>, 9> kRunStatusNames{{
    {RunStatus::Running, "RUNNING"},
    {RunStatus::Compensating, "COMPENSATING"},
    {RunStatus::Completed, "COMPLETED"},
    {RunStatus::Failed, "FAILED"},
    {RunStatus::Cancelled, "CANCELLED"},
    {RunStatus::TimedOut, "TIMED_OUT"},
    {RunStatus::Terminated, "TERMINATED"},
    {RunStatus::ContinuedAsNew, "CONTINUED_AS_NEW"},
    {RunStatus::Blocked, "BLOCKED"},
}};

constexpr std::array<std::pair<TimerKind, std::string_view>, 4> kTimerKindNames{{
    {TimerKind::Timer, "timer"},
    {TimerKind::WaitTimeout, "wait_timeout"},
    {TimerKind::WorkflowRetry, "workflow_retry"},
    {TimerKind::WorkflowTimeout, "workflow_timeout"},
}};

constexpr std::array<std::pair<InboxKind, std::string_view>, 3> kInboxKindNames{{
    {InboxKind::Signal, "signal"},
    {InboxKind::Cancel, "cancel"},
    {InboxKind::Terminate, "terminate"},
}};

constexpr std::array<std::pair<Durability, std::string_view>, 3> kDurabilityNames{{
    {Durability::Full, "full"},
    {Durability::Normal, "normal"},
    {Durability::Batch, "batch"},
}};

template <typename Enum, size_t Count>
std::string_view nameOf(const std::array<std::pair<Enum, std::string_view>, Count> &table,
                        Enum value) {
  for (const auto &[entry, name] : table) {
    if (entry == value) {
      return name;
    }
  }
  assert(false && "an enum value missing from its name table");
  return "?";
}

template <typename Enum, size_t Count>
std::optional<Enum> valueOf(const std::array<std::pair<Enum, std::string_view>, Count> &table,
                            std::string_view name) {
  for (const auto &[entry, entryName] : table) {
    if (entryName == name) {
      return entry;
    }
  }
  return std::nullopt;
}

// Runs a user's write function, turning an exception into an error so that none escapes
// the store (and none kills batch mode's writer thread).
StoreStatus callWrite(const WriteFunction &write, Transaction &transaction,
                      const detail::Operation &operation) {
  try {
    return write(transaction);
  } catch (const std::exception &exception) {
    return operation.fail(StoreErrorKind::Invalid,
                          fmt::format("the write function threw: {}", exception.what()));
  } catch (...) {
    return operation.fail(StoreErrorKind::Invalid, "the write function threw");
  }
}

} // namespace

std::string_view runStatusName(RunStatus status) {
  return nameOf(kRunStatusNames, status);
}
std::optional<RunStatus> runStatusFromName(std::string_view name) {
  return valueOf(kRunStatusNames, name);
}

bool isFinalStatus(RunStatus status) {
  switch (status) {
  case RunStatus::Running:
  case RunStatus::Compensating:
  case RunStatus::Blocked:
    return false;
  case RunStatus::Completed:
  case RunStatus::Failed:
  case RunStatus::Cancelled:
  case RunStatus::TimedOut:
  case RunStatus::Terminated:
  case RunStatus::ContinuedAsNew:
    return true;
  }
  return false;
}

std::string_view timerKindName(TimerKind kind) {
  return nameOf(kTimerKindNames, kind);
}
std::optional<TimerKind> timerKindFromName(std::string_view name) {
  return valueOf(kTimerKindNames, name);
}

std::string_view inboxKindName(InboxKind kind) {
  return nameOf(kInboxKindNames, kind);
}
std::optional<InboxKind> inboxKindFromName(std::string_view name) {
  return valueOf(kInboxKindNames, name);
}

std::string_view durabilityName(Durability durability) {
  return nameOf(kDurabilityNames, durability);
}
std::optional<Durability> durabilityFromName(std::string_view name) {
  return valueOf(kDurabilityNames, name);
}

std::string hashHex(const Hash &hash) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  text.reserve(hash.size() * 2);
  for (uint8_t byte : hash) {
    text.push_back(kDigits[byte >> 4]);
    text.push_back(kDigits[byte & 0xf]);
  }
  return text;
}

namespace detail {
namespace {

// Pauses between attempts on a busy database. SQLite's busy handler has already waited
// busyTimeout inside most busy results; this covers the ones it returns at once (WAL
// recovery, a lock upgrade it refuses), growing so that two spinning writers spread out.
void backOff(int attempt) {
  int millis = std::min(1 << std::min(attempt, 6), 50);
  std::this_thread::sleep_for(std::chrono::milliseconds(millis));
}

bool inTransaction(const Connection &connection) {
  return sqlite3_get_autocommit(connection.database()) == 0;
}

void rollBack(Connection &connection, const Operation &operation) {
  // Some failures (disk full, I/O errors) end the transaction themselves.
  if (!inTransaction(connection)) {
    return;
  }
  if (StoreResult<Statement> rollback = connection.prepare(operation, "ROLLBACK"); rollback.ok()) {
    (void)rollback->run(operation);
  }
}

StoreStatus runStatement(Connection &connection, const Operation &operation, const char *sql) {
  StoreResult<Statement> statement = connection.prepare(operation, sql);
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  return statement->run(operation);
}

StoreError busyLimitError(const Operation &operation) {
  return operation.fail(StoreErrorKind::Busy,
                        "the database stayed locked by another connection past the busy "
                        "limit; another process may be holding a transaction open (close "
                        "sqlite3 shells on the file) or the limit may need raising");
}

// Retries `attempt` while it fails with Busy, until the deadline.
template <typename Attempt>
auto retryWhileBusy(const Operation &operation, Deadline deadline, Attempt attempt)
    -> decltype(attempt()) {
  for (int tries = 0;; ++tries) {
    auto result = attempt();
    if (result.ok() || result.error().kind != StoreErrorKind::Busy) {
      return result;
    }
    if (SteadyClock::now() >= deadline) {
      return busyLimitError(operation);
    }
    ++operation.connection.busyRetries;
    backOff(tries);
  }
}

} // namespace

StoreStatus runWriteTransaction(Connection &connection, const Operation &operation,
                                Deadline deadline, llvm::function_ref<StoreStatus()> body) {
  return retryWhileBusy(operation, deadline, [&]() -> StoreStatus {
    if (StoreStatus begun = runStatement(connection, operation, "BEGIN IMMEDIATE"); !begun.ok()) {
      return begun;
    }
    if (StoreStatus done = body(); !done.ok()) {
      rollBack(connection, operation);
      return done;
    }
    if (StoreStatus committed = runStatement(connection, operation, "COMMIT"); !committed.ok()) {
      rollBack(connection, operation);
      return committed;
    }
    ++connection.commits;
    return {};
  });
}

StoreResult<Value> decodeJson(const Operation &operation, std::string_view text,
                              std::string_view what) {
  Result<Value> parsed = parseJson(text);
  if (!parsed.ok()) {
    return operation.fail(StoreErrorKind::Corrupt,
                          fmt::format("{} is not valid JSON ({}); run `kotoba-vm verify` on "
                                      "the run to find the damaged event",
                                      what, parsed.error().message));
  }
  return std::move(parsed).value();
}

BatchWriter::BatchWriter(Connection &connection, const StoreOptions &options)
    : connection_(connection), options_(options), thread_([this] { loop(); }) {}

BatchWriter::~BatchWriter() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool BatchWriter::onWriterThread() const {
  return std::this_thread::get_id() == thread_.get_id();
}

void BatchWriter::enqueue(WriteFunction write, CommitCallback onCommitted) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(Pending{std::move(write), std::move(onCommitted)});
  }
  wake_.notify_one();
}

void BatchWriter::closeWindow() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closeRequested_ = true;
  }
  wake_.notify_one();
}

void BatchWriter::loop() {
  size_t maxCount = std::max<size_t>(options_.batchMaxTransactions, 1);
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {
      return; // stopping, with nothing left to commit
    }
    // The window opens when the batch's first write is seen; a full batch, a writer waiting
    // for it (closeWindow) or a stop closes it early.
    Deadline windowEnd = SteadyClock::now() + options_.batchWindow;
    wake_.wait_until(lock, windowEnd, [&] {
      return stopping_ || closeRequested_ || queue_.size() >= maxCount;
    });
    closeRequested_ = false;

    std::deque<Pending> batch;
    while (!queue_.empty() && batch.size() < maxCount) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    commitBatch(batch);
    lock.lock();
  }
}

void BatchWriter::commitBatch(std::deque<Pending> &batch) {
  std::vector<StoreStatus> results(batch.size());
  StoreStatus committed;
  {
    Connection::Lock lock(connection_);
    Operation operation{connection_, "commit a group of writes"};
    Deadline deadline = SteadyClock::now() + options_.busyLimit;
    committed = runWriteTransaction(connection_, operation, deadline, [&]() -> StoreStatus {
      for (size_t index = 0; index < batch.size(); ++index) {
        if (StoreStatus saved = runStatement(connection_, operation, "SAVEPOINT kotoba_write");
            !saved.ok()) {
          return saved;
        }
        Transaction transaction(connection_);
        StoreStatus result = callWrite(batch[index].write, transaction, operation);
        if (!result.ok()) {
          if (result.error().kind == StoreErrorKind::Busy) {
            return result; // the whole batch starts over
          }
          if (StoreStatus undone = runStatement(connection_, operation, "ROLLBACK TO kotoba_write");
              !undone.ok()) {
            return undone;
          }
        }
        if (StoreStatus released = runStatement(connection_, operation, "RELEASE kotoba_write");
            !released.ok()) {
          return released;
        }
        results[index] = std::move(result);
      }
      return {};
    });
  }
  if (committed.ok()) {
    for (const StoreStatus &result : results) {
      connection_.writes += result.ok() ? 1 : 0;
    }
  }
  // Callers learn their outcome only now, after the commit: nothing is acted on before it.
  for (size_t index = 0; index < batch.size(); ++index) {
    if (batch[index].onCommitted) {
      batch[index].onCommitted(committed.ok() ? std::move(results[index]) : committed);
    }
  }
}

} // namespace detail

Store::Store(std::unique_ptr<detail::Connection> connection, StoreOptions options)
    : connection_(std::move(connection)), options_(options) {
  if (options_.durability == Durability::Batch) {
    batch_ = std::make_unique<detail::BatchWriter>(*connection_, options_);
  }
}

Store::~Store() {
  batch_.reset(); // commits what is queued; the connection must outlive the writer thread
}

const std::string &Store::path() const {
  return connection_->path();
}
Durability Store::durability() const {
  return options_.durability;
}

StoreResult<std::unique_ptr<Store>> Store::open(const std::string &path,
                                                const StoreOptions &options) {
  return openConnection(path, path, false, options);
}

StoreResult<std::unique_ptr<Store>> Store::openInMemory(const StoreOptions &options) {
  return openConnection(":memory:", "in-memory store", true, options);
}

namespace {

// SQLite's memory statistics take a global mutex and update counters on every allocation
// and free; turning them off cut the batch writer's instructions in the throughput
// benchmark by 9% (callgrind, bench/findings.md, "The batch writer thread"). Nothing reads
// them. The setting is process-wide and only takes before SQLite initializes; when the host
// has used SQLite first, sqlite3_config refuses (SQLITE_MISUSE) and the statistics stay on,
// which costs speed only.
void turnOffSqliteMemoryStatistics() {
  static const int once = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)once;
}

} // namespace

StoreResult<std::unique_ptr<Store>> Store::openConnection(const std::string &path,
                                                          const std::string &displayPath,
                                                          bool inMemory,
                                                          const StoreOptions &options) {
  detail::installTestKillHook();
  turnOffSqliteMemoryStatistics();
  sqlite3 *database = nullptr;
  // NOMUTEX: the Connection's own lock serializes threads. No URI parsing, so a path is
  // always a path.
  int code =
      sqlite3_open_v2(path.c_str(), &database,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  auto connection = std::make_unique<detail::Connection>(database, displayPath);
  detail::Operation operation{*connection, "open the store"};
  if (code != SQLITE_OK) {
    return operation.sqlite(code);
  }
  sqlite3_extended_result_codes(database, 1);
  sqlite3_busy_timeout(database, static_cast<int>(options.busyTimeout.count()));

  detail::Deadline deadline = detail::SteadyClock::now() + options.busyLimit;
  const char *synchronous = options.durability == Durability::Normal ? "PRAGMA synchronous = NORMAL"
                                                                     : "PRAGMA synchronous = FULL";
  StoreStatus configured = detail::retryWhileBusy(operation, deadline, [&]() -> StoreStatus {
    if (StoreStatus refused = detail::refuseForeignFile(*connection, operation); !refused.ok()) {
      return refused;
    }
    if (!inMemory) {
      StoreResult<detail::Statement> wal =
          connection->prepare(operation, "PRAGMA journal_mode = WAL");
      if (!wal.ok()) {
        return std::move(wal).error();
      }
      StoreResult<bool> row = wal->next(operation);
      if (!row.ok()) {
        return std::move(row).error();
      }
      if (!row.value() || wal->bytes(0) != "wal") {
        return operation.fail(StoreErrorKind::Sqlite,
                              "SQLite refused write-ahead logging for this file; keep the "
                              "store on a local file system");
      }
    }
    for (const char *pragma : {synchronous, "PRAGMA foreign_keys = ON"}) {
      if (StoreStatus done = detail::runStatement(*connection, operation, pragma); !done.ok()) {
        return done;
      }
    }
    return {};
  });
  if (!configured.ok()) {
    return std::move(configured).error();
  }
  if (StoreStatus migrated = detail::migrateSchema(*connection, deadline); !migrated.ok()) {
    return std::move(migrated).error();
  }
  return std::unique_ptr<Store>(new Store(std::move(connection), options));
}

StoreStatus Store::writeNow(const WriteFunction &write) {
  detail::Connection::Lock lock(*connection_);
  detail::Operation operation{*connection_, "commit a write"};
  detail::Deadline deadline = detail::SteadyClock::now() + options_.busyLimit;
  StoreStatus status =
      detail::runWriteTransaction(*connection_, operation, deadline, [&]() -> StoreStatus {
        Transaction transaction(*connection_);
        return callWrite(write, transaction, operation);
      });
  if (status.ok()) {
    ++connection_->writes;
  }
  return status;
}

StoreStats Store::stats() const {
  return StoreStats{connection_->commits.load(), connection_->writes.load(),
                    connection_->busyRetries.load()};
}

StoreStatus Store::write(const WriteFunction &write) {
  if (!batch_) {
    return writeNow(write);
  }
  assert(!batch_->onWriterThread() &&
         "Store::write from a commit callback would wait for its own batch; use submit");
  std::promise<StoreStatus> promise;
  std::future<StoreStatus> done = promise.get_future();
  batch_->enqueue(write, [&promise](StoreStatus status) { promise.set_value(std::move(status)); });
  batch_->closeWindow();
  return done.get();
}

std::future<StoreStatus> Store::submit(WriteFunction write) {
  auto promise = std::make_shared<std::promise<StoreStatus>>();
  std::future<StoreStatus> done = promise->get_future();
  submit(std::move(write),
         [promise](StoreStatus status) { promise->set_value(std::move(status)); });
  return done;
}

void Store::submit(WriteFunction write, CommitCallback onCommitted) {
  if (batch_) {
    batch_->enqueue(std::move(write), std::move(onCommitted));
    return;
  }
  StoreStatus status = writeNow(write);
  if (onCommitted) {
    onCommitted(std::move(status));
  }
}

void Store::flush() {
  if (batch_) {
    batch_->closeWindow();
  }
}

StoreStatus Store::read(llvm::function_ref<StoreStatus(const StoreReader &)> read) {
  detail::Connection::Lock lock(*connection_);
  detail::Operation operation{*connection_, "read the store"};
  detail::Deadline deadline = detail::SteadyClock::now() + options_.busyLimit;
  // A read transaction gives every read in `read` one snapshot, even while other
  // processes commit.
  return detail::retryWhileBusy(operation, deadline, [&]() -> StoreStatus {
    if (StoreStatus begun = detail::runStatement(*connection_, operation, "BEGIN"); !begun.ok()) {
      return begun;
    }
    StoreReader reader(*connection_);
    StoreStatus status = read(reader);
    if (StoreStatus ended = detail::runStatement(*connection_, operation, "COMMIT"); !ended.ok()) {
      detail::rollBack(*connection_, operation);
      return status.ok() ? ended : status;
    }
    return status;
  });
}

StoreResult<int> Store::schemaVersion() {
  return query([&](const StoreReader &reader) -> StoreResult<int> {
    detail::Operation operation{reader.connection_, "read the schema version"};
    StoreResult<detail::Statement> statement =
        reader.connection_.prepare(operation, "PRAGMA user_version");
    if (!statement.ok()) {
      return std::move(statement).error();
    }
    StoreResult<bool> row = statement->next(operation);
    if (!row.ok()) {
      return std::move(row).error();
    }
    return row.value() ? static_cast<int>(statement->integer(0)) : 0;
  });
}

} // namespace kotoba::runtime
