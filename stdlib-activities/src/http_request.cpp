// Sending one HTTP request with libcurl and classifying the outcome (http_request.h).
#include "http_request.h"

#include "curl_transfer.h"

#include "kotoba/stdlib/standard_activities.h"
#include "kotoba/vm/duration.h"
#include "kotoba/vm/json.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

namespace kotoba::stdlib::detail {

namespace {

// How much of a refused response's body goes into the error's details: enough for an API's
// error object, not a whole HTML page.
constexpr size_t kErrorBodyBytes = 4096;

std::string lowerCase(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return lower;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                           text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

struct Receiver {
  HttpResponse response;
  size_t limitBytes = 0;
  bool tooLarge = false;
};

size_t receiveBody(char *data, size_t size, size_t count, void *user) {
  auto *receiver = static_cast<Receiver *>(user);
  size_t bytes = size * count;
  if (receiver->response.body.size() + bytes > receiver->limitBytes) {
    receiver->tooLarge = true;
    return 0; // anything but `bytes` makes libcurl abort with CURLE_WRITE_ERROR
  }
  receiver->response.body.append(data, bytes);
  return bytes;
}

size_t receiveHeader(char *data, size_t size, size_t count, void *user) {
  auto *receiver = static_cast<Receiver *>(user);
  size_t bytes = size * count;
  std::string_view line = trim(std::string_view(data, bytes));
  if (line.starts_with("HTTP/")) {
    // A new response begins (after a 100 Continue or a redirect): only the last one counts.
    receiver->response.statusLine = std::string(line);
    receiver->response.headers = Object();
    return bytes;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return bytes;
  }
  std::string name = lowerCase(trim(line.substr(0, colon)));
  std::string value(trim(line.substr(colon + 1)));
  if (const Value *earlier = receiver->response.headers.find(name);
      earlier != nullptr && earlier->isString()) {
    value = earlier->asString() + ", " + value;
  }
  receiver->response.headers.set(std::move(name), Value(std::move(value)));
  return bytes;
}

bool isJsonMediaType(std::string_view contentType) {
  std::string media = lowerCase(trim(contentType.substr(0, contentType.find(';'))));
  return media == "application/json" ||
         (media.starts_with("application/") && media.ends_with("+json"));
}

std::string contentTypeOf(const HttpResponse &response) {
  const Value *type = response.headers.find("content-type");
  return type != nullptr && type->isString() ? type->asString() : std::string();
}

// "POST http://127.0.0.1:8080/orders", the request as messages name it.
std::string requestName(const HttpRequest &request) {
  return fmt::format("{} {}", request.method, request.url);
}

Object requestDetails(const HttpRequest &request) {
  Object details;
  details.set("method", request.method);
  details.set("url", request.url);
  return details;
}

// The start of a body for an error's details: parsed JSON when short and JSON, else text
// cut at a character boundary; omitted when it is not text.
std::optional<Value> bodyPreview(const HttpResponse &response) {
  if (response.body.empty()) {
    return std::nullopt;
  }
  if (response.body.size() <= kErrorBodyBytes && isJsonMediaType(contentTypeOf(response))) {
    Result<Value> parsed = parseJson(response.body);
    if (parsed.ok()) {
      return parsed.value();
    }
  }
  std::string_view text = response.body;
  if (text.size() > kErrorBodyBytes) {
    text = text.substr(0, kErrorBodyBytes);
    // Back off to the start of a UTF-8 sequence.
    while (!text.empty() && (uint8_t(response.body[text.size()]) & 0xC0) == 0x80) {
      text.remove_suffix(1);
    }
  }
  if (!isValidUtf8(text)) {
    return std::nullopt;
  }
  return Value(std::string(text));
}

// The longest wait a Retry-After may ask for; anything longer is taken as garbage.
constexpr int64_t kMaxRetryAfterSeconds = 365LL * 24 * 3600;

// Retry-After as milliseconds from now; see parseRetryAfterMs.
std::optional<int64_t> retryAfterMs(const HttpResponse &response) {
  const Value *header = response.headers.find("retry-after");
  if (header == nullptr || !header->isString()) {
    return std::nullopt;
  }
  return parseRetryAfterMs(header->asString(), int64_t(std::time(nullptr)));
}

// The certificate's problem as libcurl words it, and what to do about it.
WorkflowError certificateError(const HttpRequest &request, std::string reason, Object details) {
  std::string fix = request.caFile
                        ? fmt::format("; the server's certificate is not signed by a CA in "
                                      "ca_file '{}'",
                                      *request.caFile)
                        : "; name the CA that signed the server's certificate with ca_file";
  details.set("certificate_problem", reason);
  return makeError(
      stdlib_errors::ConnectionError,
      fmt::format("{} refused the server's certificate: {}{}", requestName(request), reason, fix),
      Value(std::move(details)));
}

WorkflowError transportError(const HttpRequest &request, CURLcode code, const char *errorBuffer) {
  Object details = requestDetails(request);
  details.set("curl_code", int64_t(code));
  std::string reason = curlErrorText(code, errorBuffer);
  details.set("curl_error", reason);
  switch (code) {
  case CURLE_OPERATION_TIMEDOUT: {
    int64_t limit = request.timeoutMs.value_or(0);
    details.set("timeout_ms", limit);
    WorkflowError error = makeError(stdlib_errors::HttpTimeout,
                                    fmt::format("{} did not finish within its timeout of {}",
                                                requestName(request), formatDurationMs(limit)),
                                    Value(std::move(details)));
    error.retryable = true;
    return error;
  }
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
    return makeError(runtime::activity_errors::InvalidImplementation,
                     fmt::format("{} cannot be sent: {}; the url must be http:// or https:// "
                                 "with a host",
                                 requestName(request), reason),
                     Value(std::move(details)));
  case CURLE_TOO_MANY_REDIRECTS:
    return makeError(stdlib_errors::HttpError,
                     fmt::format("{} was redirected too often: {}", requestName(request), reason),
                     Value(std::move(details)));
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    // The next attempt meets the same certificate.
    return certificateError(request, reason, std::move(details));
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
    return makeError(stdlib_errors::ConnectionError,
                     fmt::format("{} failed: {}; {}", requestName(request), reason,
                                 request.caFile ? "ca_file must be a PEM file of certificates"
                                                : "the system's CA certificates cannot be read: "
                                                  "install them (ca-certificates) or name the "
                                                  "server's CA with ca_file"),
                     Value(std::move(details)));
  default: {
    // CURLcode has close to a hundred values; everything else is a network that may heal.
    WorkflowError error = makeError(stdlib_errors::ConnectionError,
                                    fmt::format("{} failed: {}", requestName(request), reason),
                                    Value(std::move(details)));
    error.retryable = true;
    return error;
  }
  }
}

} // namespace

Result<HttpResponse> sendHttpRequest(const HttpRequest &request,
                                     runtime::ActivityContext &context) {
  char errorBuffer[CURL_ERROR_SIZE];
  EasyHandle easy = makeEasyHandle("http,https", errorBuffer);
  if (!easy) {
    return transportError(request, CURLE_OUT_OF_MEMORY, nullptr);
  }
  CURL *handle = easy.get();
  Receiver receiver;
  receiver.limitBytes = context.payloadLimitBytes();
  CurlList headers;
  for (const std::string &line : request.headerLines) {
    headers.append(line);
  }
  curl_easy_setopt(handle, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, receiveBody);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &receiver);
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, receiveHeader);
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, &receiver);
  curl_easy_setopt(handle, CURLOPT_USERAGENT, "kotoba/0.1");
  if (request.timeoutMs && *request.timeoutMs > 0) {
    curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, long(*request.timeoutMs));
  }
  if (request.caFile) {
    curl_easy_setopt(handle, CURLOPT_CAINFO, request.caFile->c_str());
    curl_easy_setopt(handle, CURLOPT_CAPATH, nullptr);
  }
  if (request.followRedirects) {
    curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(handle, CURLOPT_MAXREDIRS, 10L);
  }
  if (request.method == "HEAD") {
    curl_easy_setopt(handle, CURLOPT_NOBODY, 1L);
  } else if (request.body) {
    curl_easy_setopt(handle, CURLOPT_POSTFIELDS, request.body->data());
    curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body->size()));
    if (request.method != "POST") {
      curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
  } else if (request.method != "GET") {
    curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  TransferOutcome outcome = performTransfer(handle, context);
  if (outcome.stopped || context.cancelled()) {
    return runtime::stoppedError(context.identity(), context.stopReason());
  }
  if (receiver.tooLarge) {
    Object details = requestDetails(request);
    details.set("limit_bytes", int64_t(receiver.limitBytes));
    return makeError(error_types::PayloadTooLarge,
                     fmt::format("the response to {} is larger than the payload limit of {} "
                                 "bytes; ask for less (a page, a filter) or raise the limit",
                                 requestName(request), receiver.limitBytes),
                     Value(std::move(details)));
  }
  if (outcome.code != CURLE_OK) {
    return transportError(request, outcome.code, errorBuffer);
  }
  long status = 0;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
  receiver.response.status = status;
  return std::move(receiver.response);
}

bool acceptsStatus(const HttpRequest &request, int64_t status) {
  if (request.accepted.empty()) {
    return status >= 200 && status <= 299;
  }
  return std::any_of(
      request.accepted.begin(), request.accepted.end(),
      [status](const StatusRange &range) { return status >= range.low && status <= range.high; });
}

WorkflowError statusError(const HttpRequest &request, const HttpResponse &response) {
  Object details = requestDetails(request);
  details.set("status", response.status);
  if (std::optional<Value> body = bodyPreview(response)) {
    details.set("body", std::move(*body));
  }
  std::optional<int64_t> retryAfter = retryAfterMs(response);
  if (retryAfter) {
    details.set("retry_after_ms", *retryAfter);
  }
  // "HTTP/1.1 404 Not Found" -> "404 Not Found"
  std::string_view answer = response.statusLine;
  if (size_t space = answer.find(' '); space != std::string_view::npos) {
    answer.remove_prefix(space + 1);
  }
  if (answer.empty()) {
    answer = std::to_string(response.status);
  }
  bool retryable = response.status >= 500 || response.status == 429;
  WorkflowError error = makeError(stdlib_errors::HttpError,
                                  fmt::format("{} answered {}", requestName(request), answer),
                                  Value(std::move(details)));
  error.retryable = retryable;
  return error;
}

Result<Value> responseBodyValue(const HttpRequest &request, const HttpResponse &response) {
  if (response.body.empty()) {
    return Value();
  }
  std::string contentType = contentTypeOf(response);
  Object details = requestDetails(request);
  details.set("status", response.status);
  details.set("content_type", contentType);
  if (isJsonMediaType(contentType)) {
    Result<Value> parsed = parseJson(response.body);
    if (!parsed.ok()) {
      return makeError(error_types::InvalidPayload,
                       fmt::format("the response to {} says it is JSON ({}) but is not: {}",
                                   requestName(request), contentType, parsed.error().message),
                       Value(std::move(details)));
    }
    return parsed.value();
  }
  if (std::optional<size_t> offset = findInvalidUtf8(response.body)) {
    details.set("offset", int64_t(*offset));
    return makeError(error_types::InvalidPayload,
                     fmt::format("the response to {} is not UTF-8 text (byte {}); to fetch "
                                 "binary content set response_body: \"base64\", which returns "
                                 "it as body_base64",
                                 requestName(request), *offset),
                     Value(std::move(details)));
  }
  return Value(response.body);
}

std::optional<int64_t> parseRetryAfterMs(std::string_view header, int64_t nowSeconds) {
  std::string_view text = trim(header);
  int64_t seconds = 0;
  auto [end, problem] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (problem == std::errc() && end == text.data() + text.size()) {
    if (seconds < 0 || seconds > kMaxRetryAfterSeconds) {
      return std::nullopt;
    }
    return seconds * 1000;
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT". The obsolete forms servers must not send
  // are not read.
  std::tm date{};
  std::string copy(text);
  const char *rest = ::strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &date);
  if (rest == nullptr || *rest != '\0') {
    return std::nullopt;
  }
  int64_t at = int64_t(::timegm(&date));
  if (at - nowSeconds > kMaxRetryAfterSeconds) {
    return std::nullopt;
  }
  return std::max<int64_t>(0, at - nowSeconds) * 1000;
}

} // namespace kotoba::stdlib::detail
