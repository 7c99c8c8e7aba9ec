// The builtin functions: their table (generated from builtins.def), lookup by name and by
// persisted id, and the one entry point that calls them. The compiler uses the table to
// check calls and fold pure ones; the VM's CALL instruction uses callBuiltin with a context
// that supplies the logical time and the run's uuid counter, so nothing here reads a clock.
#pragma once

#include "kotoba/vm/error.h"
#include "kotoba/vm/value.h"

#include <llvm/ADT/ArrayRef.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kotoba {

enum class BuiltinId : uint16_t {
#define BUILTIN(Enumerator, Name, Id, MinArgs, MaxArgs, Pure) Enumerator = Id,
#include "kotoba/vm/builtins.def"
};

// max_args of a function that takes any number of arguments from min_args up.
inline constexpr int kVariadic = -1;

struct BuiltinInfo {
  BuiltinId id;
  const char *name;
  int minArgs;
  int maxArgs; // kVariadic when unbounded
  bool pure;

  [[nodiscard]] bool acceptsArgCount(size_t count) const {
    return count >= static_cast<size_t>(minArgs) &&
           (maxArgs == kVariadic || count <= static_cast<size_t>(maxArgs));
  }
};

// Every builtin, in id order.
[[nodiscard]] llvm::ArrayRef<BuiltinInfo> allBuiltins();
[[nodiscard]] const BuiltinInfo &builtinInfo(BuiltinId id);
// nullptr for an unknown name or id (an id read from a file must be checked with this).
[[nodiscard]] const BuiltinInfo *findBuiltin(std::string_view name);
[[nodiscard]] const BuiltinInfo *findBuiltinById(uint32_t rawId);
// The known name closest to a misspelled one, for "did you mean" hints; nullopt when
// nothing is close enough to be a plausible typo.
[[nodiscard]] std::optional<std::string_view> closestBuiltinName(std::string_view name);
// "takes 1 argument", "takes 2 or 3 arguments", "takes at least 2 arguments".
[[nodiscard]] std::string describeArity(const BuiltinInfo &info);

// What now() and uuid() read. The VM implements it over the run's state; the values must be
// identical on replay, so they come from history (the time of the event being processed,
// a counter persisted with the run), never from a clock or a random source.
class BuiltinContext {
public:
  virtual ~BuiltinContext() = default;
  // Milliseconds since the Unix epoch, UTC, of the event being processed.
  [[nodiscard]] virtual int64_t logicalTimeMs() const = 0;
  [[nodiscard]] virtual std::string_view runId() const = 0;
  // The run's uuid counter: returns 0 on the first call of the run, then 1, 2, ...
  virtual uint64_t nextUuidSequence() = 0;
};

// Calls a builtin. The argument count is checked again here (the compiler checks it first),
// so a bad count is an ExpressionError, not undefined behaviour. `context` may be null only
// for pure functions; the constant folder passes null and must not call now() or uuid().
[[nodiscard]] Result<Value> callBuiltin(BuiltinId id, llvm::ArrayRef<Value> args,
                                        BuiltinContext *context);

// The text now() returns: RFC 3339, UTC, always with milliseconds and a `Z`, such as
// `2026-12-04T15:56:05.123Z`. Times outside the years 0000-9999 have no such spelling and are
// an ExpressionError.
[[nodiscard]] Result<std::string> formatTimestampMs(int64_t unixMs);

// The uuid() for one run and counter value: the first 16 bytes of SHA-256 over a domain tag,
// the run id and the counter, with the RFC 9562 version 8 ("custom") and variant bits set,
// printed in the usual 8-4-4-4-12 lowercase form.
[[nodiscard]] std::string deterministicUuid(std::string_view runId, uint64_t sequence);

} // namespace kotoba
