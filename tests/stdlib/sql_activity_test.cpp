// The sql activity against real SQLite files in temporary directories: values of every
// storage class, parameters that hold quotes, unicode and injection attempts, constraint
// violations, lists run in one transaction, a database locked by another connection, and
// stopping a statement that waits or runs too long.
#include "stdlib_test_support.h"

#include "kotoba/runtime/function.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <filesystem>

namespace kotoba::stdlib {
namespace {

using namespace testing;
using runtime::CancellationSignal;
using runtime::StopReason;

// A second connection to the test's database, for setting up and checking from outside the
// activity.
class Database {
public:
  explicit Database(const std::string &path) {
    REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
  }
  Database(const Database &) = delete;
  Database &operator=(const Database &) = delete;
  ~Database() { sqlite3_close(db_); }

  void exec(const std::string &sql) {
    char *message = nullptr;
    int code = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    std::string text = message != nullptr ? message : "";
    sqlite3_free(message);
    REQUIRE_MESSAGE(code == SQLITE_OK, sql << ": " << text);
  }
  // The first column of the first row, as text.
  std::string scalar(const std::string &sql) {
    sqlite3_stmt *statement = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK);
    std::string text;
    if (sqlite3_step(statement) == SQLITE_ROW) {
      const unsigned char *value = sqlite3_column_text(statement, 0);
      text = value != nullptr ? reinterpret_cast<const char *>(value) : "NULL";
    }
    sqlite3_finalize(statement);
    return text;
  }

private:
  sqlite3 *db_ = nullptr;
};

Value sqlImplementation(const std::string &database, const Value &statement,
                        Object extra = Object()) {
  Object implementation;
  implementation.set("type", "sql");
  implementation.set("database", database);
  implementation.set("statement", statement);
  for (const ObjectEntry &entry : extra) {
    implementation.set(entry.key, entry.value);
  }
  return Value(std::move(implementation));
}

struct ShopFixture {
  TempDir dir;
  std::string path = dir.file("shop.db");
  Database db{path};
  ShopFixture() {
    db.exec("CREATE TABLE orders(id TEXT PRIMARY KEY, amount REAL NOT NULL CHECK (amount > 0),"
            " note TEXT, quantity INTEGER, payload BLOB)");
  }

  std::shared_ptr<runtime::Activity> activity(const Value &statement, Object extra = Object()) {
    return declare(sqlImplementation("shop.db", statement, std::move(extra)), dir.path().string());
  }
};

TEST_CASE("sql keeps integers, reals, text, null and blobs apart in rows") {
  ShopFixture shop;
  shop.db.exec("INSERT INTO orders VALUES ('a', 12.5, NULL, 9007199254740993, x'00ff10')");
  auto select = shop.activity("SELECT id, amount, note, quantity, payload FROM orders");

  Result<Value> result = attempt(*select, Value());

  REQUIRE(result.ok());
  const Object &row = result->asObject().find("rows")->asArray().at(0).asObject();
  CHECK(row.find("id")->asString() == "a");
  REQUIRE(row.find("amount")->isDouble());
  CHECK(row.find("amount")->asDouble() == 12.5);
  CHECK(row.find("note")->isNull());
  REQUIRE(row.find("quantity")->isInt());
  CHECK(row.find("quantity")->asInt() == 9007199254740993); // beyond a double's precision
  CHECK(row.find("payload")->asString() == "AP8Q");         // base64 of 00 ff 10
  CHECK(toJson(result.value()) ==
        R"({"rows":[{"id":"a","amount":12.5,"note":null,"quantity":9007199254740993,)"
        R"("payload":"AP8Q"}],"rows_affected":0,"last_insert_id":0})");
}

TEST_CASE("sql binds named parameters from the input and reports the insert") {
  ShopFixture shop;
  auto insert = shop.activity("INSERT INTO orders(id, amount, quantity, note) "
                              "VALUES (:id, :amount, @quantity, $note)");

  Result<Value> result =
      attempt(*insert, json(R"({"id": "o-1", "amount": 30, "quantity": 2, "note": null,)"
                            R"( "unused": [1, 2]})"));

  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  CHECK(toJson(result.value()) == R"({"rows":[],"rows_affected":1,"last_insert_id":1})");
  CHECK(shop.db.scalar("SELECT amount || '/' || quantity || '/' || typeof(note) FROM orders") ==
        "30.0/2/null");
}

TEST_CASE("sql stores parameters with quotes and unicode verbatim") {
  ShopFixture shop;
  auto insert = shop.activity("INSERT INTO orders(id, amount, note) VALUES (:id, 1, :note)");
  auto select = shop.activity("SELECT note FROM orders WHERE id = :id");
  std::string note = "O'Brien said \"hi\" \\ 日本語 🎉 \u00e9\u0301 '' ; --";

  Object input;
  input.set("id", "q");
  input.set("note", note);
  REQUIRE(attempt(*insert, Value(input)).ok());
  Result<Value> read = attempt(*select, Value(input));

  REQUIRE(read.ok());
  CHECK(read->asObject().find("rows")->asArray().at(0).asObject().find("note")->asString() == note);
  CHECK(shop.db.scalar("SELECT note FROM orders WHERE id = 'q'") == note);
}

TEST_CASE("an injection attempt in a parameter is stored as text and the table survives") {
  ShopFixture shop;
  shop.db.exec("CREATE TABLE x(v TEXT)");
  shop.db.exec("INSERT INTO x VALUES ('kept')");
  auto insert = shop.activity("INSERT INTO orders(id, amount, note) VALUES (:id, 1, :note)");
  std::string attack = "'; DROP TABLE x; --";

  Object input;
  input.set("id", attack);
  input.set("note", "x'); DELETE FROM orders; --");
  Result<Value> result = attempt(*insert, Value(input));

  REQUIRE(result.ok());
  CHECK(shop.db.scalar("SELECT id FROM orders") == attack);
  CHECK(shop.db.scalar("SELECT note FROM orders") == "x'); DELETE FROM orders; --");
  CHECK(shop.db.scalar("SELECT v FROM x") == "kept");
}

TEST_CASE("a sql statement with a template is refused before the run starts") {
  Result<std::shared_ptr<runtime::Activity>> activity =
      tryDeclare(sqlImplementation("shop.db", "SELECT * FROM orders WHERE id = '${$.input.id}'"));

  REQUIRE_FALSE(activity.ok());
  CHECK(activity.error().type == runtime::activity_errors::InvalidImplementation);
  CHECK(activity.error().message.find("named parameter such as :order_id") != std::string::npos);
}

TEST_CASE("sql implementations with unknown or malformed fields are refused with the fix") {
  struct Case {
    const char *implementation;
    const char *message;
  };
  const Case cases[] = {
      {R"({"type": "sql", "database": "a.db", "statment": "SELECT 1"})",
       "unknown field 'statment' in the sql implementation; it takes database, statement, "
       "busy_timeout, create, read_only"},
      {R"({"type": "sql", "statement": "SELECT 1"})", "the sql implementation needs 'database'"},
      {R"({"type": "sql", "database": "a.db", "statement": [1]})",
       "'statement' of the sql implementation must be a string or an array of strings, found "
       "integer 1"},
      {R"({"type": "sql", "database": "a.db", "statement": []})", "'statement' is an empty list"},
      {R"({"type": "sql", "database": "a.db", "statement": "SELECT 1", "busy_timeout": "1M"})",
       "'busy_timeout': invalid duration '1M'"},
      {R"({"type": "sql", "database": "a.db", "statement": "SELECT 1", "create": true,
           "read_only": true})",
       "'create' and 'read_only' exclude each other"},
  };
  for (const Case &testCase : cases) {
    CAPTURE(testCase.implementation);
    Result<std::shared_ptr<runtime::Activity>> activity = tryDeclare(json(testCase.implementation));
    REQUIRE_FALSE(activity.ok());
    CHECK(activity.error().type == runtime::activity_errors::InvalidImplementation);
    CHECK_MESSAGE(activity.error().message.find(testCase.message) != std::string::npos,
                  activity.error().message);
    CHECK_FALSE(activity.error().retryable);
  }
}

TEST_CASE("a constraint violation is SqlConstraint with SQLite's message, not retryable") {
  ShopFixture shop;
  shop.db.exec("INSERT INTO orders(id, amount) VALUES ('dup', 1)");
  auto insert = shop.activity("INSERT INTO orders(id, amount) VALUES (:id, :amount)");

  WorkflowError duplicate = failureOf(attempt(*insert, json(R"({"id": "dup", "amount": 2})")));
  WorkflowError negative = failureOf(attempt(*insert, json(R"({"id": "n", "amount": -1})")));
  WorkflowError missing = failureOf(attempt(*insert, json(R"({"id": "m", "amount": null})")));

  CHECK(duplicate.type == stdlib_errors::SqlConstraint);
  CHECK_FALSE(duplicate.retryable);
  CHECK(duplicate.message.find("UNIQUE constraint failed: orders.id") != std::string::npos);
  CHECK(negative.type == stdlib_errors::SqlConstraint);
  CHECK(negative.message.find("CHECK constraint failed") != std::string::npos);
  CHECK(missing.type == stdlib_errors::SqlConstraint);
  CHECK(missing.message.find("NOT NULL constraint failed: orders.amount") != std::string::npos);
  CHECK(shop.db.scalar("SELECT count(*) FROM orders") == "1");
}

TEST_CASE("foreign keys are enforced") {
  ShopFixture shop;
  shop.db.exec("CREATE TABLE lines(order_id TEXT NOT NULL REFERENCES orders(id))");
  auto insert = shop.activity("INSERT INTO lines VALUES (:id)");

  WorkflowError error = failureOf(attempt(*insert, json(R"({"id": "nowhere"})")));

  CHECK(error.type == stdlib_errors::SqlConstraint);
  CHECK(error.message.find("FOREIGN KEY constraint failed") != std::string::npos);
}

TEST_CASE("a list of statements commits together and reports each statement") {
  ShopFixture shop;
  auto list = shop.activity(json(R"sql([
      "INSERT INTO orders(id, amount) VALUES (:id, 10)",
      "UPDATE orders SET amount = amount * 2 WHERE id = :id",
      "SELECT id, amount FROM orders"])sql"));

  Result<Value> result = attempt(*list, json(R"({"id": "o-7"})"));

  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  CHECK(toJson(result.value()) ==
        R"({"rows":[{"id":"o-7","amount":20.0}],"rows_affected":0,"last_insert_id":1,)"
        R"("results":[{"rows":[],"rows_affected":1,"last_insert_id":1},)"
        R"({"rows":[],"rows_affected":1,"last_insert_id":1},)"
        R"({"rows":[{"id":"o-7","amount":20.0}],"rows_affected":0,"last_insert_id":1}]})");
}

TEST_CASE("a failing statement in a list rolls back the statements before it") {
  ShopFixture shop;
  shop.db.exec("INSERT INTO orders(id, amount) VALUES ('taken', 1)");
  auto list = shop.activity(json(R"sql([
      "INSERT INTO orders(id, amount) VALUES ('fresh', 5)",
      "UPDATE orders SET amount = 99",
      "INSERT INTO orders(id, amount) VALUES ('taken', 2)"])sql"));

  WorkflowError error = failureOf(attempt(*list, Value()));

  CHECK(error.type == stdlib_errors::SqlConstraint);
  CHECK(error.message.find("sql statement 3") != std::string::npos);
  CHECK(error.details.asObject().find("statement")->asInt() == 3);
  CHECK(shop.db.scalar("SELECT count(*) || '/' || max(amount) FROM orders") == "1/1.0");
}

TEST_CASE("a locked database is a retryable SqlBusy after the busy timeout") {
  ShopFixture shop;
  Database holder(shop.path);
  holder.exec("BEGIN EXCLUSIVE");
  Object options;
  options.set("busy_timeout", "150ms");
  auto insert = shop.activity("INSERT INTO orders(id, amount) VALUES ('b', 1)", options);

  Stopwatch clock;
  WorkflowError error = failureOf(attempt(*insert, Value()));

  CHECK(error.type == stdlib_errors::SqlBusy);
  CHECK(error.retryable);
  CHECK(error.message.find("database is locked") != std::string::npos);
  CHECK(clock.elapsedMs() >= 140);
  CHECK(clock.elapsedMs() < 2000);
  holder.exec("ROLLBACK");
}

TEST_CASE("a statement waits for a lock released within its busy timeout") {
  ShopFixture shop;
  auto holder = std::make_unique<Database>(shop.path);
  holder->exec("BEGIN EXCLUSIVE");
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    holder->exec("COMMIT");
  });
  auto insert = shop.activity("INSERT INTO orders(id, amount) VALUES ('w', 1)");

  Result<Value> result = attempt(*insert, Value());
  release.join();

  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  CHECK(shop.db.scalar("SELECT count(*) FROM orders") == "1");
}

TEST_CASE("cancelling an attempt that waits for a lock stops it at once") {
  ShopFixture shop;
  Database holder(shop.path);
  holder.exec("BEGIN EXCLUSIVE");
  Object options;
  options.set("busy_timeout", "30s");
  auto insert = shop.activity("INSERT INTO orders(id, amount) VALUES ('c', 1)", options);
  auto cancellation = std::make_shared<CancellationSignal>();
  auto context = testContext(cancellation);

  Stopwatch clock;
  DelayedStop stop(cancellation, std::chrono::milliseconds(100));
  Result<Value> result = runtime::runActivity(*insert, Value(), *context);

  CHECK(failureOf(result).type == runtime::activity_errors::ActivityCancelled);
  CHECK(clock.elapsedMs() < 1000);
  holder.exec("ROLLBACK");
}

TEST_CASE("a runaway query is interrupted when its attempt times out") {
  ShopFixture shop;
  auto forever = shop.activity("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                               "SELECT count(*) FROM n");
  auto cancellation = std::make_shared<CancellationSignal>();
  auto context = testContext(cancellation);

  Stopwatch clock;
  DelayedStop stop(cancellation, std::chrono::milliseconds(100), StopReason::TimedOut);
  Result<Value> result = runtime::runActivity(*forever, Value(), *context);

  WorkflowError error = failureOf(result);
  CHECK(error.type == runtime::activity_errors::ActivityTimeout);
  CHECK(error.retryable);
  CHECK(clock.elapsedMs() < 1000);
}

TEST_CASE("a cancelled list leaves the database as it was") {
  ShopFixture shop;
  auto list = shop.activity(json(R"sql([
      "INSERT INTO orders(id, amount) VALUES ('gone', 5)",
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
  ])sql"));
  auto cancellation = std::make_shared<CancellationSignal>();
  auto context = testContext(cancellation);

  DelayedStop stop(cancellation, std::chrono::milliseconds(100));
  Result<Value> result = runtime::runActivity(*list, Value(), *context);

  CHECK(failureOf(result).type == runtime::activity_errors::ActivityCancelled);
  CHECK(shop.db.scalar("SELECT count(*) FROM orders") == "0");
}

TEST_CASE("a parameter the input lacks is InvalidInput naming it") {
  ShopFixture shop;
  auto select = shop.activity("SELECT * FROM orders WHERE id = :order_id");

  WorkflowError missing = failureOf(attempt(*select, json(R"({"id": "x"})")));
  WorkflowError notObject = failureOf(attempt(*select, json("[1]")));

  CHECK(missing.type == runtime::kInvalidInput);
  CHECK_FALSE(missing.retryable);
  CHECK(missing.message == "sql statement uses parameter ':order_id' but the input has no "
                           "'order_id'; give the activity an input object with 'order_id' "
                           "(input_mapping)");
  CHECK(notObject.message.find("but the input is an array") != std::string::npos);
}

TEST_CASE("positional parameters and several statements in one string are refused") {
  ShopFixture shop;
  auto positional = shop.activity("SELECT * FROM orders WHERE id = ?");
  auto twoInOne = shop.activity("SELECT 1; DROP TABLE orders");
  auto trailingComment = shop.activity("SELECT 1; -- nothing else\n  ");

  WorkflowError positionalError = failureOf(attempt(*positional, json("{}")));
  WorkflowError twoError = failureOf(attempt(*twoInOne, Value()));

  CHECK(positionalError.type == runtime::activity_errors::InvalidImplementation);
  CHECK(positionalError.message.find("positional parameter") != std::string::npos);
  CHECK(twoError.type == runtime::activity_errors::InvalidImplementation);
  CHECK(twoError.message.find("more than one SQL statement") != std::string::npos);
  CHECK(shop.db.scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'orders'") == "1");
  CHECK(attempt(*trailingComment, Value()).ok());
}

TEST_CASE("syntax errors and missing tables are SqlError, not retryable") {
  ShopFixture shop;
  WorkflowError syntax = failureOf(attempt(*shop.activity("SELEC 1"), Value()));
  WorkflowError table = failureOf(attempt(*shop.activity("SELECT * FROM nowhere"), Value()));

  CHECK(syntax.type == stdlib_errors::SqlError);
  CHECK_FALSE(syntax.retryable);
  CHECK(syntax.message.find("near \"SELEC\": syntax error") != std::string::npos);
  CHECK(table.message == "sql statement on 'shop.db' failed: no such table: nowhere");
}

TEST_CASE("rows_affected counts only the statement's own changes") {
  ShopFixture shop;
  shop.db.exec("INSERT INTO orders(id, amount) VALUES ('a', 1), ('b', 2), ('c', 3)");
  auto list = shop.activity(json(R"sql([
      "UPDATE orders SET amount = amount + 1 WHERE amount >= 2",
      "CREATE TABLE audit(v)",
      "SELECT count(*) AS n FROM orders"])sql"));

  Result<Value> result = attempt(*list, Value());

  REQUIRE(result.ok());
  const Array &results = result->asObject().find("results")->asArray();
  CHECK(results[0].asObject().find("rows_affected")->asInt() == 2);
  CHECK(results[1].asObject().find("rows_affected")->asInt() == 0);
  CHECK(results[2].asObject().find("rows_affected")->asInt() == 0);
}

TEST_CASE("a relative database path starts at the workflow's directory") {
  TempDir dir;
  std::filesystem::create_directory(dir.path() / "data");
  Object create;
  create.set("create", true);
  auto creating =
      declare(sqlImplementation("data/new.db", "CREATE TABLE t(v)", create), dir.path().string());
  auto plain = declare(sqlImplementation("data/absent.db", "SELECT 1"), dir.path().string());

  REQUIRE(attempt(*creating, Value()).ok());
  WorkflowError absent = failureOf(attempt(*plain, Value()));

  CHECK(std::filesystem::exists(dir.path() / "data" / "new.db"));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "data" / "absent.db"));
  CHECK(absent.type == stdlib_errors::SqlError);
  CHECK_FALSE(absent.retryable);
  CHECK(absent.message.find("cannot open database 'data/absent.db'") != std::string::npos);
  CHECK(absent.message.find("set create: true") != std::string::npos);
}

TEST_CASE("the database path may come from the environment") {
  ShopFixture shop;
  auto count = declare(sqlImplementation("${$.env.SHOP_DB}", "SELECT count(*) AS n FROM orders"),
                       "", {{"SHOP_DB", shop.path}});

  Result<Value> result = attempt(*count, Value());

  REQUIRE(result.ok());
  CHECK(toJson(result.value()).find(R"("n":0)") != std::string::npos);
}

TEST_CASE("a read-only database refuses writes") {
  ShopFixture shop;
  Object readOnly;
  readOnly.set("read_only", true);
  auto insert = shop.activity("INSERT INTO orders(id, amount) VALUES ('r', 1)", readOnly);

  WorkflowError error = failureOf(attempt(*insert, Value()));

  CHECK(error.type == stdlib_errors::SqlError);
  CHECK(error.message.find("readonly database") != std::string::npos);
}

TEST_CASE("arrays and objects are bound as JSON text") {
  ShopFixture shop;
  auto select = shop.activity("SELECT json_extract(:order, '$.lines[1].sku') AS sku, "
                              "json_array_length(:tags) AS tags");

  Result<Value> result = attempt(
      *select, json(R"({"order": {"lines": [{"sku": "a"}, {"sku": "b"}]}, "tags": [1, 2, 3]})"));

  REQUIRE(result.ok());
  CHECK(toJson(result->asObject().find("rows")->asArray().at(0)) == R"({"sku":"b","tags":3})");
}

TEST_CASE("rows beyond the payload limit stop the query with PayloadTooLarge") {
  ShopFixture shop;
  auto many = shop.activity("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                            "SELECT i, 'some text to fill the rows' AS t FROM n");

  WorkflowError error = failureOf(attempt(*many, Value(), 64 * 1024));

  CHECK(error.type == error_types::PayloadTooLarge);
  CHECK_FALSE(error.retryable);
  CHECK(error.message.find("select fewer rows") != std::string::npos);
}

} // namespace
} // namespace kotoba::stdlib
