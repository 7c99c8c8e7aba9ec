// The data the store keeps and hands out: run statuses, the records of each table, the
// store's error value and the result type every store operation returns. store.h has the
// operations; docs/store.md and runtime/schema/store.sql describe the tables these mirror.
#pragma once

#include "kotoba/runtime/event_types.h"
#include "kotoba/vm/value.h"

#include <array>
#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace kotoba::runtime {

// What went wrong, for callers that react differently: an engine retries nothing here (the
// store already waited out busy databases), but it tells a lost lease or a missing run from
// a broken file.
enum class StoreErrorKind : uint8_t {
  Sqlite,       // SQLite reported a failure (I/O, disk full, malformed file, ...)
  Busy,         // the write lock stayed taken for longer than StoreOptions::busyLimit
  NotFound,     // the run, module or row an operation names does not exist
  Conflict,     // the row exists in another state (run id taken, lease held by another)
  Corrupt,      // stored data does not read back (bad JSON, unknown event type number)
  Incompatible, // the file is not a Kotoba store, or a newer version than this binary knows
  Invalid,      // the caller asked for something the store cannot do (a bug of the caller)
};
[[nodiscard]] const char *storeErrorKindName(StoreErrorKind kind);

// A failed store operation. `message` is complete and ready for a person: it names the
// file, the operation and the cause, such as
//   kotoba.db: cannot append events to run r-1: no run has this id
struct StoreError {
  StoreErrorKind kind = StoreErrorKind::Sqlite;
  std::string message;
};

// Either a T or a StoreError; no exceptions leave the store.
template <typename T> class [[nodiscard]] StoreResult {
public:
  StoreResult(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  StoreResult(StoreError error) : state_(std::in_place_index<1>, std::move(error)) {}

  [[nodiscard]] bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  [[nodiscard]] const T &value() const & {
    assert(ok() && "value() on a failed store result; check ok() first");
    return std::get<0>(state_);
  }
  [[nodiscard]] T &value() & {
    assert(ok() && "value() on a failed store result; check ok() first");
    return std::get<0>(state_);
  }
  [[nodiscard]] T &&value() && {
    assert(ok() && "value() on a failed store result; check ok() first");
    return std::get<0>(std::move(state_));
  }
  [[nodiscard]] const T &operator*() const & { return value(); }
  [[nodiscard]] T &operator*() & { return value(); }
  [[nodiscard]] const T *operator->() const { return &value(); }
  [[nodiscard]] T *operator->() { return &value(); }

  [[nodiscard]] const StoreError &error() const & {
    assert(!ok() && "error() on a successful store result");
    return std::get<1>(state_);
  }
  [[nodiscard]] StoreError &&error() && {
    assert(!ok() && "error() on a successful store result");
    return std::get<1>(std::move(state_));
  }

private:
  std::variant<T, StoreError> state_;
};

// A result with no value: success, or a StoreError. `return {};` is success.
template <> class [[nodiscard]] StoreResult<void> {
public:
  StoreResult() = default;
  StoreResult(StoreError error) : error_(std::move(error)) {}

  [[nodiscard]] bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  [[nodiscard]] const StoreError &error() const & {
    assert(!ok() && "error() on a successful store result");
    return *error_;
  }
  [[nodiscard]] StoreError &&error() && {
    assert(!ok() && "error() on a successful store result");
    return std::move(*error_);
  }

private:
  std::optional<StoreError> error_;
};
using StoreStatus = StoreResult<void>;

// The statuses of runtime.md section 2, stored as their upper-case names.
enum class RunStatus : uint8_t {
  Running,
  Compensating,
  Completed,
  Failed,
  Cancelled,
  TimedOut,
  Terminated,
  ContinuedAsNew,
  Blocked, // needs a person (non-determinism, module missing, store corrupt); resumable
};
[[nodiscard]] std::string_view runStatusName(RunStatus status);
[[nodiscard]] std::optional<RunStatus> runStatusFromName(std::string_view name);
// Final statuses never change again; BLOCKED is not final (a fixed run resumes).
[[nodiscard]] bool isFinalStatus(RunStatus status);

// SHA-256, as stored in events.hash and checkpoints.hash.
using Hash = std::array<uint8_t, 32>;
[[nodiscard]] std::string hashHex(const Hash &hash);

struct NewRun {
  std::string id;
  std::string chainId; // empty: a new chain, whose id is the run's own
  std::string workflowId;
  std::string moduleHash; // must already be stored (Transaction::putModule)
  Value inputs;
  RunStatus status = RunStatus::Running;
  std::optional<std::string> parentRunId;
  std::optional<int64_t> parentCommandId;
  int64_t attempt = 1;
  int64_t createdMs = 0;
  std::optional<int64_t> timeoutMs;
  // runs.host (store.sql): how the run's activities resolve; null stores NULL.
  Value host;
};

struct RunRecord {
  std::string id;
  std::string chainId;
  std::string workflowId;
  std::string moduleHash;
  RunStatus status = RunStatus::Running;
  Value inputs;
  std::optional<Value> outputs;
  std::optional<Value> error;
  std::optional<std::string> parentRunId;
  std::optional<int64_t> parentCommandId;
  int64_t attempt = 1;
  int64_t createdMs = 0;
  int64_t updatedMs = 0;
  std::optional<int64_t> finishedMs;
  std::optional<int64_t> timeoutMs;
  int64_t lastSeq = 0;
  Value host; // null when the column is NULL
};

// Changes to a run row; fields left empty keep their value. Reaching a final status sets
// finished_ms to timeMs.
struct RunUpdate {
  int64_t timeMs = 0;
  std::optional<RunStatus> status;
  std::optional<Value> outputs; // a null Value clears the column
  std::optional<Value> error;   // a null Value clears the column (resuming a BLOCKED run)
  std::optional<int64_t> timeoutMs;
  std::optional<std::string> moduleHash; // `--upgrade` after a clean replay
  std::optional<Value> host;             // a null Value clears the column
};

struct RunQuery {
  std::optional<RunStatus> status;
  std::optional<std::string> workflowId;
  size_t limit = 1000;
};

struct NewEvent {
  EventType type = EventType::WorkflowStarted;
  int64_t timeMs = 0;
  std::string stepId;   // '' for the run itself
  std::string location; // file:line, '' when none
  Value payload;
};

struct EventRecord {
  std::string runId;
  int64_t seq = 0;
  EventType type = EventType::WorkflowStarted;
  int64_t timeMs = 0;
  int64_t tx = 0;
  std::string stepId;
  std::string location;
  Value payload;
  Hash hash{};
  // The previous event's hash (zeros for seq 1): read from the event before, not stored
  // with this one.
  Hash prevHash{};
};

// Which events of a run to read: seq in [fromSeq, toSeq], written by tx <= toTx.
struct EventRange {
  int64_t fromSeq = 1;
  std::optional<int64_t> toSeq;
  std::optional<int64_t> toTx;
};

// What appendEvents did: the seqs it assigned, the transaction's tx id, and the new head of
// the run's hash chain.
struct AppendedEvents {
  int64_t firstSeq = 0;
  int64_t lastSeq = 0;
  int64_t tx = 0;
  Hash lastHash{};
};

struct CheckpointRecord {
  std::string runId;
  int64_t seq = 0;
  std::string state; // bytes, as the engine serialized the machine
  Hash hash{};
  Hash prevHash{};
  int64_t createdMs = 0;
};

enum class TimerKind : uint8_t { Timer, WaitTimeout, WorkflowRetry, WorkflowTimeout };
[[nodiscard]] std::string_view timerKindName(TimerKind kind);
[[nodiscard]] std::optional<TimerKind> timerKindFromName(std::string_view name);

struct TimerRecord {
  std::string runId;
  int64_t commandId = 0; // 0 for the workflow timeout
  TimerKind kind = TimerKind::Timer;
  int64_t fireMs = 0;
  int64_t createdMs = 0;
};

struct NewTask {
  std::string runId;
  int64_t commandId = 0;
  std::string stepId;
  std::string activity;
  Value input;
  int64_t attempt = 1;
  int64_t dueMs = 0;
  std::string idempotencyKey;
  int64_t createdMs = 0;
  // Set when the task is added already claimed, as claimTask would leave it: the engine
  // that schedules an attempt and runs it itself claims it in the same transaction.
  std::optional<std::string> owner;
  std::optional<int64_t> leaseExpiryMs;
};

struct TaskRecord {
  std::string runId;
  int64_t commandId = 0;
  std::string stepId;
  std::string activity;
  Value input;
  int64_t attempt = 1;
  int64_t dueMs = 0;
  std::string idempotencyKey;
  std::optional<std::string> owner;     // set while running
  std::optional<int64_t> leaseExpiryMs; // set while running
  int64_t availableMs = 0;              // when a worker may take it
  int64_t createdMs = 0;
};

enum class InboxKind : uint8_t { Signal, Cancel, Terminate };
[[nodiscard]] std::string_view inboxKindName(InboxKind kind);
[[nodiscard]] std::optional<InboxKind> inboxKindFromName(std::string_view name);

struct InboxMessage {
  int64_t id = 0;
  std::string runId;
  InboxKind kind = InboxKind::Signal;
  std::string name;
  Value payload;
  int64_t receivedMs = 0;
};

struct PublishedEvent {
  int64_t id = 0;
  std::string type;
  Value payload;
  int64_t publishedMs = 0;
};

struct LeaseRecord {
  std::string runId;
  std::string owner;
  int64_t expiryMs = 0;
};

struct PurgeOptions {
  // Which final statuses to purge; empty means every final status. Naming a status that is
  // not final is an Invalid error: only finished runs are ever purged.
  std::vector<RunStatus> statuses;
  // Runs that finished strictly before this time.
  int64_t finishedBeforeMs = 0;
};

struct PurgeCounts {
  int64_t runs = 0;
  int64_t events = 0;
  int64_t checkpoints = 0;
  int64_t modules = 0;
};

// The first place a run's chains stop holding, as `kotoba-vm verify` reports it.
struct BrokenLink {
  enum class Where : uint8_t { Event, Checkpoint, Run };
  Where where = Where::Event;
  int64_t seq = 0; // the event's or checkpoint's seq; for Run, the seq the row claims
  std::string reason;
};

struct ChainReport {
  int64_t eventsChecked = 0;
  int64_t checkpointsChecked = 0;
  std::optional<BrokenLink> firstBroken; // empty when every link holds
};

} // namespace kotoba::runtime
