// The file `kotoba-vm export RUN` writes and `kotoba-vm replay FILE` reads: one JSON object
// holding a run's row, its whole history (every event with its hash-chain links) and the
// module it runs, so that the history can be checked against a changed workflow anywhere,
// without the store (docs/durability.md, "Export format"):
//
//   {"kotoba_export": 1,
//    "run": {"run_id", "workflow_id", "chain_id", "parent_run_id", "parent_command_id",
//            "attempt", "created_ms", "status", "inputs", "outputs", "error", "last_seq"},
//    "module_hash": "<64 hex>", "module_kbc_hex": "<the .kbc bytes in hex>",
//    "events": [{"seq", "type", "type_number", "time_ms", "tx", "step_id", "location",
//                "payload", "hash", "prev_hash"}, ...]}
#pragma once

#include "cli_support.h"

#include "kotoba/runtime/store.h"
#include "kotoba/vm/module.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kotoba::cli {

// Raised when the layout changes; readExport refuses other numbers.
inline constexpr int64_t kExportFormat = 1;

struct ExportedRun {
  runtime::RunRecord run;
  std::string moduleHash;
  std::vector<uint8_t> moduleBytes;
  std::vector<runtime::EventRecord> events;
};

// Reads the run, its history and its module from the store, in one snapshot. A run that is
// not there is a usage failure; a module the store lacks is a store failure.
[[nodiscard]] CliResult<ExportedRun> readRunForExport(runtime::Store &store,
                                                      const std::string &runId);

[[nodiscard]] Value exportValue(const ExportedRun &exported);

// Reads an export file back. Refused as a usage failure: a file that is not such JSON (the
// message names the field), another format number. Refused as a store failure (exit 4): a
// history whose hash chain does not hold, or module bytes that do not match the module hash
// or do not load.
[[nodiscard]] CliResult<ExportedRun> readExport(const std::string &path);

// The module of an export or a store row: loaded and verified, its hash checked.
[[nodiscard]] CliResult<std::shared_ptr<const vm::Module>>
loadStoredModule(const std::vector<uint8_t> &bytes, const std::string &expectedHash,
                 const std::string &where);

// The hash a module gets when stored (Engine::addModule computes it the same way).
[[nodiscard]] std::string moduleHashOf(const vm::Module &module);

} // namespace kotoba::cli
