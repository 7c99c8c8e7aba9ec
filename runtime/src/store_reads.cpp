// The store's reads: one cached statement per lookup, each served by an index of
// runtime/schema/store.sql, and the conversion of rows back into records. Stored JSON is
// parsed here; a column that does not parse is reported as Corrupt, never passed on.
#include "kotoba/runtime/store.h"

#include "store_event_rows.h"
#include "store_internal.h"
#include "store_rows.h"

#include <fmt/format.h>

#include <limits>

namespace kotoba::runtime {

using detail::Operation;
using detail::Statement;

namespace detail {

StoreResult<RunRecord> readRunRow(const Operation &operation, const Statement &row) {
  RunRecord run;
  run.id = row.text(0);
  run.chainId = row.text(1);
  run.workflowId = row.text(2);
  run.moduleHash = row.text(3);
  std::optional<RunStatus> status = runStatusFromName(row.bytes(4));
  if (!status) {
    return operation.fail(StoreErrorKind::Corrupt,
                          fmt::format("run {} has an unknown status '{}'", run.id, row.bytes(4)));
  }
  run.status = *status;
  StoreResult<Value> inputs =
      decodeJson(operation, row.bytes(5), fmt::format("the inputs of run {}", run.id));
  if (!inputs.ok()) {
    return std::move(inputs).error();
  }
  run.inputs = std::move(inputs).value();
  for (auto [column, target, what] :
       {std::tuple{6, &run.outputs, "outputs"}, std::tuple{7, &run.error, "error"}}) {
    if (row.isNull(column)) {
      continue;
    }
    StoreResult<Value> value =
        decodeJson(operation, row.bytes(column), fmt::format("the {} of run {}", what, run.id));
    if (!value.ok()) {
      return std::move(value).error();
    }
    *target = std::move(value).value();
  }
  run.parentRunId = row.optionalText(8);
  run.parentCommandId = row.optionalInteger(9);
  run.attempt = row.integer(10);
  run.createdMs = row.integer(11);
  run.updatedMs = row.integer(12);
  run.finishedMs = row.optionalInteger(13);
  run.timeoutMs = row.optionalInteger(14);
  run.lastSeq = row.integer(15);
  if (!row.isNull(16)) {
    StoreResult<Value> host =
        decodeJson(operation, row.bytes(16), fmt::format("the host of run {}", run.id));
    if (!host.ok()) {
      return std::move(host).error();
    }
    run.host = std::move(host).value();
  }
  return run;
}

StoreResult<TaskRecord> readTaskRow(const Operation &operation, const Statement &row) {
  TaskRecord task;
  task.runId = row.text(0);
  task.commandId = row.integer(1);
  task.stepId = row.text(2);
  task.activity = row.text(3);
  StoreResult<Value> input =
      decodeJson(operation, row.bytes(4),
                 fmt::format("the input of task {} of run {}", task.commandId, task.runId));
  if (!input.ok()) {
    return std::move(input).error();
  }
  task.input = std::move(input).value();
  task.attempt = row.integer(5);
  task.dueMs = row.integer(6);
  task.idempotencyKey = row.text(7);
  task.owner = row.optionalText(8);
  task.leaseExpiryMs = row.optionalInteger(9);
  task.availableMs = row.integer(10);
  task.createdMs = row.integer(11);
  return task;
}

StoreResult<TimerRecord> readTimerRow(const Operation &operation, const Statement &row) {
  TimerRecord timer;
  timer.runId = row.text(0);
  timer.commandId = row.integer(1);
  std::optional<TimerKind> kind = timerKindFromName(row.bytes(2));
  if (!kind) {
    return operation.fail(
        StoreErrorKind::Corrupt,
        fmt::format("a timer of run {} has an unknown kind '{}'", timer.runId, row.bytes(2)));
  }
  timer.kind = *kind;
  timer.fireMs = row.integer(3);
  timer.createdMs = row.integer(4);
  return timer;
}

bool copyHash(std::string_view bytes, Hash &hash) {
  if (bytes.size() != hash.size()) {
    return false;
  }
  std::copy(bytes.begin(), bytes.end(), hash.begin());
  return true;
}

} // namespace detail

namespace {

// Runs `statement`, converting each row with `convert`, into a vector.
template <typename Record, typename Convert>
StoreResult<std::vector<Record>> collect(const Operation &operation, Statement &statement,
                                         Convert convert) {
  std::vector<Record> records;
  while (true) {
    StoreResult<bool> row = statement.next(operation);
    if (!row.ok()) {
      return std::move(row).error();
    }
    if (!row.value()) {
      return records;
    }
    StoreResult<Record> record = convert(statement);
    if (!record.ok()) {
      return std::move(record).error();
    }
    records.push_back(std::move(record).value());
  }
}

// The first record of `statement`, if any.
template <typename Record, typename Convert>
StoreResult<std::optional<Record>> first(const Operation &operation, Statement &statement,
                                         Convert convert) {
  StoreResult<bool> row = statement.next(operation);
  if (!row.ok()) {
    return std::move(row).error();
  }
  if (!row.value()) {
    return std::optional<Record>();
  }
  StoreResult<Record> record = convert(statement);
  if (!record.ok()) {
    return std::move(record).error();
  }
  return std::optional<Record>(std::move(record).value());
}

// A single optional integer (min(), a pragma).
StoreResult<std::optional<int64_t>> scalar(const Operation &operation, Statement &statement) {
  StoreResult<bool> row = statement.next(operation);
  if (!row.ok()) {
    return std::move(row).error();
  }
  if (!row.value()) {
    return std::optional<int64_t>();
  }
  return statement.optionalInteger(0);
}

int64_t sqlLimit(size_t limit) {
  return limit > static_cast<size_t>(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : static_cast<int64_t>(limit);
}

StoreResult<CheckpointRecord> readCheckpointRow(const Operation &operation, const Statement &row,
                                                std::string_view runId) {
  CheckpointRecord checkpoint;
  checkpoint.runId = std::string(runId);
  checkpoint.seq = row.integer(0);
  checkpoint.state = row.text(1);
  if (!detail::copyHash(row.bytes(2), checkpoint.hash) ||
      !detail::copyHash(row.bytes(3), checkpoint.prevHash)) {
    return operation.fail(StoreErrorKind::Corrupt,
                          fmt::format("checkpoint {} of run {} has a hash that is not 32 bytes",
                                      checkpoint.seq, runId));
  }
  checkpoint.createdMs = row.integer(4);
  return checkpoint;
}

#define KOTOBA_RUN_COLUMNS                                                                         \
  "id, chain_id, workflow_id, module_hash, status, inputs, outputs, error, parent_run_id, "        \
  "parent_command_id, attempt, created_ms, updated_ms, finished_ms, timeout_ms, last_seq, host"

} // namespace

const std::string &StoreReader::path() const {
  return connection_.path();
}

StoreResult<std::optional<std::vector<uint8_t>>> StoreReader::module(std::string_view hash) const {
  Operation operation{connection_, "read module {}", hash};
  StoreResult<Statement> statement =
      connection_.prepare(operation, "SELECT kbc FROM modules WHERE hash = ?1");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, hash);
  using Bytes = std::vector<uint8_t>;
  return first<Bytes>(operation, *statement, [](const Statement &row) -> StoreResult<Bytes> {
    std::string_view bytes = row.bytes(0);
    return Bytes(bytes.begin(), bytes.end());
  });
}

StoreResult<std::optional<RunRecord>> StoreReader::run(std::string_view runId) const {
  Operation operation{connection_, "read run {}", runId};
  StoreResult<Statement> statement =
      connection_.prepare(operation, "SELECT " KOTOBA_RUN_COLUMNS " FROM runs WHERE id = ?1");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, runId);
  return first<RunRecord>(operation, *statement,
                          [&](const Statement &row) { return detail::readRunRow(operation, row); });
}

StoreResult<std::vector<RunRecord>> StoreReader::runs(const RunQuery &query) const {
  Operation operation{connection_, "list runs"};
  // One statement per filter combination, so that each uses its index.
  const char *sql =
      query.status && query.workflowId ? "SELECT " KOTOBA_RUN_COLUMNS
                                         " FROM runs WHERE status = ?1 AND workflow_id = ?2 "
                                         "ORDER BY created_ms DESC, id DESC LIMIT ?3"
      : query.status     ? "SELECT " KOTOBA_RUN_COLUMNS " FROM runs WHERE status = ?1 "
                           "ORDER BY created_ms DESC, id DESC LIMIT ?3"
      : query.workflowId ? "SELECT " KOTOBA_RUN_COLUMNS " FROM runs WHERE workflow_id = ?2 "
                           "ORDER BY created_ms DESC, id DESC LIMIT ?3"
                         : "SELECT " KOTOBA_RUN_COLUMNS
                           " FROM runs ORDER BY created_ms DESC, id DESC LIMIT ?3";
  StoreResult<Statement> statement = connection_.prepare(operation, sql);
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  if (query.status) {
    statement->bind(1, runStatusName(*query.status));
  }
  if (query.workflowId) {
    statement->bind(2, std::string_view(*query.workflowId));
  }
  statement->bind(3, sqlLimit(query.limit));
  return collect<RunRecord>(operation, *statement, [&](const Statement &row) {
    return detail::readRunRow(operation, row);
  });
}

StoreResult<std::vector<RunRecord>> StoreReader::chain(std::string_view chainId) const {
  Operation operation{connection_, "read the runs of chain {}", chainId};
  StoreResult<Statement> statement =
      connection_.prepare(operation, "SELECT " KOTOBA_RUN_COLUMNS " FROM runs WHERE chain_id = ?1 "
                                     "ORDER BY created_ms, id");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, chainId);
  return collect<RunRecord>(operation, *statement, [&](const Statement &row) {
    return detail::readRunRow(operation, row);
  });
}

StoreResult<std::vector<RunRecord>> StoreReader::children(std::string_view parentId) const {
  Operation operation{connection_, "read the children of run {}", parentId};
  StoreResult<Statement> statement = connection_.prepare(
      operation, "SELECT " KOTOBA_RUN_COLUMNS " FROM runs WHERE parent_run_id = ?1 "
                 "ORDER BY created_ms, id");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, parentId);
  return collect<RunRecord>(operation, *statement, [&](const Statement &row) {
    return detail::readRunRow(operation, row);
  });
}

StoreResult<std::vector<std::string>> StoreReader::unownedActiveRuns(int64_t nowMs,
                                                                     size_t limit) const {
  Operation operation{connection_, "list runs without a live lease"};
  // Asked on every engine step and almost always empty: an existence test stops at the first
  // match and sorts nothing, where the listing below builds and sorts a temporary b-tree.
  StoreResult<Statement> probe =
      connection_.prepare(operation, "SELECT 1 FROM runs r LEFT JOIN leases l ON l.run_id = r.id "
                                     "WHERE r.status IN ('RUNNING', 'COMPENSATING') "
                                     "AND (l.run_id IS NULL OR l.expiry_ms <= ?1) LIMIT 1");
  if (!probe.ok()) {
    return std::move(probe).error();
  }
  probe->bind(1, nowMs);
  StoreResult<bool> any = probe->next(operation);
  if (!any.ok()) {
    return std::move(any).error();
  }
  if (!any.value()) {
    return std::vector<std::string>();
  }
  StoreResult<Statement> statement = connection_.prepare(
      operation, "SELECT r.id FROM runs r LEFT JOIN leases l ON l.run_id = r.id "
                 "WHERE r.status IN ('RUNNING', 'COMPENSATING') "
                 "AND (l.run_id IS NULL OR l.expiry_ms <= ?1) "
                 "ORDER BY r.created_ms, r.id LIMIT ?2");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, nowMs).bind(2, sqlLimit(limit));
  return collect<std::string>(operation, *statement, [](const Statement &row) {
    return StoreResult<std::string>(row.text(0));
  });
}

StoreResult<std::vector<std::string>> StoreReader::leaseOwners(int64_t nowMs) const {
  Operation operation{connection_, "list the owners of live leases"};
  StoreResult<Statement> statement = connection_.prepare(
      operation, "SELECT owner FROM leases WHERE expiry_ms > ?1 "
                 "UNION SELECT owner FROM tasks WHERE owner IS NOT NULL AND available_ms > ?1");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, nowMs);
  return collect<std::string>(operation, *statement, [](const Statement &row) {
    return StoreResult<std::string>(row.text(0));
  });
}

StoreResult<std::vector<EventRecord>> StoreReader::events(std::string_view runId,
                                                          const EventRange &range) const {
  Operation operation{connection_, "read the events of run {}", runId};
  StoreResult<Statement> statement = connection_.prepare(operation, detail::kRunEventsSql);
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  // From the event before the range, whose hash is the first event's previous hash.
  int64_t fromSeq = std::max<int64_t>(range.fromSeq, 1);
  statement->bind(1, runId)
      .bind(2, fromSeq - 1)
      .bind(3, std::min(range.toSeq.value_or(detail::kMaxEventSeq), detail::kMaxEventSeq))
      .bind(4, range.toTx.value_or(std::numeric_limits<int64_t>::max()));
  std::vector<EventRecord> events;
  Hash previous{};
  while (true) {
    StoreResult<bool> found = statement->next(operation);
    if (!found.ok()) {
      return std::move(found).error();
    }
    if (!found.value()) {
      return events;
    }
    detail::EventRow row = detail::readEventRow(*statement);
    Hash hash{};
    if (!detail::copyHash(row.hash, hash)) {
      return operation.fail(StoreErrorKind::Corrupt,
                            fmt::format("event {} has a hash that is not 32 bytes; run "
                                        "`kotoba-vm verify`",
                                        row.seq));
    }
    if (row.seq < fromSeq) {
      previous = hash;
      continue;
    }
    EventRecord event;
    event.runId = std::string(runId);
    event.seq = row.seq;
    std::optional<EventType> type = eventTypeFromNumber(row.typeNumber);
    if (!type) {
      return operation.fail(StoreErrorKind::Corrupt,
                            fmt::format("event {} has type number {}, which this kotoba "
                                        "does not know; use the kotoba that wrote it",
                                        event.seq, row.typeNumber));
    }
    event.type = *type;
    event.timeMs = row.timeMs;
    event.tx = row.tx;
    event.stepId = std::move(row.stepId);
    event.location = std::move(row.location);
    StoreResult<Value> payload = detail::decodeJson(
        operation, row.payload, fmt::format("the payload of event {}", event.seq));
    if (!payload.ok()) {
      return std::move(payload).error();
    }
    event.payload = std::move(payload).value();
    event.hash = hash;
    event.prevHash = previous;
    previous = hash;
    events.push_back(std::move(event));
  }
}

StoreResult<std::optional<CheckpointRecord>>
StoreReader::latestCheckpoint(std::string_view runId) const {
  return checkpointAtOrBefore(runId, std::numeric_limits<int64_t>::max());
}

StoreResult<std::optional<CheckpointRecord>>
StoreReader::checkpointAtOrBefore(std::string_view runId, int64_t seq) const {
  Operation operation{connection_, "read a checkpoint of run {}", runId};
  StoreResult<Statement> statement = connection_.prepare(
      operation, "SELECT seq, state, hash, prev_hash, created_ms FROM checkpoints "
                 "WHERE run_id = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, runId).bind(2, seq);
  return first<CheckpointRecord>(operation, *statement, [&](const Statement &row) {
    return readCheckpointRow(operation, row, runId);
  });
}

StoreResult<std::vector<TimerRecord>> StoreReader::dueTimers(int64_t nowMs, size_t limit) const {
  Operation operation{connection_, "read due timers"};
  StoreResult<Statement> statement = connection_.prepare(
      operation, "SELECT run_id, command_id, kind, fire_ms, created_ms FROM timers "
                 "WHERE fire_ms <= ?1 ORDER BY fire_ms, run_id, command_id, kind LIMIT ?2");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, nowMs).bind(2, sqlLimit(limit));
  return collect<TimerRecord>(operation, *statement, [&](const Statement &row) {
    return detail::readTimerRow(operation, row);
  });
}

StoreResult<std::optional<int64_t>> StoreReader::nextTimerMs() const {
  Operation operation{connection_, "read the next timer"};
  StoreResult<Statement> statement =
      connection_.prepare(operation, "SELECT min(fire_ms) FROM timers");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  return scalar(operation, *statement);
}

StoreResult<std::vector<TimerRecord>> StoreReader::timersOf(std::string_view runId) const {
  Operation operation{connection_, "read the timers of run {}", runId};
  StoreResult<Statement> statement = connection_.prepare(
      operation, "SELECT run_id, command_id, kind, fire_ms, created_ms FROM timers "
                 "WHERE run_id = ?1 ORDER BY fire_ms, command_id, kind");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, runId);
  return collect<TimerRecord>(operation, *statement, [&](const Statement &row) {
    return detail::readTimerRow(operation, row);
  });
}

#define KOTOBA_TASK_COLUMNS                                                                        \
  "run_id, command_id, step_id, activity, input, attempt, due_ms, idempotency_key, owner, "        \
  "lease_expiry_ms, available_ms, created_ms"

StoreResult<std::vector<TaskRecord>> StoreReader::availableTasks(int64_t nowMs,
                                                                 size_t limit) const {
  Operation operation{connection_, "read available tasks"};
  StoreResult<Statement> statement = connection_.prepare(
      operation, "SELECT " KOTOBA_TASK_COLUMNS " FROM tasks WHERE available_ms <= ?1 "
                 "ORDER BY available_ms, run_id, command_id LIMIT ?2");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, nowMs).bind(2, sqlLimit(limit));
  return collect<TaskRecord>(operation, *statement, [&](const Statement &row) {
    return detail::readTaskRow(operation, row);
  });
}

StoreResult<std::optional<int64_t>> StoreReader::nextTaskAvailableMs() const {
  Operation operation{connection_, "read the next task time"};
  StoreResult<Statement> statement =
      connection_.prepare(operation, "SELECT min(available_ms) FROM tasks");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  return scalar(operation, *statement);
}

StoreResult<std::optional<TaskRecord>> StoreReader::task(std::string_view runId,
                                                         int64_t commandId) const {
  Operation operation{connection_, "read a task of run {}", runId};
  StoreResult<Statement> statement = connection_.prepare(
      operation, "SELECT " KOTOBA_TASK_COLUMNS " FROM tasks WHERE run_id = ?1 AND command_id = ?2");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, runId).bind(2, commandId);
  return first<TaskRecord>(operation, *statement, [&](const Statement &row) {
    return detail::readTaskRow(operation, row);
  });
}

StoreResult<std::vector<TaskRecord>> StoreReader::tasksOf(std::string_view runId) const {
  Operation operation{connection_, "read the tasks of run {}", runId};
  StoreResult<Statement> statement = connection_.prepare(
      operation, "SELECT " KOTOBA_TASK_COLUMNS " FROM tasks WHERE run_id = ?1 ORDER BY command_id");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, runId);
  return collect<TaskRecord>(operation, *statement, [&](const Statement &row) {
    return detail::readTaskRow(operation, row);
  });
}

StoreResult<std::vector<InboxMessage>> StoreReader::inbox(std::string_view runId) const {
  Operation operation{connection_, "read the inbox of run {}", runId};
  StoreResult<Statement> statement = connection_.prepare(
      operation, "SELECT id, kind, name, payload, received_ms FROM inbox WHERE run_id = ?1 "
                 "ORDER BY id");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, runId);
  return collect<InboxMessage>(
      operation, *statement, [&](const Statement &row) -> StoreResult<InboxMessage> {
        InboxMessage message;
        message.id = row.integer(0);
        message.runId = std::string(runId);
        std::optional<InboxKind> kind = inboxKindFromName(row.bytes(1));
        if (!kind) {
          return operation.fail(
              StoreErrorKind::Corrupt,
              fmt::format("inbox message {} has an unknown kind '{}'", message.id, row.bytes(1)));
        }
        message.kind = *kind;
        message.name = row.text(2);
        StoreResult<Value> payload = detail::decodeJson(
            operation, row.bytes(3), fmt::format("the payload of inbox message {}", message.id));
        if (!payload.ok()) {
          return std::move(payload).error();
        }
        message.payload = std::move(payload).value();
        message.receivedMs = row.integer(4);
        return message;
      });
}

StoreResult<std::vector<std::string>> StoreReader::runsWithInbox(size_t limit) const {
  Operation operation{connection_, "list runs with messages"};
  // Asked on every engine step, usually of an empty inbox: the grouped listing sorts even
  // then, the existence test does not.
  StoreResult<Statement> probe = connection_.prepare(operation, "SELECT 1 FROM inbox LIMIT 1");
  if (!probe.ok()) {
    return std::move(probe).error();
  }
  StoreResult<bool> any = probe->next(operation);
  if (!any.ok()) {
    return std::move(any).error();
  }
  if (!any.value()) {
    return std::vector<std::string>();
  }
  StoreResult<Statement> statement = connection_.prepare(
      operation, "SELECT run_id FROM inbox GROUP BY run_id ORDER BY min(id) LIMIT ?1");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, sqlLimit(limit));
  return collect<std::string>(operation, *statement, [](const Statement &row) {
    return StoreResult<std::string>(row.text(0));
  });
}

namespace {

// Every filter key names a payload field equal to the filter's value.
bool matchesFilter(const Value &payload, const Object &filter) {
  if (filter.empty()) {
    return true;
  }
  if (!payload.isObject()) {
    return false;
  }
  for (const ObjectEntry &entry : filter) {
    const Value *field = payload.asObject().find(entry.key);
    if (field == nullptr || !(*field == entry.value)) {
      return false;
    }
  }
  return true;
}

} // namespace

StoreResult<std::optional<PublishedEvent>>
StoreReader::findPublishedEvent(std::string_view runId, std::string_view type, int64_t sinceMs,
                                const Object &filter) const {
  Operation operation{connection_, "find a published event for run {}", runId};
  // Candidates come in pages in publication order; the filter runs here in C++ because
  // it compares Values (1 equals 1.0, keys in any order), which SQL's JSON functions do not.
  constexpr int64_t kPageSize = 64;
  int64_t cursorMs = sinceMs;
  int64_t cursorId = -1; // the first page takes every id at sinceMs
  while (true) {
    StoreResult<Statement> statement = connection_.prepare(
        operation, "SELECT p.id, p.payload, p.published_ms FROM published_events p "
                   "WHERE p.type = ?1 AND p.published_ms >= ?2 "
                   "AND (p.published_ms > ?2 OR p.id > ?3) "
                   "AND NOT EXISTS (SELECT 1 FROM event_consumptions c "
                   "                WHERE c.run_id = ?4 AND c.published_event_id = p.id) "
                   "ORDER BY p.published_ms, p.id LIMIT ?5");
    if (!statement.ok()) {
      return std::move(statement).error();
    }
    statement->bind(1, type).bind(2, cursorMs).bind(3, cursorId).bind(4, runId).bind(5, kPageSize);
    int64_t rows = 0;
    while (true) {
      StoreResult<bool> row = statement->next(operation);
      if (!row.ok()) {
        return std::move(row).error();
      }
      if (!row.value()) {
        break;
      }
      ++rows;
      cursorId = statement->integer(0);
      cursorMs = statement->integer(2);
      StoreResult<Value> payload =
          detail::decodeJson(operation, statement->bytes(1),
                             fmt::format("the payload of published event {}", cursorId));
      if (!payload.ok()) {
        return std::move(payload).error();
      }
      if (matchesFilter(payload.value(), filter)) {
        return std::optional<PublishedEvent>(
            PublishedEvent{cursorId, std::string(type), std::move(payload).value(), cursorMs});
      }
    }
    if (rows < kPageSize) {
      return std::optional<PublishedEvent>();
    }
  }
}

StoreResult<std::optional<LeaseRecord>> StoreReader::lease(std::string_view runId) const {
  Operation operation{connection_, "read the lease of run {}", runId};
  StoreResult<Statement> statement =
      connection_.prepare(operation, "SELECT owner, expiry_ms FROM leases WHERE run_id = ?1");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, runId);
  return first<LeaseRecord>(operation, *statement, [&](const Statement &row) {
    return StoreResult<LeaseRecord>(LeaseRecord{std::string(runId), row.text(0), row.integer(1)});
  });
}

StoreResult<bool> StoreReader::holdsLease(std::string_view runId, std::string_view owner,
                                          int64_t nowMs) const {
  StoreResult<std::optional<LeaseRecord>> current = lease(runId);
  if (!current.ok()) {
    return std::move(current).error();
  }
  return current.value() && current.value()->owner == owner && current.value()->expiryMs > nowMs;
}

} // namespace kotoba::runtime
