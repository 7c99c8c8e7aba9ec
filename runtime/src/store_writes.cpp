// The store's writes, all through a Transaction: runs, events with their hash chain and tx
// ids, checkpoints, timers, tasks, inbox messages, published events, leases and purge.
// Each write checks only what the tables need to stay consistent (a run exists, a lease is
// held, a finished run stays finished); payload limits are the engine's to enforce.
#include "kotoba/runtime/store.h"

#include "store_event_rows.h"
#include "store_internal.h"
#include "store_rows.h"

#include "kotoba/vm/json.h"

#include <fmt/format.h>

namespace kotoba::runtime {

using detail::Operation;
using detail::Statement;

namespace {

// Runs one statement to completion with `bind` applied; the usual shape of a write.
template <typename Bind>
StoreStatus execute(detail::Connection &connection, const Operation &operation, const char *sql,
                    Bind bind) {
  StoreResult<Statement> statement = connection.prepare(operation, sql);
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  bind(*statement);
  return statement->run(operation);
}

// The same, returning how many rows it changed.
template <typename Bind>
StoreResult<int64_t> executeCounting(detail::Connection &connection, const Operation &operation,
                                     const char *sql, Bind bind) {
  if (StoreStatus done = execute(connection, operation, sql, bind); !done.ok()) {
    return std::move(done).error();
  }
  return connection.changes();
}

// Whether a query with one bound text parameter returns a row.
StoreResult<bool> exists(detail::Connection &connection, const Operation &operation,
                         const char *sql, std::string_view key) {
  StoreResult<Statement> statement = connection.prepare(operation, sql);
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, key);
  return statement->next(operation);
}

StoreError missingRun(const Operation &operation, std::string_view runId) {
  return operation.fail(StoreErrorKind::NotFound, fmt::format("no run has the id {}", runId));
}

// An optional JSON column: a null Value is stored as SQL NULL.
std::optional<std::string> optionalJson(const Value &value) {
  if (value.isNull()) {
    return std::nullopt;
  }
  return toJson(value);
}

// The sites (step id and location pairs) of the events one append writes. A step's events
// share their site, so the last one found is kept and most events look nothing up.
class SiteCache {
public:
  StoreResult<int64_t> id(detail::Connection &connection, const Operation &operation,
                          std::string_view stepId, std::string_view location) {
    if (last_ && lastStepId_ == stepId && lastLocation_ == location) {
      return *last_;
    }
    StoreResult<Statement> found =
        connection.prepare(operation, "SELECT id FROM sites WHERE step_id = ?1 AND location = ?2");
    if (!found.ok()) {
      return std::move(found).error();
    }
    found->bind(1, stepId).bind(2, location);
    StoreResult<bool> row = found->next(operation);
    if (!row.ok()) {
      return std::move(row).error();
    }
    int64_t site = 0;
    if (row.value()) {
      site = found->integer(0);
    } else {
      StoreResult<Statement> added = connection.prepare(
          operation, "INSERT INTO sites (step_id, location) VALUES (?1, ?2) RETURNING id");
      if (!added.ok()) {
        return std::move(added).error();
      }
      added->bind(1, stepId).bind(2, location);
      StoreResult<bool> addedRow = added->next(operation);
      if (!addedRow.ok()) {
        return std::move(addedRow).error();
      }
      site = added->integer(0);
      // RETURNING statements must run to completion before their change is final.
      if (StoreStatus finished = added->run(operation); !finished.ok()) {
        return std::move(finished).error();
      }
    }
    last_ = site;
    lastStepId_ = stepId;
    lastLocation_ = location;
    return site;
  }

private:
  std::optional<int64_t> last_;
  std::string lastStepId_;
  std::string lastLocation_;
};

} // namespace

StoreResult<bool> Transaction::putModule(std::string_view hash, std::span<const uint8_t> kbc,
                                         int64_t timeMs) {
  Operation operation{connection_, "store module {}", hash};
  StoreResult<int64_t> inserted = executeCounting(
      connection_, operation,
      "INSERT OR IGNORE INTO modules (hash, kbc, created_ms) VALUES (?1, ?2, ?3)",
      [&](Statement &statement) { statement.bind(1, hash).bindBlob(2, kbc).bind(3, timeMs); });
  if (!inserted.ok()) {
    return std::move(inserted).error();
  }
  return inserted.value() == 1;
}

StoreStatus Transaction::createRun(const NewRun &run) {
  Operation operation{connection_, "create run {}", run.id};
  StoreResult<bool> taken =
      exists(connection_, operation, "SELECT 1 FROM runs WHERE id = ?1", run.id);
  if (!taken.ok()) {
    return std::move(taken).error();
  }
  if (taken.value()) {
    return operation.fail(StoreErrorKind::Conflict, "a run with this id already exists");
  }
  StoreResult<bool> moduleStored =
      exists(connection_, operation, "SELECT 1 FROM modules WHERE hash = ?1", run.moduleHash);
  if (!moduleStored.ok()) {
    return std::move(moduleStored).error();
  }
  if (!moduleStored.value()) {
    return operation.fail(StoreErrorKind::NotFound,
                          fmt::format("module {} is not stored; store it with putModule in "
                                      "the same transaction",
                                      run.moduleHash));
  }
  return execute(
      connection_, operation,
      "INSERT INTO runs (id, chain_id, workflow_id, module_hash, status, inputs, parent_run_id, "
      "parent_command_id, attempt, created_ms, updated_ms, finished_ms, timeout_ms, last_seq, "
      "host, run_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12, 0, ?13, "
      "(SELECT coalesce(max(run_key), 0) + 1 FROM runs))",
      [&](Statement &statement) {
        statement.bind(1, run.id)
            .bind(2, run.chainId.empty() ? run.id : run.chainId)
            .bind(3, run.workflowId)
            .bind(4, run.moduleHash)
            .bind(5, runStatusName(run.status))
            .bind(6, toJson(run.inputs))
            .bind(7, run.parentRunId)
            .bind(8, run.parentCommandId)
            .bind(9, run.attempt)
            .bind(10, run.createdMs)
            .bind(11,
                  isFinalStatus(run.status) ? std::optional<int64_t>(run.createdMs) : std::nullopt)
            .bind(12, run.timeoutMs)
            .bind(13, optionalJson(run.host));
      });
}

StoreStatus Transaction::updateRun(std::string_view runId, const RunUpdate &update) {
  Operation operation{connection_, "update run {}", runId};
  StoreResult<std::optional<RunRecord>> current = run(runId);
  if (!current.ok()) {
    return std::move(current).error();
  }
  if (!current.value()) {
    return missingRun(operation, runId);
  }
  RunStatus currentStatus = current.value()->status;
  if (update.status && *update.status != currentStatus && isFinalStatus(currentStatus)) {
    return operation.fail(StoreErrorKind::Conflict,
                          fmt::format("the run is already {} and a finished run never "
                                      "changes status; it cannot become {}",
                                      runStatusName(currentStatus), runStatusName(*update.status)));
  }
  bool finishes = update.status && isFinalStatus(*update.status) && !isFinalStatus(currentStatus);
  return execute(connection_, operation,
                 "UPDATE runs SET status = coalesce(?2, status), "
                 "outputs = CASE WHEN ?3 THEN ?4 ELSE outputs END, "
                 "error = CASE WHEN ?5 THEN ?6 ELSE error END, "
                 "timeout_ms = coalesce(?7, timeout_ms), "
                 "module_hash = coalesce(?8, module_hash), "
                 "finished_ms = CASE WHEN ?9 THEN ?10 ELSE finished_ms END, "
                 "host = CASE WHEN ?11 THEN ?12 ELSE host END, "
                 "updated_ms = ?10 WHERE id = ?1",
                 [&](Statement &statement) {
                   statement.bind(1, runId);
                   if (update.status) {
                     statement.bind(2, runStatusName(*update.status));
                   }
                   statement.bind(3, int64_t{update.outputs.has_value()});
                   if (update.outputs) {
                     statement.bind(4, optionalJson(*update.outputs));
                   }
                   statement.bind(5, int64_t{update.error.has_value()});
                   if (update.error) {
                     statement.bind(6, optionalJson(*update.error));
                   }
                   statement.bind(7, update.timeoutMs);
                   statement.bind(8, update.moduleHash);
                   statement.bind(9, int64_t{finishes});
                   statement.bind(10, update.timeMs);
                   statement.bind(11, int64_t{update.host.has_value()});
                   if (update.host) {
                     statement.bind(12, optionalJson(*update.host));
                   }
                 });
}

StoreResult<int64_t> Transaction::txId() {
  if (tx_) {
    return *tx_;
  }
  Operation operation{connection_, "take a transaction id"};
  // An UPDATE and a SELECT rather than UPDATE ... RETURNING, which SQLite runs through a
  // temporary b-tree: 8% of the batch writer's work per step (bench/findings.md).
  StoreStatus advanced =
      execute(connection_, operation,
              "UPDATE transaction_counter SET last_tx = last_tx + 1 WHERE only = 1",
              [](Statement &) {});
  if (!advanced.ok()) {
    return std::move(advanced).error();
  }
  StoreResult<Statement> statement =
      connection_.prepare(operation, "SELECT last_tx FROM transaction_counter WHERE only = 1");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  StoreResult<bool> row = statement->next(operation);
  if (!row.ok()) {
    return std::move(row).error();
  }
  if (!row.value()) {
    return operation.fail(StoreErrorKind::Corrupt, "the transaction_counter row is missing");
  }
  tx_ = statement->integer(0);
  return *tx_;
}

StoreResult<AppendedEvents> Transaction::appendEvents(std::string_view runId,
                                                      std::span<const NewEvent> events) {
  Operation operation{connection_, "append events to run {}", runId};
  // The run's last seq and its last event's hash in one statement rather than two: about
  // 1,000 instructions less per append (callgrind, bench/findings.md, "The batch writer
  // thread").
  StoreResult<Statement> headQuery = connection_.prepare(
      operation, "SELECT r.last_seq, r.run_key, e.hash FROM runs r "
                 "LEFT JOIN events e ON e.id = (r.run_key << 32) + r.last_seq WHERE r.id = ?1");
  if (!headQuery.ok()) {
    return std::move(headQuery).error();
  }
  headQuery->bind(1, runId);
  StoreResult<bool> found = headQuery->next(operation);
  if (!found.ok()) {
    return std::move(found).error();
  }
  if (!found.value()) {
    return missingRun(operation, runId);
  }
  int64_t lastSeq = headQuery->integer(0);
  int64_t runKey = headQuery->integer(1);

  AppendedEvents appended;
  appended.firstSeq = lastSeq + 1;
  appended.lastSeq = lastSeq;
  if (lastSeq > 0 && !detail::copyHash(headQuery->bytes(2), appended.lastHash)) {
    return operation.fail(StoreErrorKind::Corrupt,
                          fmt::format("the run's last event {} is missing or has a damaged "
                                      "hash; run `kotoba-vm verify {}`",
                                      lastSeq, runId));
  }
  if (events.empty()) {
    return appended;
  }
  if (lastSeq + static_cast<int64_t>(events.size()) > detail::kMaxEventSeq) {
    return operation.fail(StoreErrorKind::Invalid,
                          fmt::format("the run's history would pass {} events, the most one run "
                                      "can hold; continue as new before that",
                                      detail::kMaxEventSeq));
  }

  StoreResult<int64_t> tx = txId();
  if (!tx.ok()) {
    return std::move(tx).error();
  }
  appended.tx = tx.value();
  std::string payload;
  SiteCache sites;
  for (const NewEvent &event : events) {
    int64_t seq = ++appended.lastSeq;
    payload.clear();
    appendJson(payload, event.payload);
    Hash hash = eventHash(appended.lastHash, runId, seq, eventTypeNumber(event.type), event.timeMs,
                          appended.tx, event.stepId, event.location, payload);
    StoreResult<int64_t> site = sites.id(connection_, operation, event.stepId, event.location);
    if (!site.ok()) {
      return std::move(site).error();
    }
    detail::StoredPayload stored = detail::splitPayload(payload);
    StoreStatus inserted =
        execute(connection_, operation,
                "INSERT INTO events (id, type, time_ms, tx, site, command_id, payload, hash) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                [&](Statement &statement) {
                  statement.bind(1, detail::eventRowId(runKey, seq))
                      .bind(2, int64_t{eventTypeNumber(event.type)})
                      .bind(3, event.timeMs)
                      .bind(4, appended.tx)
                      .bind(5, site.value())
                      .bind(6, stored.commandId)
                      .bind(7, std::string_view(stored.text))
                      .bindBlob(8, hash);
                });
    if (!inserted.ok()) {
      return std::move(inserted).error();
    }
    appended.lastHash = hash;
  }
  StoreStatus advanced =
      execute(connection_, operation,
              "UPDATE runs SET last_seq = ?2, updated_ms = max(updated_ms, ?3) WHERE id = ?1",
              [&](Statement &statement) {
                statement.bind(1, runId).bind(2, appended.lastSeq).bind(3, events.back().timeMs);
              });
  if (!advanced.ok()) {
    return std::move(advanced).error();
  }
  return appended;
}

StoreResult<Hash> Transaction::saveCheckpoint(std::string_view runId, int64_t seq,
                                              std::string_view state, int64_t timeMs) {
  Operation operation{connection_, "save a checkpoint of run {}", runId};
  StoreResult<Statement> eventQuery =
      connection_.prepare(operation, "SELECT e.hash FROM runs r CROSS JOIN events e "
                                     "WHERE r.id = ?1 AND e.id = (r.run_key << 32) + ?2");
  if (!eventQuery.ok()) {
    return std::move(eventQuery).error();
  }
  eventQuery->bind(1, runId).bind(2, seq);
  StoreResult<bool> eventFound = eventQuery->next(operation);
  if (!eventFound.ok()) {
    return std::move(eventFound).error();
  }
  Hash coveredEvent{};
  if (!eventFound.value()) {
    return operation.fail(StoreErrorKind::NotFound,
                          fmt::format("the run has no event {} for the checkpoint to cover", seq));
  }
  if (!detail::copyHash(eventQuery->bytes(0), coveredEvent)) {
    return operation.fail(StoreErrorKind::Corrupt, fmt::format("event {} has a damaged hash", seq));
  }

  StoreResult<std::optional<CheckpointRecord>> previous = latestCheckpoint(runId);
  if (!previous.ok()) {
    return std::move(previous).error();
  }
  Hash previousHash{};
  if (previous.value()) {
    const CheckpointRecord &latest = *previous.value();
    // The state is a function of the history, so a second checkpoint at the same seq would
    // hold the same state: keep the first.
    if (latest.seq == seq) {
      return latest.hash;
    }
    if (latest.seq > seq) {
      return operation.fail(StoreErrorKind::Conflict,
                            fmt::format("the run already has a checkpoint at event {}, later "
                                        "than event {}",
                                        latest.seq, seq));
    }
    previousHash = latest.hash;
  }
  Hash hash = checkpointHash(previousHash, runId, seq, coveredEvent, state);
  StoreStatus inserted =
      execute(connection_, operation,
              "INSERT INTO checkpoints (run_id, seq, state, hash, prev_hash, created_ms) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
              [&](Statement &statement) {
                statement.bind(1, runId)
                    .bind(2, seq)
                    .bindBlob(3, state)
                    .bindBlob(4, hash)
                    .bindBlob(5, previousHash)
                    .bind(6, timeMs);
              });
  if (!inserted.ok()) {
    return std::move(inserted).error();
  }
  return hash;
}

StoreResult<int64_t> Transaction::pruneCheckpoints(std::string_view runId, size_t keep) {
  Operation operation{connection_, "prune the checkpoints of run {}", runId};
  return executeCounting(
      connection_, operation,
      "DELETE FROM checkpoints WHERE run_id = ?1 AND seq NOT IN "
      "(SELECT seq FROM checkpoints WHERE run_id = ?1 ORDER BY seq DESC "
      "LIMIT ?2)",
      [&](Statement &statement) { statement.bind(1, runId).bind(2, static_cast<int64_t>(keep)); });
}

StoreResult<int64_t> Transaction::pruneAllCheckpoints(size_t keep) {
  Operation operation{connection_, "prune checkpoints"};
  return executeCounting(
      connection_, operation,
      "DELETE FROM checkpoints WHERE (run_id, seq) IN (SELECT run_id, seq FROM "
      "(SELECT run_id, seq, row_number() OVER (PARTITION BY run_id ORDER BY seq DESC) AS rank "
      "FROM checkpoints) WHERE rank > ?1)",
      [&](Statement &statement) { statement.bind(1, static_cast<int64_t>(keep)); });
}

StoreStatus Transaction::addTimer(const TimerRecord &timer) {
  Operation operation{connection_, "arm a timer of run {}", timer.runId};
  return execute(connection_, operation,
                 "INSERT OR REPLACE INTO timers (run_id, command_id, kind, fire_ms, created_ms) "
                 "VALUES (?1, ?2, ?3, ?4, ?5)",
                 [&](Statement &statement) {
                   statement.bind(1, timer.runId)
                       .bind(2, timer.commandId)
                       .bind(3, timerKindName(timer.kind))
                       .bind(4, timer.fireMs)
                       .bind(5, timer.createdMs);
                 });
}

StoreResult<bool> Transaction::removeTimer(std::string_view runId, int64_t commandId,
                                           TimerKind kind) {
  Operation operation{connection_, "remove a timer of run {}", runId};
  StoreResult<int64_t> removed =
      executeCounting(connection_, operation,
                      "DELETE FROM timers WHERE run_id = ?1 AND command_id = ?2 AND kind = ?3",
                      [&](Statement &statement) {
                        statement.bind(1, runId).bind(2, commandId).bind(3, timerKindName(kind));
                      });
  if (!removed.ok()) {
    return std::move(removed).error();
  }
  return removed.value() > 0;
}

StoreResult<int64_t> Transaction::removeTimersOf(std::string_view runId) {
  Operation operation{connection_, "remove the timers of run {}", runId};
  return executeCounting(connection_, operation, "DELETE FROM timers WHERE run_id = ?1",
                         [&](Statement &statement) { statement.bind(1, runId); });
}

StoreStatus Transaction::addTask(const NewTask &task) {
  Operation operation{connection_, "add a task to run {}", task.runId};
  return execute(connection_, operation,
                 "INSERT OR REPLACE INTO tasks (run_id, command_id, step_id, activity, input, "
                 "attempt, due_ms, idempotency_key, owner, lease_expiry_ms, available_ms, "
                 "created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?10, ?11, "
                 "coalesce(?11, ?7), ?9)",
                 [&](Statement &statement) {
                   bool claimed = task.owner && task.leaseExpiryMs;
                   statement.bind(10, claimed ? task.owner : std::nullopt)
                       .bind(11, claimed ? task.leaseExpiryMs : std::nullopt)
                       .bind(1, task.runId)
                       .bind(2, task.commandId)
                       .bind(3, task.stepId)
                       .bind(4, task.activity)
                       .bind(5, toJson(task.input))
                       .bind(6, task.attempt)
                       .bind(7, task.dueMs)
                       .bind(8, task.idempotencyKey)
                       .bind(9, task.createdMs);
                 });
}

StoreResult<bool> Transaction::claimTask(std::string_view runId, int64_t commandId,
                                         std::string_view owner, int64_t nowMs,
                                         int64_t leaseExpiryMs) {
  Operation operation{connection_, "claim a task of run {}", runId};
  StoreResult<int64_t> claimed =
      executeCounting(connection_, operation,
                      "UPDATE tasks SET owner = ?3, lease_expiry_ms = ?5, available_ms = ?5 "
                      "WHERE run_id = ?1 AND command_id = ?2 AND available_ms <= ?4",
                      [&](Statement &statement) {
                        statement.bind(1, runId)
                            .bind(2, commandId)
                            .bind(3, owner)
                            .bind(4, nowMs)
                            .bind(5, leaseExpiryMs);
                      });
  if (!claimed.ok()) {
    return std::move(claimed).error();
  }
  return claimed.value() == 1;
}

StoreResult<std::vector<TaskRecord>> Transaction::claimAvailableTasks(std::string_view owner,
                                                                      int64_t nowMs,
                                                                      int64_t leaseExpiryMs,
                                                                      size_t limit) {
  StoreResult<std::vector<TaskRecord>> available = availableTasks(nowMs, limit);
  if (!available.ok()) {
    return available;
  }
  std::vector<TaskRecord> claimed;
  for (TaskRecord &task : available.value()) {
    StoreResult<bool> taken = claimTask(task.runId, task.commandId, owner, nowMs, leaseExpiryMs);
    if (!taken.ok()) {
      return std::move(taken).error();
    }
    if (taken.value()) {
      task.owner = std::string(owner);
      task.leaseExpiryMs = leaseExpiryMs;
      task.availableMs = leaseExpiryMs;
      claimed.push_back(std::move(task));
    }
  }
  return claimed;
}

StoreResult<bool> Transaction::renewTask(std::string_view runId, int64_t commandId,
                                         std::string_view owner, int64_t leaseExpiryMs) {
  Operation operation{connection_, "renew a task of run {}", runId};
  StoreResult<int64_t> renewed = executeCounting(
      connection_, operation,
      "UPDATE tasks SET lease_expiry_ms = ?4, available_ms = ?4 "
      "WHERE run_id = ?1 AND command_id = ?2 AND owner = ?3",
      [&](Statement &statement) {
        statement.bind(1, runId).bind(2, commandId).bind(3, owner).bind(4, leaseExpiryMs);
      });
  if (!renewed.ok()) {
    return std::move(renewed).error();
  }
  return renewed.value() == 1;
}

StoreResult<bool> Transaction::removeTask(std::string_view runId, int64_t commandId) {
  Operation operation{connection_, "remove a task of run {}", runId};
  StoreResult<int64_t> removed = executeCounting(
      connection_, operation, "DELETE FROM tasks WHERE run_id = ?1 AND command_id = ?2",
      [&](Statement &statement) { statement.bind(1, runId).bind(2, commandId); });
  if (!removed.ok()) {
    return std::move(removed).error();
  }
  return removed.value() > 0;
}

StoreResult<int64_t> Transaction::addInboxMessage(std::string_view runId, InboxKind kind,
                                                  std::string_view name, const Value &payload,
                                                  int64_t timeMs) {
  Operation operation{connection_, "deliver a message to run {}", runId};
  StoreResult<bool> runExists =
      exists(connection_, operation, "SELECT 1 FROM runs WHERE id = ?1", runId);
  if (!runExists.ok()) {
    return std::move(runExists).error();
  }
  if (!runExists.value()) {
    return missingRun(operation, runId);
  }
  StoreStatus inserted = execute(
      connection_, operation,
      "INSERT INTO inbox (run_id, kind, name, payload, received_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
      [&](Statement &statement) {
        statement.bind(1, runId)
            .bind(2, inboxKindName(kind))
            .bind(3, name)
            .bind(4, toJson(payload))
            .bind(5, timeMs);
      });
  if (!inserted.ok()) {
    return std::move(inserted).error();
  }
  return connection_.lastInsertRowId();
}

StoreResult<bool> Transaction::removeInboxMessage(int64_t id) {
  Operation operation{connection_, "remove an inbox message"};
  StoreResult<int64_t> removed =
      executeCounting(connection_, operation, "DELETE FROM inbox WHERE id = ?1",
                      [&](Statement &statement) { statement.bind(1, id); });
  if (!removed.ok()) {
    return std::move(removed).error();
  }
  return removed.value() > 0;
}

StoreResult<int64_t> Transaction::publishEvent(std::string_view type, const Value &payload,
                                               int64_t timeMs) {
  Operation operation{connection_, "publish an event of type {}", type};
  StoreStatus inserted =
      execute(connection_, operation,
              "INSERT INTO published_events (type, payload, published_ms) VALUES (?1, ?2, ?3)",
              [&](Statement &statement) {
                statement.bind(1, type).bind(2, toJson(payload)).bind(3, timeMs);
              });
  if (!inserted.ok()) {
    return std::move(inserted).error();
  }
  return connection_.lastInsertRowId();
}

StoreResult<bool> Transaction::consumePublishedEvent(std::string_view runId,
                                                     int64_t publishedEventId, int64_t timeMs) {
  Operation operation{connection_, "consume a published event for run {}", runId};
  StoreResult<int64_t> inserted = executeCounting(
      connection_, operation,
      "INSERT OR IGNORE INTO event_consumptions (run_id, published_event_id, consumed_ms) "
      "VALUES (?1, ?2, ?3)",
      [&](Statement &statement) {
        statement.bind(1, runId).bind(2, publishedEventId).bind(3, timeMs);
      });
  if (!inserted.ok()) {
    return std::move(inserted).error();
  }
  return inserted.value() == 1;
}

StoreResult<int64_t> Transaction::purgePublishedEvents(int64_t beforeMs) {
  Operation operation{connection_, "purge published events"};
  StoreStatus consumptions = execute(connection_, operation,
                                     "DELETE FROM event_consumptions WHERE published_event_id IN "
                                     "(SELECT id FROM published_events WHERE published_ms < ?1)",
                                     [&](Statement &statement) { statement.bind(1, beforeMs); });
  if (!consumptions.ok()) {
    return std::move(consumptions).error();
  }
  return executeCounting(connection_, operation,
                         "DELETE FROM published_events WHERE published_ms < ?1",
                         [&](Statement &statement) { statement.bind(1, beforeMs); });
}

StoreResult<bool> Transaction::acquireLease(std::string_view runId, std::string_view owner,
                                            int64_t nowMs, int64_t expiryMs) {
  Operation operation{connection_, "acquire the lease of run {}", runId};
  // The upsert's WHERE leaves a live lease of another owner untouched (0 rows changed).
  StoreResult<int64_t> taken = executeCounting(
      connection_, operation,
      "INSERT INTO leases (run_id, owner, expiry_ms) VALUES (?1, ?2, ?4) "
      "ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, expiry_ms = excluded.expiry_ms "
      "WHERE leases.owner = excluded.owner OR leases.expiry_ms <= ?3",
      [&](Statement &statement) {
        statement.bind(1, runId).bind(2, owner).bind(3, nowMs).bind(4, expiryMs);
      });
  if (!taken.ok()) {
    return std::move(taken).error();
  }
  return taken.value() == 1;
}

StoreResult<bool> Transaction::renewLease(std::string_view runId, std::string_view owner,
                                          int64_t expiryMs) {
  Operation operation{connection_, "renew the lease of run {}", runId};
  StoreResult<int64_t> renewed = executeCounting(
      connection_, operation, "UPDATE leases SET expiry_ms = ?3 WHERE run_id = ?1 AND owner = ?2",
      [&](Statement &statement) { statement.bind(1, runId).bind(2, owner).bind(3, expiryMs); });
  if (!renewed.ok()) {
    return std::move(renewed).error();
  }
  return renewed.value() == 1;
}

StoreResult<bool> Transaction::releaseLease(std::string_view runId, std::string_view owner) {
  Operation operation{connection_, "release the lease of run {}", runId};
  StoreResult<int64_t> released =
      executeCounting(connection_, operation, "DELETE FROM leases WHERE run_id = ?1 AND owner = ?2",
                      [&](Statement &statement) { statement.bind(1, runId).bind(2, owner); });
  if (!released.ok()) {
    return std::move(released).error();
  }
  return released.value() == 1;
}

StoreResult<int64_t> Transaction::releaseOwner(std::string_view owner) {
  Operation operation{connection_, "release the leases and claims of {}", owner};
  StoreResult<int64_t> leases =
      executeCounting(connection_, operation, "DELETE FROM leases WHERE owner = ?1",
                      [&](Statement &statement) { statement.bind(1, owner); });
  if (!leases.ok()) {
    return leases;
  }
  // The task goes back to how addTask left it; its next claim is the same attempt, as after
  // a claim that lapsed.
  StoreResult<int64_t> claims = executeCounting(
      connection_, operation,
      "UPDATE tasks SET owner = NULL, lease_expiry_ms = NULL, available_ms = due_ms "
      "WHERE owner = ?1",
      [&](Statement &statement) { statement.bind(1, owner); });
  if (!claims.ok()) {
    return claims;
  }
  return leases.value() + claims.value();
}

StoreStatus Transaction::requireLease(std::string_view runId, std::string_view owner,
                                      int64_t nowMs) {
  Operation operation{connection_, "write run {}", runId};
  StoreResult<std::optional<LeaseRecord>> current = lease(runId);
  if (!current.ok()) {
    return std::move(current).error();
  }
  if (!current.value()) {
    return operation.fail(StoreErrorKind::Conflict,
                          fmt::format("{} holds no lease on the run; acquire it first", owner));
  }
  const LeaseRecord &held = *current.value();
  if (held.owner != owner) {
    return operation.fail(StoreErrorKind::Conflict,
                          fmt::format("the run's lease is held by {}, not {}", held.owner, owner));
  }
  if (held.expiryMs <= nowMs) {
    return operation.fail(StoreErrorKind::Conflict,
                          fmt::format("the lease of {} expired at {} ms; renew leases more "
                                      "often than they expire",
                                      owner, held.expiryMs));
  }
  return {};
}

StoreResult<PurgeCounts> Transaction::purge(const PurgeOptions &options) {
  Operation operation{connection_, "purge finished runs"};
  Array statuses;
  for (RunStatus status : options.statuses) {
    if (!isFinalStatus(status)) {
      return operation.fail(StoreErrorKind::Invalid,
                            fmt::format("{} runs are not finished and are never purged; name "
                                        "final statuses only",
                                        runStatusName(status)));
    }
    statuses.emplace_back(std::string(runStatusName(status)));
  }
  if (options.statuses.empty()) {
    for (RunStatus status :
         {RunStatus::Completed, RunStatus::Failed, RunStatus::Cancelled, RunStatus::TimedOut,
          RunStatus::Terminated, RunStatus::ContinuedAsNew}) {
      statuses.emplace_back(std::string(runStatusName(status)));
    }
  }
  std::string statusList = toJson(Value(std::move(statuses)));
  auto bindSelection = [&](Statement &statement) {
    statement.bind(1, options.finishedBeforeMs).bind(2, std::string_view(statusList));
  };

  // The runs to purge, as a subquery each statement repeats (runs are deleted last).
#define KOTOBA_PURGED_RUNS                                                                         \
  "(SELECT id FROM runs WHERE finished_ms < ?1 AND status IN (SELECT value FROM json_each(?2)))"
  PurgeCounts counts;
  struct Step {
    const char *sql;
    int64_t *count;
  };
  int64_t uncounted = 0;
  const Step steps[] = {
      // A run's events are the key range of its run_key.
      {"DELETE FROM events WHERE id IN (SELECT e.id FROM runs r CROSS JOIN events e "
       "WHERE r.id IN " KOTOBA_PURGED_RUNS " AND e.id BETWEEN r.run_key << 32 "
       "AND (r.run_key << 32) + 4294967295)",
       &counts.events},
      {"DELETE FROM checkpoints WHERE run_id IN " KOTOBA_PURGED_RUNS, &counts.checkpoints},
      {"DELETE FROM timers WHERE run_id IN " KOTOBA_PURGED_RUNS, &uncounted},
      {"DELETE FROM tasks WHERE run_id IN " KOTOBA_PURGED_RUNS, &uncounted},
      {"DELETE FROM inbox WHERE run_id IN " KOTOBA_PURGED_RUNS, &uncounted},
      {"DELETE FROM event_consumptions WHERE run_id IN " KOTOBA_PURGED_RUNS, &uncounted},
      {"DELETE FROM leases WHERE run_id IN " KOTOBA_PURGED_RUNS, &uncounted},
      {"DELETE FROM runs WHERE id IN " KOTOBA_PURGED_RUNS, &counts.runs},
  };
#undef KOTOBA_PURGED_RUNS
  for (const Step &step : steps) {
    StoreResult<int64_t> deleted = executeCounting(connection_, operation, step.sql, bindSelection);
    if (!deleted.ok()) {
      return std::move(deleted).error();
    }
    *step.count += deleted.value();
  }
  StoreResult<int64_t> modules = executeCounting(
      connection_, operation,
      "DELETE FROM modules WHERE NOT EXISTS (SELECT 1 FROM runs WHERE module_hash = modules.hash)",
      [](Statement &) {});
  if (!modules.ok()) {
    return std::move(modules).error();
  }
  counts.modules = modules.value();
  return counts;
}

} // namespace kotoba::runtime
