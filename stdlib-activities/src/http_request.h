// One HTTP request through libcurl, shared by the http and webhook activities: sending it
// (cancellable, with a cap on the body it reads), and turning what came back, or did not,
// into a response or an error with the retry rules of docs/activities.md:
//   - no answer (refused, reset, unresolvable): ConnectionError, retryable;
//   - the request's own timeout: HttpTimeout, retryable;
//   - a status the activity does not accept: HttpError, retryable for 5xx and 429 only,
//     with the status (and the start of the body) in details, and `retry_after_ms` from a
//     Retry-After header, which the engine's retry scheduling honours;
//   - a certificate the client does not trust: ConnectionError, not retryable;
//   - a body larger than the payload limit: PayloadTooLarge, not retryable.
#pragma once

#include "kotoba/runtime/activity.h"
#include "kotoba/vm/error.h"
#include "kotoba/vm/value.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kotoba::stdlib::detail {

// Accepted statuses: [low, high], "2xx" being [200, 299].
struct StatusRange {
  int64_t low = 200;
  int64_t high = 299;
};

struct HttpRequest {
  std::string method; // upper case
  std::string url;    // query included
  // "Name: value" lines; "Name:" removes a header libcurl would send.
  std::vector<std::string> headerLines;
  std::optional<std::string> body;
  // Empty means 2xx.
  std::vector<StatusRange> accepted;
  std::optional<int64_t> timeoutMs;
  bool followRedirects = false;
  // A PEM file of the CAs to trust for https instead of the system's; absolute.
  std::optional<std::string> caFile;
};

struct HttpResponse {
  int64_t status = 0;
  // "HTTP/1.1 404 Not Found", without the line break.
  std::string statusLine;
  // Names in lower case; a repeated header's values joined with ", ".
  Object headers;
  std::string body;
};

// Sends `request`. Errors are transport failures only; any status is a response.
[[nodiscard]] Result<HttpResponse> sendHttpRequest(const HttpRequest &request,
                                                   runtime::ActivityContext &context);

[[nodiscard]] bool acceptsStatus(const HttpRequest &request, int64_t status);

// The HttpError for a response whose status is not accepted.
[[nodiscard]] WorkflowError statusError(const HttpRequest &request, const HttpResponse &response);

// The body as a value: parsed when the Content-Type is JSON (application/json or
// application/...+json), else the text; null when empty. A body that claims JSON but is
// not, or that is not UTF-8 text, is an InvalidPayload error (the message names
// `response_body: "base64"`, which returns any bytes).

// A Retry-After header (RFC 9110 section 10.2.3) as milliseconds from `nowSeconds` (Unix
// time): delay seconds, or an HTTP date (IMF-fixdate, as servers must send it); nullopt when
// it is neither. A date in the past is 0.
[[nodiscard]] std::optional<int64_t> parseRetryAfterMs(std::string_view header, int64_t nowSeconds);
[[nodiscard]] Result<Value> responseBodyValue(const HttpRequest &request,
                                              const HttpResponse &response);

} // namespace kotoba::stdlib::detail
