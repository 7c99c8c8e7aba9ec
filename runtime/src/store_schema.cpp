// Schema creation and migration, keyed on PRAGMA user_version. A new file gets the whole
// current schema from runtime/schema/store.sql in one transaction; a file of an older
// version gets the upgrade steps from its version on, each in that same transaction; a
// file of a newer version, or one that is not a Kotoba store, is refused untouched.
#include "store_internal.h"

#include "kotoba/runtime/store.h"

#include <fmt/format.h>

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
constexpr SchemaUpgrade kUpgradeSteps[] = {
    {2, "ALTER TABLE runs ADD COLUMN host TEXT"},
};
constexpr std::span<const SchemaUpgrade> kUpgrades{kUpgradeSteps};

StoreResult<int64_t> pragmaInteger(Connection &connection, const Operation &operation,
                                   const char *sql) {
  StoreResult<Statement> statement = connection.prepare(operation, sql);
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  StoreResult<bool> row = statement->next(operation);
  if (!row.ok()) {
    return std::move(row).error();
  }
  return row.value() ? statement->integer(0) : 0;
}

StoreStatus migrateLocked(Connection &connection, const Operation &operation) {
  StoreResult<int64_t> version = pragmaInteger(connection, operation, "PRAGMA user_version");
  if (!version.ok()) {
    return std::move(version).error();
  }
  StoreResult<int64_t> application = pragmaInteger(connection, operation, "PRAGMA application_id");
  if (!application.ok()) {
    return std::move(application).error();
  }
  StoreResult<int64_t> objects =
      pragmaInteger(connection, operation, "SELECT count(*) FROM sqlite_schema");
  if (!objects.ok()) {
    return std::move(objects).error();
  }

  bool empty = version.value() == 0 && application.value() == 0 && objects.value() == 0;
  if (empty) {
    return connection.execScript(operation, kStoreSchemaSql);
  }
  if (application.value() != kApplicationId) {
    return operation.fail(StoreErrorKind::Incompatible,
                          "the file is a SQLite database but not a Kotoba store; pass a new "
                          "path or an existing store");
  }
  if (version.value() > kStoreSchemaVersion) {
    return operation.fail(StoreErrorKind::Incompatible,
                          fmt::format("the store has schema version {}, newer than version "
                                      "{} that this kotoba understands; use a newer kotoba",
                                      version.value(), kStoreSchemaVersion));
  }
  if (version.value() < 1) {
    return operation.fail(StoreErrorKind::Incompatible,
                          "the store has no schema version; it was not created by kotoba "
                          "or its creation was interrupted by a tool outside kotoba");
  }
  for (const SchemaUpgrade &upgrade : kUpgrades) {
    if (upgrade.toVersion <= version.value()) {
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

StoreStatus migrateSchema(Connection &connection, Deadline deadline) {
  Operation operation{connection, "prepare the store schema"};
  // The whole check-and-create runs under the write lock: two processes opening a new file
  // at once would otherwise both see an empty file and both create the schema.
  return runWriteTransaction(connection, operation, deadline,
                             [&]() -> StoreStatus { return migrateLocked(connection, operation); });
}

} // namespace kotoba::runtime::detail
