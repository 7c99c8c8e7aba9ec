// The consistency half of restoring a machine snapshot (machine_snapshot.cpp decodes the
// fields): every reference between the parts of a decoded state, and from them into the
// module, is checked before the state becomes a machine. Only references are checked, not
// reachability: a state whose every index is in range but which the code could never have
// produced (a pc paired with the wrong handler stack) passes. The runtime guards against
// those by the checkpoint's hash, which ties its bytes to the history it covers.
#include "machine_snapshot.h"

#include <fmt/format.h>

namespace kotoba::vm {

namespace {

// The references between the decoded parts and into the module; the first that does not
// hold, or nothing. These are the facts the machine's lookups rely on (fibers.at, scopes.at,
// registers[i], blocks[b].code[pc], the descriptors its asserts decode).
class Consistency {
public:
  explicit Consistency(const MachineState &state)
      : state_(state), workflow_(state.workflow()), module_(*state.module) {}

  [[nodiscard]] std::optional<std::string> check() {
    for (const auto &[id, scope] : state_.scopes) {
      if (id >= state_.nextScope) {
        return fmt::format("scope {} is not below next_scope {}", id, state_.nextScope);
      }
      // Parents are always older than their children, which also rules out cycles.
      if (scope.parent && (*scope.parent >= id || !state_.scopes.contains(*scope.parent))) {
        return fmt::format("scope {} has parent {}, which is not an older scope", id,
                           *scope.parent);
      }
    }
    if (!state_.fibers.empty() && !state_.scopes.contains(0)) {
      return std::string("the run's scope 0 is missing");
    }
    for (const auto &[id, fiber] : state_.fibers) {
      if (auto problem = checkFiber(fiber)) {
        return fmt::format("fiber {}: {}", id, *problem);
      }
    }
    for (FiberId id : state_.ready) {
      auto fiber = state_.fibers.find(id);
      if (fiber == state_.fibers.end() || fiber->second.state != FiberState::Ready) {
        return fmt::format("fiber {} is in the ready set but is not a ready fiber", id);
      }
    }
    for (const auto &[id, join] : state_.joins) {
      if (auto problem = checkJoin(id, join)) {
        return fmt::format("join {}: {}", id, *problem);
      }
    }
    for (const auto &[id, waiting] : state_.pending) {
      if (auto problem = checkPending(id, waiting)) {
        return fmt::format("pending command {}: {}", id, *problem);
      }
    }
    return std::nullopt;
  }

private:
  [[nodiscard]] bool isRegister(uint32_t index) const { return index < workflow_.registerCount; }
  [[nodiscard]] bool isBlock(uint32_t index) const { return index < workflow_.blocks.size(); }
  [[nodiscard]] bool isLocation(const SourceLocation &at) const {
    return at.line == 0 || at.file.index < module_.sourceFiles.size();
  }

  [[nodiscard]] std::optional<std::string>
  checkRecords(const std::vector<CompensationRecord> &records) const {
    for (const CompensationRecord &record : records) {
      if (!isBlock(record.block) ||
          workflow_.blocks[record.block].kind != BlockKind::Compensation) {
        return fmt::format("compensation block {} is not a compensation block of the workflow",
                           record.block);
      }
      if (record.registers.size() != workflow_.registerCount) {
        return fmt::format("a compensation captured {} registers, the workflow has {}",
                           record.registers.size(), workflow_.registerCount);
      }
      if (!state_.scopes.contains(record.scope)) {
        return fmt::format("a compensation names scope {}, which does not exist", record.scope);
      }
      if (!isLocation(record.location)) {
        return std::string("a compensation's location names no source file of the module");
      }
    }
    return std::nullopt;
  }

  [[nodiscard]] std::optional<std::string> checkFrame(const Frame &frame,
                                                      const Block &block) const {
    if (frame.handler >= block.code.size()) {
      return fmt::format("a handler at {} is past its block's {} instructions", frame.handler,
                         block.code.size());
    }
    if (!isRegister(frame.errorRegister)) {
      return fmt::format("a frame's error register {} does not exist", frame.errorRegister);
    }
    if (frame.descriptor >= module_.constants.size()) {
      return fmt::format("a frame's descriptor {} is not a constant", frame.descriptor);
    }
    const Value &descriptor = module_.constants[frame.descriptor];
    bool decodes = frame.kind == Frame::Kind::Try ? decodeErrorTypes(descriptor).ok()
                                                  : decodeSaga(descriptor).ok();
    if (!decodes) {
      return fmt::format("constant {} is not a {} descriptor", frame.descriptor,
                         frame.kind == Frame::Kind::Try ? "try" : "saga");
    }
    return checkRecords(frame.compensations);
  }

  [[nodiscard]] std::optional<std::string> checkFiber(const Fiber &fiber) const {
    if (fiber.id >= state_.nextFiber) {
      return fmt::format("its id is not below next_fiber {}", state_.nextFiber);
    }
    if (!isBlock(fiber.block)) {
      return fmt::format("block {} does not exist", fiber.block);
    }
    const Block &block = workflow_.blocks[fiber.block];
    if (fiber.pc >= block.code.size()) {
      return fmt::format("pc {} is past its block's {} instructions", fiber.pc, block.code.size());
    }
    if (!state_.scopes.contains(fiber.scope)) {
      return fmt::format("scope {} does not exist", fiber.scope);
    }
    bool live = fiber.state == FiberState::Ready || fiber.state == FiberState::WaitingCommand ||
                fiber.state == FiberState::WaitingJoin;
    if (live ? fiber.registers.size() != workflow_.registerCount : fiber.registers.empty()) {
      return fmt::format("it has {} registers, the workflow has {}", fiber.registers.size(),
                         workflow_.registerCount);
    }
    if (fiber.state == FiberState::WaitingCommand && !isRegister(fiber.resultRegister)) {
      return fmt::format("result register {} does not exist", fiber.resultRegister);
    }
    for (const Frame &frame : fiber.frames) {
      if (auto problem = checkFrame(frame, block)) {
        return problem;
      }
    }
    if (fiber.state == FiberState::WaitingCommand) {
      auto waiting = state_.pending.find(fiber.command);
      if (waiting == state_.pending.end() || waiting->second.fiber != fiber.id) {
        return fmt::format("it waits on command {}, which is not pending for it", fiber.command);
      }
    }
    if (fiber.state == FiberState::WaitingJoin) {
      auto join = state_.joins.find(fiber.join);
      if (join == state_.joins.end() || join->second.owner != fiber.id) {
        return fmt::format("it waits on join {}, which it does not own", fiber.join);
      }
    }
    // A fiber is always younger than the one that started it, which rules out the cycles
    // the walks up the spawner chain (innermostSaga, runsCompensationCode) could not end.
    if (fiber.spawner && *fiber.spawner >= fiber.id) {
      return fmt::format("spawner {} is not an older fiber", *fiber.spawner);
    }
    if (fiber.handlerDepth && *fiber.handlerDepth > fiber.frames.size()) {
      return fmt::format("handler depth {} is past its {} frames", *fiber.handlerDepth,
                         fiber.frames.size());
    }
    if (fiber.cancelAfterHandler && !fiber.inSagaHandler()) {
      return std::string("it is cancelled after a saga handler it does not run");
    }
    if (fiber.memberOf) {
      auto join = state_.joins.find(*fiber.memberOf);
      if (join != state_.joins.end() && fiber.slot >= join->second.slots.size()) {
        return fmt::format("slot {} is past join {}'s {} slots", fiber.slot, *fiber.memberOf,
                           join->second.slots.size());
      }
    }
    return std::nullopt;
  }

  [[nodiscard]] std::optional<std::string> checkJoin(uint32_t id, const Join &join) const {
    if (id >= state_.nextJoin) {
      return fmt::format("its id is not below next_join {}", state_.nextJoin);
    }
    if (!state_.fibers.contains(join.owner)) {
      return fmt::format("owner fiber {} does not exist", join.owner);
    }
    if (!isRegister(join.targetRegister)) {
      return fmt::format("target register {} does not exist", join.targetRegister);
    }
    if (!isLocation(join.location)) {
      return std::string("its location names no source file of the module");
    }
    for (const Slot &slot : join.slots) {
      if (slot.state == SlotState::Failed && !slot.error) {
        return std::string("a failed slot has no error");
      }
    }
    switch (join.kind) {
    case JoinKind::Parallel:
      return std::nullopt;
    case JoinKind::Foreach:
      if (!join.items.isArray() || join.items.asArray().size() != join.slots.size()) {
        return fmt::format("its items are not an array of its {} slots", join.slots.size());
      }
      if (!isBlock(join.block) || !isRegister(join.itemRegister) ||
          !isRegister(join.indexRegister)) {
        return std::string("its body block or item registers do not exist");
      }
      return std::nullopt;
    case JoinKind::Compensation:
      if (join.records.size() != join.slots.size()) {
        return fmt::format("it has {} records for {} slots", join.records.size(),
                           join.slots.size());
      }
      return checkRecords(join.records);
    }
    return std::nullopt;
  }

  [[nodiscard]] std::optional<std::string> checkPending(CommandId id,
                                                        const PendingCommand &waiting) const {
    if (id >= state_.nextCommand) {
      return fmt::format("its id is not below next_command {}", state_.nextCommand);
    }
    auto fiber = state_.fibers.find(waiting.fiber);
    if (fiber == state_.fibers.end() || fiber->second.state != FiberState::WaitingCommand ||
        fiber->second.command != id) {
      return fmt::format("fiber {} does not wait on it", waiting.fiber);
    }
    if (!isLocation(waiting.command.location)) {
      return std::string("its location names no source file of the module");
    }
    return std::nullopt;
  }

  const MachineState &state_;
  const Workflow &workflow_;
  const Module &module_;
};

} // namespace

std::optional<std::string> checkSnapshotState(const MachineState &state) {
  return Consistency(state).check();
}

} // namespace kotoba::vm
