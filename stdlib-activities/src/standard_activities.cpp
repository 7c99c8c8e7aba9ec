// Installing the standard activity types in a registry.
#include "kotoba/stdlib/standard_activities.h"

namespace kotoba::stdlib {

void registerStandardActivities(runtime::ActivityRegistry &registry) {
  registry.registerFactory("sql", sqlActivityFactory());
}

} // namespace kotoba::stdlib
