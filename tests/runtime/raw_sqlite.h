// Reaching into a store file behind the Store's back, as another tool would: running SQL,
// reading one integer, and the SQL that turns a file of the current schema back into the
// layout of an earlier version, as that version's kotoba wrote it (so that tests make old
// files to upgrade without keeping an old kotoba around). Use on files no Store has open.
#pragma once

#include <sqlite3.h>

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

namespace kotoba::raw_sqlite {

// Runs SQL (one or more statements) on the file through a connection of its own.
inline void rawExec(const std::string &path, const std::string &sql) {
  sqlite3 *database = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &database) == SQLITE_OK);
  char *message = nullptr;
  int code = sqlite3_exec(database, sql.c_str(), nullptr, nullptr, &message);
  std::string text = message != nullptr ? message : "";
  sqlite3_free(message);
  sqlite3_close(database);
  REQUIRE_MESSAGE(code == SQLITE_OK, text);
}

// The first column of the first row of a query, read with `read(statement)`.
template <typename Read> auto rawFirst(const std::string &path, const std::string &sql, Read read) {
  sqlite3 *database = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &database) == SQLITE_OK);
  sqlite3_stmt *statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(database, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(statement) == SQLITE_ROW);
  auto value = read(statement);
  sqlite3_finalize(statement);
  sqlite3_close(database);
  return value;
}

inline int64_t rawInteger(const std::string &path, const std::string &sql) {
  return rawFirst(path, sql, [](sqlite3_stmt *row) { return sqlite3_column_int64(row, 0); });
}

inline std::string rawText(const std::string &path, const std::string &sql) {
  return rawFirst(path, sql, [](sqlite3_stmt *row) {
    const unsigned char *text = sqlite3_column_text(row, 0);
    return text != nullptr ? std::string(reinterpret_cast<const char *>(text)) : std::string();
  });
}

// Every table's columns (name, type, NOT NULL, default, key, generated) and every index's
// definition, one line each in name order: what a file created by the current store.sql
// and one upgraded from an earlier version must agree on.
inline std::string rawSchemaShape(const std::string &path) {
  return rawText(
      path, "SELECT group_concat(line, char(10)) FROM (SELECT m.type || ' ' || m.name || ': ' || "
            "CASE m.type WHEN 'table' THEN (SELECT group_concat(c.name || ' ' || c.type || ' ' "
            "|| c.\"notnull\" || ' ' || coalesce(c.dflt_value, '-') || ' ' || c.pk || ' ' || "
            "c.hidden, ', ') FROM pragma_table_xinfo(m.name) c) ELSE coalesce(m.sql, 'implicit') "
            "END AS line FROM sqlite_schema m WHERE m.name NOT LIKE 'sqlite_%' ORDER BY m.name)");
}

// The events table and its index as versions 1 and 2 had them, filled from the current
// layout: the run id as text, prev_hash stored, payloads whole.
inline constexpr const char *kBackToVersion2Sql = R"sql(
CREATE TABLE events_v2 (
  run_id    TEXT    NOT NULL REFERENCES runs (id),
  seq       INTEGER NOT NULL CHECK (seq >= 1),
  type      INTEGER NOT NULL,
  time_ms   INTEGER NOT NULL,
  tx        INTEGER NOT NULL,
  step_id   TEXT    NOT NULL,
  location  TEXT    NOT NULL,
  payload   TEXT    NOT NULL,
  hash      BLOB    NOT NULL,
  prev_hash BLOB    NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
INSERT INTO events_v2
  SELECT r.id, e.seq, e.type, e.time_ms, e.tx, s.step_id, s.location,
    CASE WHEN e.command_id IS NULL THEN e.payload
         WHEN e.payload = '{}' THEN '{"command_id":' || e.command_id || '}'
         ELSE '{"command_id":' || e.command_id || ',' || substr(e.payload, 2) END,
    e.hash, coalesce(lag(e.hash) OVER (PARTITION BY e.run_key ORDER BY e.id), zeroblob(32))
  FROM events e JOIN runs r ON r.run_key = e.run_key JOIN sites s ON s.id = e.site;
DROP TABLE events;
DROP TABLE sites;
ALTER TABLE events_v2 RENAME TO events;
CREATE INDEX events_by_tx ON events (run_id, tx);
DROP INDEX runs_by_key;
ALTER TABLE runs DROP COLUMN run_key;
PRAGMA user_version = 2;
)sql";

// Then from version 2 to version 1: no runs.host.
inline constexpr const char *kBackToVersion1Sql =
    "ALTER TABLE runs DROP COLUMN host; PRAGMA user_version = 1;";

} // namespace kotoba::raw_sqlite
