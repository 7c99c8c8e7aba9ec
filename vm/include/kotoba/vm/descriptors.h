// Descriptors: the constants that tell a command or a path instruction what to do (which
// activity, which step id, which timeout, which completion rule). They live in the constant
// pool as ordinary object Values, so they are serialized, de-duplicated and disassembled like
// any other constant; this header gives each shape a struct, an encoder for the code
// generator (toValue) and a strict decoder for the verifier and the VM (decode*).
//
// Decoders reject anything the encoder would not have written: a missing or unknown key, a
// value of the wrong kind, a number out of range. Once the verifier has accepted a module,
// decoding its descriptors cannot fail, so the VM may treat a failure as a bug.
// docs/bytecode.md lists every shape with an example.
#pragma once

#include "kotoba/vm/module.h"
#include "kotoba/vm/value.h"

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace kotoba::vm {

// A decoded descriptor or the reason the value is not one ("'timeout_ms' must be a positive
// integer, found string \"PT5S\"").
template <typename T> class [[nodiscard]] Decoded {
public:
  Decoded(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  static Decoded failure(std::string message) {
    return Decoded(std::in_place_index<1>, std::move(message));
  }

  [[nodiscard]] bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  [[nodiscard]] const T &value() const & {
    assert(ok() && "value() of a failed decode; check ok() first");
    return std::get<0>(state_);
  }
  [[nodiscard]] T &&value() && {
    assert(ok() && "value() of a failed decode; check ok() first");
    return std::get<0>(std::move(state_));
  }
  [[nodiscard]] const T *operator->() const { return &value(); }
  [[nodiscard]] const std::string &error() const {
    assert(!ok() && "error() of a successful decode");
    return std::get<1>(state_);
  }

private:
  template <size_t Index, typename Arg>
  Decoded(std::in_place_index_t<Index> index, Arg &&arg) : state_(index, std::forward<Arg>(arg)) {}
  std::variant<T, std::string> state_;
};

// ---- Paths -------------------------------------------------------------------------------

// One step of a path. Encoded as: a string (member), an integer (index, negative from the
// end), null (the `[*]` projection), or {"dynamic": i} (the i-th dynamic index, counted from
// 0 in path order, whose value is in register D + i of the PATH instruction).
struct PathSegment {
  enum class Kind : uint8_t { Member, Index, Project, Dynamic };
  Kind kind = Kind::Member;
  std::string member; // Member
  int64_t index = 0;  // Index: the index; Dynamic: which dynamic index
  friend bool operator==(const PathSegment &, const PathSegment &) = default;
};

// {"path": "$.inputs.items[*].sku", "segments": ["items", null, "sku"]}
struct PathDescriptor {
  // The full path as written, for PathError messages.
  std::string text;
  std::vector<PathSegment> segments;

  [[nodiscard]] uint32_t dynamicCount() const;
  [[nodiscard]] Value toValue() const;
};
[[nodiscard]] Decoded<PathDescriptor> decodePath(const Value &value);

// ---- Retry policies ----------------------------------------------------------------------

// Retry policies (in activity calls, activity declarations and workflows) are stored in
// retry.h's resolved form, {"initial_interval_ms": 1000, "backoff_coefficient": 2.0,
// "maximum_interval_ms": 100000, "maximum_attempts": 3 | null, "non_retryable_errors": [],
// "jitter": 0.0}, written by retryPolicyToValue and read by retryPolicyFromValue. This is
// the verifier's check: the reason the value is not such a policy, or nullopt.
[[nodiscard]] std::optional<std::string> checkRetryPolicy(const Value &value);

// ---- Commands ----------------------------------------------------------------------------

// ACTIVITY. The compiler resolves the policies (call site over declaration over defaults),
// so the VM needs nothing but this.
// {"activity": "charge", "step": "pay", "timeout_ms": 300000, "schedule_to_close_ms": null,
//  "retry": {...retry policy...}}
struct ActivityCallDescriptor {
  std::string activity;
  std::string step;
  int64_t timeoutMs = 0;
  std::optional<int64_t> scheduleToCloseMs;
  Value retry;

  [[nodiscard]] Value toValue() const;
};
[[nodiscard]] Decoded<ActivityCallDescriptor> decodeActivityCall(const Value &value);

// TIMER and TIMERUNTIL: {"step": "cool_down"}
struct TimerDescriptor {
  std::string step;
  [[nodiscard]] Value toValue() const;
};
[[nodiscard]] Decoded<TimerDescriptor> decodeTimer(const Value &value);

// WAITSIGNAL: {"signal": "approve", "step": "approval", "timeout_ms": 86400000 | null}
struct SignalDescriptor {
  std::string signal;
  std::string step;
  std::optional<int64_t> timeoutMs;
  [[nodiscard]] Value toValue() const;
};
[[nodiscard]] Decoded<SignalDescriptor> decodeSignal(const Value &value);

// WAITEVENT: {"event": "review_completed", "step": "review", "timeout_ms": null}
struct EventDescriptor {
  std::string event;
  std::string step;
  std::optional<int64_t> timeoutMs;
  [[nodiscard]] Value toValue() const;
};
[[nodiscard]] Decoded<EventDescriptor> decodeEvent(const Value &value);

// CHILD: {"workflow": "charge_card", "step": "charge_card", "timeout_ms": null}
struct ChildDescriptor {
  std::string workflow;
  std::string step;
  std::optional<int64_t> timeoutMs;
  [[nodiscard]] Value toValue() const;
};
[[nodiscard]] Decoded<ChildDescriptor> decodeChild(const Value &value);

// DECIDED: {"step": "route", "branch": 0}; branch is the index of the condition that held,
// or null for the default branch.
struct DecisionDescriptor {
  std::string step;
  std::optional<uint32_t> branch;
  [[nodiscard]] Value toValue() const;
};
[[nodiscard]] Decoded<DecisionDescriptor> decodeDecision(const Value &value);

// ---- Fibers ------------------------------------------------------------------------------

enum class ParallelMode : uint8_t { All, Any, AtLeast, AllSettled };
[[nodiscard]] std::string_view parallelModeName(ParallelMode mode);

// PARALLEL: {"mode": "all"} or {"mode": "at_least", "count": 2}; `count` appears exactly
// when the mode is at_least, and is at least 1 (the verifier also checks it does not exceed
// the number of branches).
struct ParallelDescriptor {
  ParallelMode mode = ParallelMode::All;
  uint32_t count = 0;
  [[nodiscard]] Value toValue() const;
};
[[nodiscard]] Decoded<ParallelDescriptor> decodeParallel(const Value &value);

enum class ForeachMode : uint8_t { All, AllSettled };
[[nodiscard]] std::string_view foreachModeName(ForeachMode mode);

// FOREACH: {"mode": "all", "max_concurrency": 1, "item": 4, "index": 5}; item and index are
// the registers the iteration fiber finds the element and its index in.
struct ForeachDescriptor {
  ForeachMode mode = ForeachMode::All;
  uint32_t maxConcurrency = 1;
  Reg item;
  Reg index;
  [[nodiscard]] Value toValue() const;
};
[[nodiscard]] Decoded<ForeachDescriptor> decodeForeach(const Value &value);

// ---- Sagas and try -----------------------------------------------------------------------

enum class CompensationPolicy : uint8_t { Reverse, Parallel };
enum class CompensationFailureMode : uint8_t { Continue, Stop };
[[nodiscard]] std::string_view compensationPolicyName(CompensationPolicy policy);
[[nodiscard]] std::string_view compensationFailureModeName(CompensationFailureMode mode);

// SAGAPUSH: {"policy": "reverse", "on_failure": "continue"}
struct SagaDescriptor {
  CompensationPolicy policy = CompensationPolicy::Reverse;
  CompensationFailureMode onFailure = CompensationFailureMode::Continue;
  [[nodiscard]] Value toValue() const;
};
[[nodiscard]] Decoded<SagaDescriptor> decodeSaga(const Value &value);

// COMPREG: {"step": "cancel_payment"}: the step id the compensation's events carry.
struct CompensationDescriptor {
  std::string step;
  [[nodiscard]] Value toValue() const;
};
[[nodiscard]] Decoded<CompensationDescriptor> decodeCompensation(const Value &value);

// TRYPUSH: ["PaymentDeclined", "WaitTimeout"] or ["*"]; non-empty, no empty names.
// A list that also holds kAttemptedRegionMarker is the region around a step with
// `compensate_on: "attempted"`: its handler registers the compensation and re-raises, and it
// runs for cancellation and the workflow timeout too, which no other try sees. The checker
// refuses error types starting with '!', so no workflow can write the marker itself.
inline constexpr std::string_view kAttemptedRegionMarker = "!attempted";
[[nodiscard]] Value errorTypesToValue(const std::vector<std::string> &types);
[[nodiscard]] Decoded<std::vector<std::string>> decodeErrorTypes(const Value &value);

} // namespace kotoba::vm
