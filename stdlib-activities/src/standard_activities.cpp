// Installing the standard activity types in a registry.
#include "kotoba/stdlib/standard_activities.h"

#include "curl_transfer.h"

namespace kotoba::stdlib {

void registerStandardActivities(runtime::ActivityRegistry &registry) {
  detail::initCurlOnce();
  registry.registerFactory("sql", sqlActivityFactory());
  registry.registerFactory("http", httpActivityFactory());
  registry.registerFactory("webhook", webhookActivityFactory());
  registry.registerFactory("email", emailActivityFactory());
}

} // namespace kotoba::stdlib
