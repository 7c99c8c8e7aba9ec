// The store: Kotoba's persistence layer over one SQLite file (or an in-memory database).
// The engine and activity execution record every step of every run here, so that a run
// survives a crash and can be replayed; docs/store.md describes the tables, the durability
// modes, the hash chains and the leases.
//
// Shape of the API:
// - Store::open creates or opens a file (WAL mode, a busy timeout, schema migrations) and
//   owns one connection. Store is safe to use from many threads; calls are serialized on
//   the connection. Two Store objects on one file (two processes) coordinate through
//   SQLite's locks: writes wait for each other, and `database is locked` never reaches the
//   caller, only a Busy error after StoreOptions::busyLimit of continuous contention.
// - Every write is a function over a Transaction, run inside `BEGIN IMMEDIATE ... COMMIT`:
//   all of its writes happen or none do. The function returns an error to roll back. It
//   may be run again from the start when the database stays busy mid-transaction, so it
//   must have no effect outside the Transaction (capture results into variables it
//   assigns, not appends to).
// - Reads go through a StoreReader: Store::read runs a function over one consistent
//   snapshot, and a Transaction is a StoreReader that also sees its own writes.
// - Errors are values (StoreResult / StoreError); no exception escapes.
#pragma once

#include "kotoba/runtime/store_types.h"

#include <llvm/ADT/STLFunctionalExtras.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kotoba::runtime {

namespace detail {
class Connection;
class BatchWriter;
} // namespace detail

// How commits reach the disk (runtime.md section 6).
enum class Durability : uint8_t {
  // synchronous=FULL: every commit is on disk before the call returns.
  Full,
  // WAL with synchronous=NORMAL: survives a crash of the process; a power loss may lose
  // the last commits. The default.
  Normal,
  // Group commit: a writer thread runs the transactions of many callers in one SQLite
  // transaction (each in its own savepoint), bounded by batchMaxTransactions and
  // batchWindow, then commits with synchronous=FULL and only then reports to each caller.
  Batch,
};
[[nodiscard]] std::string_view durabilityName(Durability durability);
[[nodiscard]] std::optional<Durability> durabilityFromName(std::string_view name);

struct StoreOptions {
  Durability durability = Durability::Normal;
  // SQLite's own wait for a lock before it reports busy, per attempt.
  std::chrono::milliseconds busyTimeout{2000};
  // How long the store keeps retrying a busy write before it gives up with a Busy error.
  std::chrono::milliseconds busyLimit{60000};
  // Batch mode: a batch commits when it holds this many transactions ...
  size_t batchMaxTransactions = 256;
  // ... or when this long has passed since its first transaction arrived.
  std::chrono::microseconds batchWindow{2000};
};

// What a Store has done since it opened, for tests, benchmarks and `--verbose` output.
struct StoreStats {
  uint64_t commits = 0;     // SQLite transactions committed
  uint64_t writes = 0;      // write functions run to success (a batch commit holds many)
  uint64_t busyRetries = 0; // attempts started over because another connection held the lock
};

// The schema version this binary creates and understands (PRAGMA user_version).
inline constexpr int kStoreSchemaVersion = 3;

// Reads of the store's tables. Obtained from Store::read or as a Transaction; never kept
// beyond the function it was handed to.
class StoreReader {
public:
  StoreReader(const StoreReader &) = delete;
  StoreReader &operator=(const StoreReader &) = delete;

  [[nodiscard]] StoreResult<std::optional<std::vector<uint8_t>>>
  module(std::string_view hash) const;

  [[nodiscard]] StoreResult<std::optional<RunRecord>> run(std::string_view runId) const;
  // Newest first; both filters optional.
  [[nodiscard]] StoreResult<std::vector<RunRecord>> runs(const RunQuery &query) const;
  // The runs of a continue-as-new chain, oldest first.
  [[nodiscard]] StoreResult<std::vector<RunRecord>> chain(std::string_view chainId) const;
  [[nodiscard]] StoreResult<std::vector<RunRecord>> children(std::string_view parentId) const;
  // RUNNING or COMPENSATING runs with no lease or an expired one: work a process may take
  // over. Oldest first.
  [[nodiscard]] StoreResult<std::vector<std::string>> unownedActiveRuns(int64_t nowMs,
                                                                        size_t limit) const;

  [[nodiscard]] StoreResult<std::vector<EventRecord>> events(std::string_view runId,
                                                             const EventRange &range = {}) const;

  [[nodiscard]] StoreResult<std::optional<CheckpointRecord>>
  latestCheckpoint(std::string_view runId) const;
  // The latest checkpoint covering no event after `seq`.
  [[nodiscard]] StoreResult<std::optional<CheckpointRecord>>
  checkpointAtOrBefore(std::string_view runId, int64_t seq) const;

  // Timers with fire_ms <= nowMs, earliest first.
  [[nodiscard]] StoreResult<std::vector<TimerRecord>> dueTimers(int64_t nowMs, size_t limit) const;
  // The earliest fire time of any timer, for the engine to sleep until.
  [[nodiscard]] StoreResult<std::optional<int64_t>> nextTimerMs() const;
  [[nodiscard]] StoreResult<std::vector<TimerRecord>> timersOf(std::string_view runId) const;

  // Tasks a worker may take at nowMs (ready and due, or running with a lapsed lease),
  // earliest first.
  [[nodiscard]] StoreResult<std::vector<TaskRecord>> availableTasks(int64_t nowMs,
                                                                    size_t limit) const;
  [[nodiscard]] StoreResult<std::optional<int64_t>> nextTaskAvailableMs() const;
  [[nodiscard]] StoreResult<std::optional<TaskRecord>> task(std::string_view runId,
                                                            int64_t commandId) const;
  [[nodiscard]] StoreResult<std::vector<TaskRecord>> tasksOf(std::string_view runId) const;

  // A run's inbox in arrival order.
  [[nodiscard]] StoreResult<std::vector<InboxMessage>> inbox(std::string_view runId) const;
  // Runs with at least one message waiting, by oldest message.
  [[nodiscard]] StoreResult<std::vector<std::string>> runsWithInbox(size_t limit) const;

  // The oldest event of `type` published at or after `sinceMs` that `runId` has not
  // consumed and whose payload matches `filter`: every filter key names a field of the
  // payload (an object) whose value equals the filter's (Value ==, so 1 matches 1.0).
  [[nodiscard]] StoreResult<std::optional<PublishedEvent>>
  findPublishedEvent(std::string_view runId, std::string_view type, int64_t sinceMs,
                     const Object &filter) const;

  [[nodiscard]] StoreResult<std::optional<LeaseRecord>> lease(std::string_view runId) const;
  // Whether `owner` holds an unexpired lease on the run at nowMs.
  [[nodiscard]] StoreResult<bool> holdsLease(std::string_view runId, std::string_view owner,
                                             int64_t nowMs) const;
  // The owners of run leases and task claims unexpired at nowMs, each once: the candidates
  // an engine checks for owners it can prove dead (owner_identity.h).
  [[nodiscard]] StoreResult<std::vector<std::string>> leaseOwners(int64_t nowMs) const;

  // Recomputes the run's event hash chain and checkpoint hashes from the stored bytes and
  // reports the first link that does not hold (`kotoba-vm verify`).
  [[nodiscard]] StoreResult<ChainReport> verifyRun(std::string_view runId) const;

  // The store's file, for messages.
  [[nodiscard]] const std::string &path() const;

protected:
  explicit StoreReader(detail::Connection &connection) : connection_(connection) {}
  ~StoreReader() = default;
  detail::Connection &connection_;

  friend class Store;
};

// The writes of one atomic unit of work, plus the reads (which see the writes made so
// far). Created by the store for a write function; never kept beyond it.
class Transaction : public StoreReader {
public:
  // Stores a module's bytes under its hash; false when the hash was already stored.
  [[nodiscard]] StoreResult<bool> putModule(std::string_view hash, std::span<const uint8_t> kbc,
                                            int64_t timeMs);

  // Conflict when the id is taken, NotFound when the module is not stored.
  [[nodiscard]] StoreStatus createRun(const NewRun &run);
  [[nodiscard]] StoreStatus updateRun(std::string_view runId, const RunUpdate &update);

  // Appends events after the run's last one: numbers them, stamps them with this
  // transaction's tx id, links each into the run's hash chain and advances runs.last_seq.
  [[nodiscard]] StoreResult<AppendedEvents> appendEvents(std::string_view runId,
                                                         std::span<const NewEvent> events);
  // This transaction's tx id, taken from transaction_counter on first use.
  [[nodiscard]] StoreResult<int64_t> txId();

  // Stores the machine state covering events up to `seq` (which must exist), chained to
  // the run's previous checkpoint. Returns the checkpoint's hash.
  [[nodiscard]] StoreResult<Hash> saveCheckpoint(std::string_view runId, int64_t seq,
                                                 std::string_view state, int64_t timeMs);
  // Deletes all but the newest `keep` checkpoints of the run; returns how many went.
  [[nodiscard]] StoreResult<int64_t> pruneCheckpoints(std::string_view runId, size_t keep);
  // The same for every run.
  [[nodiscard]] StoreResult<int64_t> pruneAllCheckpoints(size_t keep);

  // Arms a timer, replacing one with the same run, command and kind.
  [[nodiscard]] StoreStatus addTimer(const TimerRecord &timer);
  // False when there was no such timer (it fired, or was never armed).
  [[nodiscard]] StoreResult<bool> removeTimer(std::string_view runId, int64_t commandId,
                                              TimerKind kind);
  [[nodiscard]] StoreResult<int64_t> removeTimersOf(std::string_view runId);

  // Adds a ready task, replacing the run's task for the same command (the next attempt);
  // claimed by task.owner until task.leaseExpiryMs when those are set.
  [[nodiscard]] StoreStatus addTask(const NewTask &task);
  // Takes a task for `owner` until leaseExpiryMs when it is available at nowMs; false when
  // it is not (another worker has it, it is not due, or it is gone).
  [[nodiscard]] StoreResult<bool> claimTask(std::string_view runId, int64_t commandId,
                                            std::string_view owner, int64_t nowMs,
                                            int64_t leaseExpiryMs);
  // Claims up to `limit` available tasks for `owner`; returns them as claimed.
  [[nodiscard]] StoreResult<std::vector<TaskRecord>>
  claimAvailableTasks(std::string_view owner, int64_t nowMs, int64_t leaseExpiryMs, size_t limit);
  // Extends the owner's claim; false when the task is no longer the owner's.
  [[nodiscard]] StoreResult<bool> renewTask(std::string_view runId, int64_t commandId,
                                            std::string_view owner, int64_t leaseExpiryMs);
  [[nodiscard]] StoreResult<bool> removeTask(std::string_view runId, int64_t commandId);

  // Returns the message's id. NotFound when the run does not exist.
  [[nodiscard]] StoreResult<int64_t> addInboxMessage(std::string_view runId, InboxKind kind,
                                                     std::string_view name, const Value &payload,
                                                     int64_t timeMs);
  [[nodiscard]] StoreResult<bool> removeInboxMessage(int64_t id);

  // Publishes an engine-wide event; returns its id.
  [[nodiscard]] StoreResult<int64_t> publishEvent(std::string_view type, const Value &payload,
                                                  int64_t timeMs);
  // Records that the run consumed the event; false when it already had.
  [[nodiscard]] StoreResult<bool> consumePublishedEvent(std::string_view runId,
                                                        int64_t publishedEventId, int64_t timeMs);
  // Deletes published events older than `beforeMs` with their consumptions.
  [[nodiscard]] StoreResult<int64_t> purgePublishedEvents(int64_t beforeMs);

  // Takes the run's lease for `owner` until expiryMs when nobody holds it, its lease has
  // expired at nowMs, or `owner` already holds it. False when another owner holds it.
  [[nodiscard]] StoreResult<bool> acquireLease(std::string_view runId, std::string_view owner,
                                               int64_t nowMs, int64_t expiryMs);
  // Extends the owner's lease; false when the run's lease is not the owner's any more.
  [[nodiscard]] StoreResult<bool> renewLease(std::string_view runId, std::string_view owner,
                                             int64_t expiryMs);
  [[nodiscard]] StoreResult<bool> releaseLease(std::string_view runId, std::string_view owner);
  // Gives up every run lease and task claim of `owner`, a process the caller has proved dead:
  // its runs are unowned and its claimed tasks ready (due as before) at once. Returns how
  // many leases and claims there were.
  [[nodiscard]] StoreResult<int64_t> releaseOwner(std::string_view owner);
  // A Conflict error unless `owner` holds an unexpired lease on the run: the fence an
  // engine puts first in every transaction that writes a run's history.
  [[nodiscard]] StoreStatus requireLease(std::string_view runId, std::string_view owner,
                                         int64_t nowMs);

  // Deletes finished runs (with events, checkpoints, timers, tasks, inbox, consumptions
  // and leases) and then every module no remaining run refers to.
  [[nodiscard]] StoreResult<PurgeCounts> purge(const PurgeOptions &options);

private:
  explicit Transaction(detail::Connection &connection) : StoreReader(connection) {}
  std::optional<int64_t> tx_;

  friend class Store;
  friend class detail::BatchWriter;
};

using WriteFunction = std::function<StoreStatus(Transaction &)>;
using CommitCallback = std::function<void(StoreStatus)>;

class Store {
public:
  // Opens the file, creating it (and its schema) on first use. Refuses files that are not
  // Kotoba stores and stores written by a newer schema version.
  [[nodiscard]] static StoreResult<std::unique_ptr<Store>> open(const std::string &path,
                                                                const StoreOptions &options = {});
  // A private database that lives as long as the Store (tests, `--db :memory:`).
  [[nodiscard]] static StoreResult<std::unique_ptr<Store>>
  openInMemory(const StoreOptions &options = {});

  // Commits whatever a batch still holds, then closes the connection.
  ~Store();
  Store(const Store &) = delete;
  Store &operator=(const Store &) = delete;

  [[nodiscard]] const std::string &path() const;
  [[nodiscard]] Durability durability() const;

  // Runs `write` in one transaction and returns once it is committed (or rolled back). In
  // batch mode it joins the group being collected and closes it, since its caller waits.
  [[nodiscard]] StoreStatus write(const WriteFunction &write);
  // The same, without waiting: the future completes after the commit (or the failure). In
  // full and normal modes the write runs at once on the calling thread.
  [[nodiscard]] std::future<StoreStatus> submit(WriteFunction write);
  // The same with a callback, called after the commit on the thread that committed.
  void submit(WriteFunction write, CommitCallback onCommitted);
  // Batch mode: closes the group being collected, so that what is queued commits now rather
  // than at the end of its window. For a writer that has submitted all it has and is about to
  // wait for it: waiting out the window would only add latency. Nothing in other modes.
  void flush();

  // Runs `read` over one consistent snapshot of the store.
  [[nodiscard]] StoreStatus read(llvm::function_ref<StoreStatus(const StoreReader &)> read);

  // One read in its own snapshot: `store.query([&](const StoreReader &r) { return r.run(id); })`
  template <typename Function>
  [[nodiscard]] auto query(Function &&function)
      -> decltype(function(std::declval<const StoreReader &>())) {
    using ResultType = decltype(function(std::declval<const StoreReader &>()));
    std::optional<ResultType> result;
    StoreStatus status = read([&](const StoreReader &reader) -> StoreStatus {
      result.emplace(function(reader));
      if (!result->ok()) {
        return result->error();
      }
      return {};
    });
    if (!status.ok()) {
      return std::move(status).error();
    }
    return std::move(*result);
  }

  [[nodiscard]] StoreStats stats() const;

  // The schema version stored in the file.
  [[nodiscard]] StoreResult<int> schemaVersion();

private:
  Store(std::unique_ptr<detail::Connection> connection, StoreOptions options);
  [[nodiscard]] static StoreResult<std::unique_ptr<Store>>
  openConnection(const std::string &path, const std::string &displayPath, bool inMemory,
                 const StoreOptions &options);
  [[nodiscard]] StoreStatus writeNow(const WriteFunction &write);

  std::unique_ptr<detail::Connection> connection_;
  StoreOptions options_;
  std::unique_ptr<detail::BatchWriter> batch_;

  friend class detail::BatchWriter;
};

// The hash of one event given its predecessor's, over the canonical content described in
// runtime/schema/store.sql. Exposed so that exported histories can be verified offline.
[[nodiscard]] Hash eventHash(const Hash &previous, std::string_view runId, int64_t seq,
                             int64_t typeNumber, int64_t timeMs, int64_t tx,
                             std::string_view stepId, std::string_view location,
                             std::string_view payloadJson);
[[nodiscard]] Hash checkpointHash(const Hash &previous, std::string_view runId, int64_t seq,
                                  const Hash &eventHashAtSeq, std::string_view state);

} // namespace kotoba::runtime
