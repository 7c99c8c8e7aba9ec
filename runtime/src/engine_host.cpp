// The engine calls a host needs to write its own driving loop (kotoba/kotoba.h does): the
// wait between steps. Kept apart from engine.cpp, whose loops use the same wait internally.
#include "engine_internal.h"

namespace kotoba::runtime {

bool Engine::waitForWork(bool stopWhenOnlyExternal) {
  return impl_->waitForWork(stopWhenOnlyExternal);
}

} // namespace kotoba::runtime
