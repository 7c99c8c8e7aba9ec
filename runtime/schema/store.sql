-- The Kotoba store, schema version 3.
--
-- One SQLite file holds everything a durable run needs to survive a crash: the modules runs
-- were started with, the runs, their histories (hash-chained), checkpoints of VM state,
-- durable timers, activity tasks, signal inboxes, engine-wide published events and run
-- leases. The store creates it from this file on first use (runtime/src/store_schema.cpp
-- embeds the text) and records the version in PRAGMA user_version.
--
-- Conventions, for every table:
--   - times are integers, milliseconds since the Unix epoch, UTC, named *_ms;
--   - payloads (inputs, outputs, errors, event payloads) are compact JSON text as json.h
--     writes it: valid UTF-8, object keys in insertion order, no whitespace;
--   - hashes are 32-byte SHA-256 BLOBs; module hashes are 64 lowercase hex characters;
--   - run ids and owners are opaque text chosen by the engine.
--
-- This file always holds the newest schema whole. A change to a released version raises
-- the version below and adds, in store_schema.cpp, the step that brings a file of the
-- previous version to this one; existing files are upgraded by those steps, never by
-- running this file again. Versions:
--   1  the first schema.
--   2  runs.host: where the run's activities come from (base directory, --bind bindings).
--   3  a smaller history: runs.run_key, events keyed by run_key and seq in one integer,
--      step ids and locations in sites, no stored prev_hash, no events_by_tx index, and a
--      payload's leading command_id kept in a column of its own.

PRAGMA application_id = 1263490114; -- 0x4B4F5442, 'KOTB': marks the file as a Kotoba store

-- modules: every compiled module (.kbc) a run was started with, by content hash.
--   hash        the module's SHA-256 content hash (the .kbc header's), lowercase hex
--   kbc         the .kbc file's bytes, exactly as loaded
--   created_ms  when the store first saw the module
-- A run is pinned to the module it started with (runtime.md section 4), so a module stays
-- while any run refers to it; purge removes the rest.
CREATE TABLE modules (
  hash       TEXT    PRIMARY KEY NOT NULL,
  kbc        BLOB    NOT NULL,
  created_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- runs: one row per run, its identity and where it stands.
--   id                 the run id
--   chain_id           shared by every run of one continue-as-new chain: the first run's id
--   workflow_id        the workflow of the module that runs
--   module_hash        the module the run is pinned to (modules.hash)
--   status             RUNNING, COMPENSATING, COMPLETED, FAILED, CANCELLED, TIMED_OUT,
--                      TERMINATED, CONTINUED_AS_NEW or BLOCKED (runtime.md section 2)
--   inputs             the run's inputs (JSON)
--   outputs            the outputs once COMPLETED, else NULL (JSON)
--   error              the error once FAILED, CANCELLED, TIMED_OUT or TERMINATED, or why it
--                      is BLOCKED, else NULL (JSON error object)
--   parent_run_id      for a child run, the parent's id; NULL for a top-level run
--   parent_command_id  for a child run, the parent's StartChild command id
--   attempt            1 for a run started normally; $.run.attempt
--   created_ms         when the run was created
--   updated_ms         when the row last changed
--   finished_ms        when it reached a final status (purge compares against this), or NULL
--   timeout_ms         when the workflow timeout expires, or NULL for none
--   last_seq           the seq of the run's last event, 0 before the first; appends use it
--                      to number events, readers to know the history's length cheaply
--   host               how the host that started the run resolves its activities, so that
--                      every process that drives it resolves them alike (JSON, or NULL when
--                      the starter gave nothing): {"base_directory": the absolute directory
--                      relative paths in the module's activity declarations resolve against,
--                      "bindings": [{"name", "implementation", "base_directory"}], the
--                      activities bound at start (`--bind`), each with the directory its
--                      relative paths resolve against}. Children, continue-as-new runs and
--                      retries of the chain inherit it. Added in version 2.
--   run_key            a small integer naming the run inside this store (one more than the
--                      largest in use, so 1, 2, 3, ... in creation order), so that per-step
--                      rows need not repeat the text id; events.id is built from it. A key
--                      freed by purge may be given again: its events went with its run.
--                      Added in version 3.
CREATE TABLE runs (
  id                TEXT    PRIMARY KEY NOT NULL,
  chain_id          TEXT    NOT NULL,
  workflow_id       TEXT    NOT NULL,
  module_hash       TEXT    NOT NULL REFERENCES modules (hash),
  status            TEXT    NOT NULL CHECK (status IN ('RUNNING', 'COMPENSATING', 'COMPLETED',
                      'FAILED', 'CANCELLED', 'TIMED_OUT', 'TERMINATED', 'CONTINUED_AS_NEW',
                      'BLOCKED')),
  inputs            TEXT    NOT NULL,
  outputs           TEXT,
  error             TEXT,
  parent_run_id     TEXT,
  parent_command_id INTEGER,
  attempt           INTEGER NOT NULL DEFAULT 1,
  created_ms        INTEGER NOT NULL,
  updated_ms        INTEGER NOT NULL,
  finished_ms       INTEGER,
  timeout_ms        INTEGER,
  last_seq          INTEGER NOT NULL DEFAULT 0,
  host              TEXT,
  run_key           INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- Numbering new runs (max + 1) and finding a run by its key.
CREATE UNIQUE INDEX runs_by_key ON runs (run_key);
-- `list --status S [--workflow W]`, newest first.
CREATE INDEX runs_by_status ON runs (status, workflow_id, created_ms);
-- `list --workflow W`.
CREATE INDEX runs_by_workflow ON runs (workflow_id, created_ms);
-- Following a continue-as-new chain to its last run.
CREATE INDEX runs_by_chain ON runs (chain_id, created_ms);
-- A parent's children (cancelling a parent cancels them).
CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
-- Purge: finished runs older than a time.
CREATE INDEX runs_by_finish ON runs (finished_ms) WHERE finished_ms IS NOT NULL;
-- Purge of modules no run refers to.
CREATE INDEX runs_by_module ON runs (module_hash);

-- sites: the step ids and source locations events name, each pair stored once, since the
-- events of one construct (a step's scheduled, started and completed events, and every
-- iteration of a loop) repeat the same pair.
--   id        the site's number, which events.site refers to
--   step_id   the step id of the construct, '' for the run itself
--   location  its source location as file:line, '' when there is none
-- Sites are kept when the runs that named them are purged: there is one per construct of
-- any module ever run, a few dozen bytes each.
CREATE TABLE sites (
  id       INTEGER PRIMARY KEY,
  step_id  TEXT    NOT NULL,
  location TEXT    NOT NULL,
  UNIQUE (step_id, location)
);

-- events: each run's history, the ordered list of everything that happened to it.
--   id          run_key * 2^32 + seq: the run (runs.run_key) and the event's place in its
--               history in one integer, so that a history is one contiguous range of the
--               table's own b-tree and a run's new events append to it; a rowid table
--               packs appended rows into full pages (an index b-tree, as a WITHOUT ROWID
--               table is, left them about 12% empty; bench/findings.md)
--   seq         id's low 32 bits (a virtual column, not stored): 1, 2, 3, ... per run,
--               without gaps
--   run_key     id's high bits (a virtual column, not stored)
--   type        the event type's number (runtime/include/kotoba/runtime/event_types.def)
--   time_ms     when it happened, by the engine's clock (virtual time under --clock virtual)
--   tx          the store transaction that wrote it (transaction_counter); events written
--               together share one tx, and a run's later events never have a smaller one, so
--               `state --at-tx` cuts a history at a commit by reading it in seq order
--   site        its step id and source location (sites.id)
--   command_id  NULL, or the value of the payload's first member "command_id", which the
--               payload column then leaves out (see payload)
--   payload     what the event carries (JSON; its fields are the engine's to define). When
--               command_id is NULL it is the payload's whole text. Otherwise the whole text
--               is `{"command_id":` and command_id in decimal, then `}` if the column holds
--               `{}`, else `,` and the column's text after its opening `{`. The store splits
--               the member off only when joining gives back exactly the same bytes.
--   hash        SHA-256 over the previous event's hash and this event's content (below)
-- hash is SHA-256 of, in order: the text "kotoba.event.v1", the previous event's hash (32
-- raw bytes; 32 zero bytes for seq 1), run_id (the text runs.id), seq, type, time_ms, tx,
-- step_id, location, payload (the whole text); each text as its byte length (64-bit
-- little-endian) followed by its bytes, each integer as 64-bit little-endian two's
-- complement. A run's history is thereby a hash chain: changing any byte of any event
-- changes its hash and breaks the link to the next one, which `kotoba-vm verify` reports.
-- The previous hash is not stored (version 2 had it as prev_hash): readers take it from the
-- event before, so the chain is checked by recomputing each hash in seq order.
CREATE TABLE events (
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

-- checkpoints: serialized VM states, so that resuming a run replays only later events.
--   run_id      the run (runs.id)
--   seq         the seq of the last event the state covers
--   state       the machine's state, as the engine serialized it (opaque here)
--   hash        SHA-256 of the text "kotoba.checkpoint.v1", prev_hash, run_id, seq, the
--               hash of the event at seq, and state (encoded as for events): a checkpoint
--               is thereby tied to the event chain at the point it covers
--   prev_hash   the previous checkpoint's hash, 32 zero bytes for the run's first one
--   created_ms  when it was written
-- Older checkpoints are pruned (the latest few are kept): any past state can be rebuilt by
-- replay, so the oldest kept checkpoint's prev_hash may name one that is gone.
CREATE TABLE checkpoints (
  run_id     TEXT    NOT NULL REFERENCES runs (id),
  seq        INTEGER NOT NULL,
  state      BLOB    NOT NULL,
  hash       BLOB    NOT NULL,
  prev_hash  BLOB    NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- timers: durable times at which the engine must wake a run.
--   run_id      the run (runs.id)
--   command_id  the command the timer belongs to (0 for the workflow timeout)
--   kind        timer           a StartTimer command: report TimerFired
--               wait_timeout    a wait's timeout: report WaitTimedOut
--               workflow_retry  the backoff before a failed run's next attempt (the run's
--                               workflow has a retry_policy): start the next run of its chain
--               workflow_timeout  the run's own timeout: report TimeoutReached
--   fire_ms     when it fires; never earlier, even if the wall clock jumps
--   created_ms  when it was armed
CREATE TABLE timers (
  run_id     TEXT    NOT NULL REFERENCES runs (id),
  command_id INTEGER NOT NULL,
  kind       TEXT    NOT NULL CHECK (kind IN ('timer', 'wait_timeout', 'workflow_retry',
                                              'workflow_timeout')),
  fire_ms    INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, command_id, kind)
) WITHOUT ROWID;
-- Due timers, and the next fire time the engine sleeps until.
CREATE INDEX timers_by_fire ON timers (fire_ms);

-- tasks: activity attempts ready to run or running.
--   run_id           the run (runs.id)
--   command_id       the ScheduleActivity command
--   step_id          the activity step's id
--   activity         the activity's name
--   input            the activity's input (JSON)
--   attempt          1, 2, ... (an ActivityFailed that retries schedules the next one)
--   due_ms           when the attempt may start (later than creation after a backoff)
--   idempotency_key  run id + step id + attempt, handed to the activity for de-duplication
--   owner            the worker running it, NULL while ready
--   lease_expiry_ms  while running, when the owner's claim lapses; NULL while ready
--   available_ms     when a worker may take the task: due_ms while ready, lease_expiry_ms
--                    while running (a crashed worker's task becomes available again)
--   created_ms       when it was written
CREATE TABLE tasks (
  run_id          TEXT    NOT NULL REFERENCES runs (id),
  command_id      INTEGER NOT NULL,
  step_id         TEXT    NOT NULL,
  activity        TEXT    NOT NULL,
  input           TEXT    NOT NULL,
  attempt         INTEGER NOT NULL,
  due_ms          INTEGER NOT NULL,
  idempotency_key TEXT    NOT NULL,
  owner           TEXT,
  lease_expiry_ms INTEGER,
  available_ms    INTEGER NOT NULL,
  created_ms      INTEGER NOT NULL,
  PRIMARY KEY (run_id, command_id)
) WITHOUT ROWID;
-- Tasks a worker may take now, and the next time one becomes available.
CREATE INDEX tasks_by_available ON tasks (available_ms);

-- inbox: messages addressed to one run that its engine has not yet taken into the history:
-- signals (buffered in arrival order, language.md section 5 wait), cancel and terminate
-- requests. Another process may write here while the run's owner works; the owner moves
-- each message into the history (SignalReceived, WorkflowCancelRequested, ...) and deletes
-- it in the same transaction, so a message is recorded exactly once.
--   id           arrival order across the whole store
--   run_id       the addressee (runs.id)
--   kind         signal, cancel or terminate
--   name         the signal's name, '' otherwise
--   payload      the signal's payload, or the request's details such as a reason (JSON)
--   received_ms  when it arrived
CREATE TABLE inbox (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id      TEXT    NOT NULL REFERENCES runs (id),
  kind        TEXT    NOT NULL CHECK (kind IN ('signal', 'cancel', 'terminate')),
  name        TEXT    NOT NULL,
  payload     TEXT    NOT NULL,
  received_ms INTEGER NOT NULL
);
-- A run's messages in arrival order.
CREATE INDEX inbox_by_run ON inbox (run_id, id);

-- published_events: events published to the whole engine (`kotoba-vm emit`), which waits
-- of any run may consume (language.md section 5 wait).
--   id            publication order across the whole store
--   type          the event type a wait names (event_type), not a history event type
--   payload       the event's payload (JSON); a wait's filter compares its fields
--   published_ms  when it was published
CREATE TABLE published_events (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  type         TEXT    NOT NULL,
  payload      TEXT    NOT NULL,
  published_ms INTEGER NOT NULL
);
-- The oldest events of a type published after a time.
CREATE INDEX published_events_by_type ON published_events (type, published_ms, id);

-- event_consumptions: which run consumed which published event. A run consumes an event
-- at most once; other runs may consume the same event too.
--   run_id              the consuming run (runs.id)
--   published_event_id  the event (published_events.id)
--   consumed_ms         when
CREATE TABLE event_consumptions (
  run_id             TEXT    NOT NULL REFERENCES runs (id),
  published_event_id INTEGER NOT NULL REFERENCES published_events (id),
  consumed_ms        INTEGER NOT NULL,
  PRIMARY KEY (run_id, published_event_id)
) WITHOUT ROWID;
-- Purging published events finds their consumptions.
CREATE INDEX event_consumptions_by_event ON event_consumptions (published_event_id);

-- leases: which engine process works on a run (runtime.md section 6). A process acquires a
-- run's lease when no row exists or the row has expired, renews it while it works, and
-- releases it when done; every write it makes for the run checks it still holds it, so two
-- processes never both execute the same step. No reference to runs: a lease is taken
-- before the run row is written.
--   run_id     the run
--   owner      the holding process's id
--   expiry_ms  when the lease lapses unless renewed
CREATE TABLE leases (
  run_id    TEXT    PRIMARY KEY NOT NULL,
  owner     TEXT    NOT NULL,
  expiry_ms INTEGER NOT NULL
) WITHOUT ROWID;
-- Finding expired leases to take over.
CREATE INDEX leases_by_expiry ON leases (expiry_ms);

-- transaction_counter: the source of `tx` ids. One row; each store transaction that writes
-- events takes the next number, so tx ids grow with commit order across the whole store.
--   only     always 1
--   last_tx  the last tx id handed out
CREATE TABLE transaction_counter (
  only    INTEGER PRIMARY KEY CHECK (only = 1),
  last_tx INTEGER NOT NULL
);
INSERT INTO transaction_counter (only, last_tx) VALUES (1, 0);

PRAGMA user_version = 3;
