// Row conversions shared by the store's read and write files: the column lists of
// store_reads.cpp turned back into records. Private to runtime/src.
#pragma once

#include "store_connection.h"

#include "kotoba/runtime/store_types.h"

#include <string_view>

namespace kotoba::runtime::detail {

// The columns of KOTOBA_RUN_COLUMNS / KOTOBA_TASK_COLUMNS / the timer reads, in order.
[[nodiscard]] StoreResult<RunRecord> readRunRow(const Operation &operation, const Statement &row);
[[nodiscard]] StoreResult<TaskRecord> readTaskRow(const Operation &operation, const Statement &row);
[[nodiscard]] StoreResult<TimerRecord> readTimerRow(const Operation &operation,
                                                    const Statement &row);
// False when `bytes` is not exactly a hash's 32 bytes.
[[nodiscard]] bool copyHash(std::string_view bytes, Hash &hash);

} // namespace kotoba::runtime::detail
