// Pieces shared by the store's implementation files: the write-transaction loop that waits
// out busy databases, schema migration, JSON payload decoding, and the group-commit writer
// of batch mode. Private to runtime/src.
#pragma once

#include "store_connection.h"

#include "kotoba/runtime/store.h"

#include <llvm/ADT/STLFunctionalExtras.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace kotoba::runtime::detail {

using SteadyClock = std::chrono::steady_clock;
using Deadline = SteadyClock::time_point;

// Runs `body` between BEGIN IMMEDIATE and COMMIT on a connection the caller has locked.
// While SQLite reports the database busy (at BEGIN, in the body, or at COMMIT) it rolls back
// and starts over, until `deadline`; after that the result is a Busy error whose message
// says what held the lock. An error from `body` rolls back and is returned.
[[nodiscard]] StoreStatus runWriteTransaction(Connection &connection, const Operation &operation,
                                              Deadline deadline,
                                              llvm::function_ref<StoreStatus()> body);

// Test-only (store_kill_hook.cpp): with KOTOBA_TEST_KILL_AT_WRITE=N in the environment,
// makes SQLite's default VFS one that raises SIGKILL at the process's Nth write or sync.
// Does nothing without the variable; safe to call on every open.
void installTestKillHook();

// Brings the file's schema to kStoreSchemaVersion, or refuses it (store_schema.cpp).
// Refuses, before anything is written to it (not even the switch to write-ahead logging), a
// file that is another program's database or a store of a newer or unknown version.
[[nodiscard]] StoreStatus refuseForeignFile(Connection &connection, const Operation &operation);
[[nodiscard]] StoreStatus migrateSchema(Connection &connection, Deadline deadline);

// Reads a JSON column written by the store. A column that does not parse is Corrupt data,
// reported with `what` ("the payload of event 5 of run r-1").
[[nodiscard]] StoreResult<Value> decodeJson(const Operation &operation, std::string_view text,
                                            std::string_view what);

// The writer thread of batch mode: collects write functions from any number of callers and
// runs them in one SQLite transaction, each in a savepoint of its own (so one function's
// error undoes only its own writes), commits, and only then completes the callers.
class BatchWriter {
public:
  BatchWriter(Connection &connection, const StoreOptions &options);
  // Runs and commits everything already queued, then stops the thread.
  ~BatchWriter();
  BatchWriter(const BatchWriter &) = delete;
  BatchWriter &operator=(const BatchWriter &) = delete;

  void enqueue(WriteFunction write, CommitCallback onCommitted);
  // Commits the group being collected without waiting for the rest of its window.
  void closeWindow();
  // Whether the calling thread is the writer (whose callbacks must not wait on a commit).
  [[nodiscard]] bool onWriterThread() const;

private:
  struct Pending {
    WriteFunction write;
    CommitCallback onCommitted;
  };

  void loop();
  void commitBatch(std::deque<Pending> &batch);

  Connection &connection_;
  StoreOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  // Set by closeWindow(), cleared when the group it closed is taken.
  bool closeRequested_ = false;
  std::thread thread_;
};

} // namespace kotoba::runtime::detail
