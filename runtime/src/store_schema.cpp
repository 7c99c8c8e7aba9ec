// Schema creation and migration, keyed on PRAGMA user_version. A new file gets the whole
// current schema from runtime/schema/store.sql in one transaction; a file of an older
// version gets the upgrade steps from its version on, each in that same transaction; a
// file of a newer version, or one that is not a Kotoba store, is refused untouched.
#include "store_internal.h"

#include "kotoba/runtime/store.h"

#include <fmt/format.h>

#include <cassert>
#include <span>

namespace kotoba::runtime::detail {
namespace {

#include "kotoba/runtime/store_schema.inc"

// PRAGMA application_id of a Kotoba store: 'KOTB'. store.sql sets the same number.
constexpr int64_t kApplicationId = 0x4B4F5442;

// One step from version `toVersion - 1` to `toVersion`. A released version's step is never
// edited; store.sql always holds the newest schema whole, so a new file never runs these.
struct SchemaUpgrade {
  int toVersion;
  const char *sql;
};

// Version 2 adds runs.host; runs of a version 1 store have none (NULL), and the engine then
// resolves their activities as version 1 did, from its own options.
// Version 3 stores a history smaller (store.sql, events): runs get their run_key in creation
// order; events are copied into the new layout with their hashes as they are (the hash
// formula is unchanged, so the chains stay intact) and their payloads whole (command_id
// NULL); prev_hash and events_by_tx go.
constexpr const char *kVersion3Sql = R"sql(
ALTER TABLE runs ADD COLUMN run_key INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET run_key = numbered.run_key
  FROM (SELECT id, row_number() OVER (ORDER BY created_ms, id) AS run_key FROM runs) AS numbered
  WHERE runs.id = numbered.id;
CREATE UNIQUE INDEX runs_by_key ON runs (run_key);
CREATE TABLE sites (
  id       INTEGER PRIMARY KEY,
  step_id  TEXT    NOT NULL,
  location TEXT    NOT NULL,
  UNIQUE (step_id, location)
);
INSERT INTO sites (step_id, location)
  SELECT DISTINCT step_id, location FROM events ORDER BY step_id, location;
CREATE TABLE events_v3 (
  id         INTEGER PRIMARY KEY CHECK ((id & 4294967295) >= 1),
  type       INTEGER NOT NULL,
  time_ms    INTEGER NOT NULL,
  tx         INTEGER NOT NULL,
  site       INTEGER NOT NULL REFERENCES sites (id),
  command_id INTEGER,
  payload    TEXT    NOT NULL,
  hash       BLOB    NOT NULL,
  run_key    INTEGER GENERATED ALWAYS AS (id >> 32) VIRTUAL,
  seq        INTEGER GENERATED ALWAYS AS (id & 4294967295) VIRTUAL
);
INSERT INTO events_v3 (id, type, time_ms, tx, site, command_id, payload, hash)
  SELECT (r.run_key << 32) + e.seq, e.type, e.time_ms, e.tx, s.id, NULL, e.payload, e.hash
  FROM events e
  JOIN runs r ON r.id = e.run_id
  JOIN sites s ON s.step_id = e.step_id AND s.location = e.location
  ORDER BY 1;
DROP INDEX events_by_tx;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
)sql";

constexpr SchemaUpgrade kUpgradeSteps[] = {
    {2, "ALTER TABLE runs ADD COLUMN host TEXT"},
    {3, kVersion3Sql},
};
constexpr std::span<const SchemaUpgrade> kUpgrades{kUpgradeSteps};

// What the file holds: nothing yet (a new store), or a Kotoba store of a version this build
// can open; anything else is refused with the reason.
struct FileSchema {
  bool empty = false;
  int64_t version = 0;
};

StoreResult<FileSchema> readFileSchema(Connection &connection, const Operation &operation) {
  // One statement, so one read transaction: another process creating the schema at the
  // same moment is seen either not at all or whole.
  StoreResult<Statement> statement = connection.prepare(
      operation, "SELECT (SELECT user_version FROM pragma_user_version), "
                 "(SELECT application_id FROM pragma_application_id), "
                 "(SELECT count(*) FROM sqlite_schema)");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  StoreResult<bool> row = statement->next(operation);
  if (!row.ok()) {
    return std::move(row).error();
  }
  assert(row.value() && "a SELECT of three scalars has one row");
  int64_t version = statement->integer(0);
  int64_t application = statement->integer(1);
  int64_t objects = statement->integer(2);

  if (version == 0 && application == 0 && objects == 0) {
    return FileSchema{.empty = true, .version = 0};
  }
  if (application != kApplicationId) {
    return operation.fail(StoreErrorKind::Incompatible,
                          "the file is a SQLite database but not a Kotoba store; pass a new "
                          "path or an existing store");
  }
  if (version > kStoreSchemaVersion) {
    return operation.fail(StoreErrorKind::Incompatible,
                          fmt::format("the store has schema version {}, newer than version "
                                      "{} that this kotoba understands; use a newer kotoba",
                                      version, kStoreSchemaVersion));
  }
  if (version < 1) {
    return operation.fail(StoreErrorKind::Incompatible,
                          "the store has no schema version; it was not created by kotoba "
                          "or its creation was interrupted by a tool outside kotoba");
  }
  return FileSchema{.empty = false, .version = version};
}

StoreStatus migrateLocked(Connection &connection, const Operation &operation) {
  StoreResult<FileSchema> file = readFileSchema(connection, operation);
  if (!file.ok()) {
    return std::move(file).error();
  }
  if (file->empty) {
    return connection.execScript(operation, kStoreSchemaSql);
  }
  for (const SchemaUpgrade &upgrade : kUpgrades) {
    if (upgrade.toVersion <= file->version) {
      continue;
    }
    if (StoreStatus applied = connection.execScript(operation, upgrade.sql); !applied.ok()) {
      return applied;
    }
    std::string setVersion = fmt::format("PRAGMA user_version = {}", upgrade.toVersion);
    if (StoreStatus set = connection.execScript(operation, setVersion.c_str()); !set.ok()) {
      return set;
    }
  }
  return {};
}

} // namespace

StoreStatus refuseForeignFile(Connection &connection, const Operation &operation) {
  StoreResult<FileSchema> file = readFileSchema(connection, operation);
  return file.ok() ? StoreStatus() : StoreStatus(std::move(file).error());
}

StoreStatus migrateSchema(Connection &connection, Deadline deadline) {
  Operation operation{connection, "prepare the store schema"};
  // The whole check-and-create runs under the write lock: two processes opening a new file
  // at once would otherwise both see an empty file and both create the schema.
  return runWriteTransaction(connection, operation, deadline,
                             [&]() -> StoreStatus { return migrateLocked(connection, operation); });
}

} // namespace kotoba::runtime::detail
