// The standard activity types a workflow can declare without writing C++ (language.md
// section 6): `sql`, `http`, `webhook` and `email`. The runtime knows these type names but
// only runs `function` and `process` by itself; registerStandardActivities installs the
// factories of this library in a registry, replacing the runtime's placeholders (which fail
// with ActivityUnavailable). docs/activities.md describes each type's fields, results and
// errors.
#pragma once

#include "kotoba/runtime/activity_registry.h"

#include <string_view>

namespace kotoba::stdlib {

// The error types the standard activities raise, besides the runtime's
// (InvalidImplementation, InvalidInput, ActivityTimeout, ActivityCancelled, PayloadTooLarge,
// InvalidPayload).
namespace stdlib_errors {
// The database is locked by another connection past the busy timeout. Retryable.
inline constexpr std::string_view SqlBusy = "SqlBusy";
// A statement broke a UNIQUE, NOT NULL, CHECK, FOREIGN KEY or PRIMARY KEY constraint. Not
// retryable: the same statement on the same data fails again.
inline constexpr std::string_view SqlConstraint = "SqlConstraint";
// Any other SQLite failure: a syntax error, a missing table, a database that cannot be
// opened. Retryable only for I/O errors and a full disk.
inline constexpr std::string_view SqlError = "SqlError";
// The server answered with a status the activity does not accept. Retryable for 5xx and
// 429, not for the rest.
inline constexpr std::string_view HttpError = "HttpError";
// The request did not finish within its own `timeout`. Retryable.
inline constexpr std::string_view HttpTimeout = "HttpTimeout";
// No answer could be had: connection refused, reset, name not resolved, TLS failure.
// Retryable, except for a certificate the client refuses.
inline constexpr std::string_view ConnectionError = "ConnectionError";
// The SMTP server refused the message or the login. Retryable for 4xx replies.
inline constexpr std::string_view SmtpError = "SmtpError";
} // namespace stdlib_errors

// Registers the `sql`, `http`, `webhook` and `email` factories in `registry`. Call it before
// binding implementations (`--bind NAME=http:URL` needs the http factory). Also initialises
// libcurl once for the process.
void registerStandardActivities(runtime::ActivityRegistry &registry);

// The factories, for hosts that want only some of the types.
[[nodiscard]] runtime::ActivityFactory sqlActivityFactory();
[[nodiscard]] runtime::ActivityFactory httpActivityFactory();
[[nodiscard]] runtime::ActivityFactory webhookActivityFactory();
[[nodiscard]] runtime::ActivityFactory emailActivityFactory();

} // namespace kotoba::stdlib
