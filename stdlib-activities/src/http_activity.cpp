// The `http` and `webhook` activities: one HTTP request per attempt through libcurl.
//
//   { type: "http", method: "POST", url: "http://127.0.0.1:8080/orders/${$.input.id}",
//     headers: { Authorization: "Bearer ${$.env.SHOP_TOKEN}" }, query: { verbose: true },
//     body: { ... }, accept_status: ["2xx", 404], timeout: "10s", ca_file: "ca.pem" }
//   { type: "webhook", url: "http://127.0.0.1:9000/hooks/order", headers: { ... } }
//
// An http attempt's result is {status, headers, body} (or the body alone with
// `result: "body"`, which `--bind NAME=http:URL` uses; `body_base64` instead of `body` with
// `response_body: "base64"`); a webhook POSTs its input as JSON and its result is {status}.
// The method, accepted statuses, redirects and result shape are fixed when the module is
// resolved; the url, headers, query, body, timeout and CA file may hold templates and are
// evaluated per attempt. Values from `$.input` are percent-encoded into the url, one path
// segment each, unless `url_values: "raw"`. docs/activities.md has the rules in full.
#include "kotoba/stdlib/standard_activities.h"

#include "curl_transfer.h"
#include "http_request.h"
#include "implementation_fields.h"

#include "kotoba/runtime/activity_template.h"
#include "kotoba/runtime/function.h"
#include "kotoba/vm/json.h"
#include "kotoba/vm/operations.h"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <set>

namespace kotoba::stdlib {

using detail::HttpRequest;
using detail::HttpResponse;
using detail::StatusRange;
using runtime::ActivityContext;

namespace {

constexpr std::array<std::string_view, 7> kMethods = {"GET",   "HEAD",   "POST",   "PUT",
                                                      "PATCH", "DELETE", "OPTIONS"};

std::string lowerCase(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return lower;
}

std::string upperCase(std::string_view text) {
  std::string upper(text);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return char(std::toupper(c)); });
  return upper;
}

// RFC 9110 token characters, which header names are made of.
bool isHeaderName(std::string_view name) {
  static constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || kSymbols.find(c) != std::string::npos;
  });
}

// Percent-encodes everything but RFC 3986's unreserved characters.
std::string urlEncode(std::string_view text) {
  std::string encoded;
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '-' || c == '_' || c == '.' || c == '~') {
      encoded += c;
    } else {
      encoded += fmt::format("%{:02X}", byte);
    }
  }
  return encoded;
}

// Writes an input value into the url as exactly one path segment: '/', '?', '#', '%' and
// everything else outside the unreserved characters are percent-encoded, and a value that is
// "." or ".." has its dots encoded too, since as a segment of its own it would move up the
// path (RFC 3986 section 5.2.4) rather than name something.
void appendPathSegment(std::string &text, const Value &value) {
  std::string plain = templateText(value);
  if (plain == "." || plain == "..") {
    text += plain == "." ? "%2E" : "%2E%2E";
    return;
  }
  text += urlEncode(plain);
}

const runtime::InputTextWriter kPathSegmentWriter = appendPathSegment;

bool startsWithNoCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && lowerCase(text.substr(0, prefix.size())) == prefix;
}

// Adds `query` to `url`, before any fragment.
std::string withQuery(const std::string &url, const std::string &query) {
  if (query.empty()) {
    return url;
  }
  std::string base = url.substr(0, url.find('#'));
  char joiner = '?';
  if (base.find('?') != std::string::npos) {
    joiner = base.back() == '?' || base.back() == '&' ? '\0' : '&';
  }
  return joiner == '\0' ? base + query : base + joiner + query;
}

// "2xx", 404 or "404" as a range of statuses; nullopt when it is none of these.
std::optional<StatusRange> parseStatusRange(const Value &value) {
  if (value.isInt() && value.asInt() >= 100 && value.asInt() <= 599) {
    return StatusRange{value.asInt(), value.asInt()};
  }
  if (!value.isString() || value.asString().size() != 3) {
    return std::nullopt;
  }
  const std::string &text = value.asString();
  if (text[0] < '1' || text[0] > '5') {
    return std::nullopt;
  }
  int64_t hundreds = (text[0] - '0') * 100;
  if (lowerCase(text.substr(1)) == "xx") {
    return StatusRange{hundreds, hundreds + 99};
  }
  if (std::isdigit(static_cast<unsigned char>(text[1])) &&
      std::isdigit(static_cast<unsigned char>(text[2]))) {
    int64_t status = hundreds + (text[1] - '0') * 10 + (text[2] - '0');
    return StatusRange{status, status};
  }
  return std::nullopt;
}

// What the factory fixes for every attempt.
struct HttpShape {
  std::string method = "GET";
  std::vector<StatusRange> accepted;
  bool followRedirects = false;
  bool bodyOnly = false;
  bool webhook = false;
  // `url_values: "raw"`: input values go into the url as they are.
  bool rawUrlValues = false;
  // `response_body: "base64"`: the body as base64 under `body_base64`, whatever it holds.
  bool bodyBase64 = false;
};

class HttpActivity final : public runtime::Activity {
public:
  // `implementation` is every field but the url, which `url` holds on its own since its
  // input values are written differently. `baseDirectory` resolves a relative `ca_file`.
  HttpActivity(std::string activityName, runtime::TemplateValue implementation,
               runtime::TemplateValue url, HttpShape shape, std::string baseDirectory,
               runtime::EnvironmentLookup environment)
      : activityName_(std::move(activityName)), implementation_(std::move(implementation)),
        url_(std::move(url)), shape_(std::move(shape)), baseDirectory_(std::move(baseDirectory)),
        environment_(std::move(environment)) {}

  [[nodiscard]] Result<Value> run(const Value &input, ActivityContext &context) override {
    Result<HttpRequest> request = resolve(input, context);
    if (!request.ok()) {
      return std::move(request).error();
    }
    Result<HttpResponse> response = detail::sendHttpRequest(request.value(), context);
    if (!response.ok()) {
      return std::move(response).error();
    }
    if (!detail::acceptsStatus(request.value(), response->status)) {
      return detail::statusError(request.value(), response.value());
    }
    if (shape_.webhook) {
      Object result;
      result.set("status", response->status);
      return Value(std::move(result));
    }
    Result<Value> body = shape_.bodyBase64
                             ? Result<Value>(Value(detail::base64Encode(response->body)))
                             : detail::responseBodyValue(request.value(), response.value());
    if (!body.ok() || shape_.bodyOnly) {
      return body;
    }
    Object result;
    result.set("status", response->status);
    result.set("headers", Value(response->headers));
    result.set(shape_.bodyBase64 ? "body_base64" : "body", std::move(body).value());
    return Value(std::move(result));
  }

  [[nodiscard]] std::string_view type() const override {
    return shape_.webhook ? "webhook" : "http";
  }

private:
  [[nodiscard]] Result<HttpRequest> resolve(const Value &input, ActivityContext &context) const;
  [[nodiscard]] std::optional<WorkflowError> addHeaders(HttpRequest &request, const Object &fields,
                                                        const ActivityContext &context,
                                                        std::string_view contentType) const;
  [[nodiscard]] WorkflowError badHeader(std::string_view name, std::string_view problem) const;

  std::string activityName_;
  runtime::TemplateValue implementation_;
  runtime::TemplateValue url_;
  HttpShape shape_;
  std::string baseDirectory_;
  runtime::EnvironmentLookup environment_;
};

WorkflowError HttpActivity::badHeader(std::string_view name, std::string_view problem) const {
  Object details;
  details.set("header", std::string(name));
  return makeError(runtime::kInvalidInput,
                   fmt::format("header '{}' {}, which would start another header line; remove "
                               "line breaks from the value",
                               name, problem),
                   Value(std::move(details)));
}

std::optional<WorkflowError> HttpActivity::addHeaders(HttpRequest &request, const Object &fields,
                                                      const ActivityContext &context,
                                                      std::string_view contentType) const {
  std::set<std::string> named;
  if (const Value *headers = fields.find("headers")) {
    for (const ObjectEntry &entry : headers->asObject()) {
      named.insert(lowerCase(entry.key));
      std::optional<std::string> text = detail::scalarText(entry.value);
      if (!text) {
        request.headerLines.push_back(entry.key + ":"); // libcurl: do not send this header
      } else if (detail::breaksHeaderLine(*text)) {
        return badHeader(entry.key, "holds a line break or NUL");
      } else if (text->empty()) {
        request.headerLines.push_back(entry.key + ";"); // libcurl: send it empty
      } else {
        request.headerLines.push_back(entry.key + ": " + *text);
      }
    }
  }
  auto addDefault = [&](std::string_view name, const std::string &value) {
    if (!named.contains(lowerCase(name)) && !detail::breaksHeaderLine(value) && !value.empty()) {
      request.headerLines.push_back(fmt::format("{}: {}", name, value));
    }
  };
  if (!contentType.empty()) {
    addDefault("Content-Type", std::string(contentType));
  }
  // libcurl sends `Expect: 100-continue` before larger bodies and then waits up to a second
  // for a server that may never answer it.
  if (!named.contains("expect")) {
    request.headerLines.push_back("Expect:");
  }
  // The same identity a process activity gets in KOTOBA_* variables, so a server can
  // deduplicate or trace.
  addDefault("Kotoba-Run-Id", context.runId());
  addDefault("Kotoba-Step-Id", context.stepId());
  addDefault("Kotoba-Activity", context.activityName());
  addDefault("Kotoba-Attempt", std::to_string(context.attempt()));
  addDefault("Kotoba-Idempotency-Key", context.idempotencyKey());
  return std::nullopt;
}

Result<HttpRequest> HttpActivity::resolve(const Value &input, ActivityContext &context) const {
  Result<Value> evaluated =
      implementation_.evaluate(runtime::TemplateScope{input, environment_, context.redactor()});
  if (!evaluated.ok()) {
    return std::move(evaluated).error();
  }
  const Object &fields = evaluated->asObject();
  HttpRequest request;
  request.method = shape_.method;
  request.accepted = shape_.accepted;
  request.followRedirects = shape_.followRedirects;

  // A value from the input is data: it may name one thing in the path, never add segments,
  // a query or a fragment.
  Result<Value> evaluatedUrl =
      url_.evaluate(runtime::TemplateScope{input, environment_, context.redactor(),
                                           shape_.rawUrlValues ? nullptr : &kPathSegmentWriter});
  if (!evaluatedUrl.ok()) {
    return std::move(evaluatedUrl).error();
  }
  std::string url = evaluatedUrl->asObject().find("url")->asString();
  if (!startsWithNoCase(url, "http://") && !startsWithNoCase(url, "https://")) {
    std::string hint = shape_.rawUrlValues || url_.isConstant()
                           ? ""
                           : "; values from $.input are percent-encoded as one path segment, so "
                             "to take a whole url from the input set url_values: \"raw\"";
    return detail::invalidImplementation(
        activityName_,
        fmt::format("'url' must start with http:// or https://, found '{}'{}", url, hint));
  }
  std::string query;
  if (const Value *parameters = fields.find("query")) {
    for (const ObjectEntry &entry : parameters->asObject()) {
      if (std::optional<std::string> text = detail::scalarText(entry.value)) {
        query += query.empty() ? "" : "&";
        query += urlEncode(entry.key) + "=" + urlEncode(*text);
      }
    }
  }
  request.url = withQuery(url, query);

  Result<std::optional<int64_t>> timeout = detail::readDurationMs(activityName_, fields, "timeout");
  if (!timeout.ok()) {
    return std::move(timeout).error();
  }
  request.timeoutMs = timeout.value();
  if (std::optional<std::string> caFile = detail::readString(fields, "ca_file")) {
    request.caFile = detail::resolvePath(*caFile, baseDirectory_);
    if (::access(request.caFile->c_str(), R_OK) != 0) {
      return detail::invalidImplementation(
          activityName_, fmt::format("'ca_file' names '{}', which cannot be read: {}; give the "
                                     "PEM file of the CA that signed the server's certificate",
                                     *request.caFile, std::strerror(errno)));
    }
  }

  std::string contentType;
  const Value *body = fields.find("body");
  bool sendsInput =
      shape_.webhook || (body == nullptr && (request.method == "POST" || request.method == "PUT" ||
                                             request.method == "PATCH"));
  if (sendsInput) {
    request.body = toJson(input);
    contentType = "application/json";
  } else if (body != nullptr && body->isString()) {
    request.body = body->asString();
    contentType = "text/plain; charset=utf-8";
  } else if (body != nullptr && !body->isNull()) {
    request.body = toJson(*body);
    contentType = "application/json";
  }
  if (std::optional<WorkflowError> problem = addHeaders(request, fields, context, contentType)) {
    return std::move(*problem);
  }
  return request;
}

constexpr std::string_view kHttpExample =
    "{type: \"http\", method: \"POST\", url: \"http://127.0.0.1:8080/orders\"}";
constexpr std::string_view kWebhookExample =
    "{type: \"webhook\", url: \"http://127.0.0.1:9000/hooks/order\"}";

// A url without templates is checked now rather than at the first attempt.
std::optional<WorkflowError> checkConstantUrl(const runtime::ImplementationRequest &request) {
  const Value *url = request.implementation.asObject().find("url");
  if (url == nullptr || !url->isString() || detail::holdsTemplate(*url) ||
      startsWithNoCase(url->asString(), "http://") ||
      startsWithNoCase(url->asString(), "https://")) {
    return std::nullopt;
  }
  return detail::invalidImplementation(
      request.activityName,
      fmt::format("'url' must start with http:// or https://, found '{}'", url->asString()));
}

// Header names are not templates; a name that is not a token would break the request.
std::optional<WorkflowError> checkHeaderNames(const runtime::ImplementationRequest &request) {
  const Value *headers = request.implementation.asObject().find("headers");
  if (headers == nullptr) {
    return std::nullopt;
  }
  for (const ObjectEntry &entry : headers->asObject()) {
    if (!isHeaderName(entry.key)) {
      return detail::invalidImplementation(
          request.activityName,
          fmt::format("'{}' is not a valid header name; use letters, digits and '-'", entry.key));
    }
  }
  return std::nullopt;
}

// Reads the fields that must be constants (not templates) into `shape`.
std::optional<WorkflowError> readShape(const runtime::ImplementationRequest &request,
                                       HttpShape &shape) {
  const Object &fields = request.implementation.asObject();
  const std::string &name = request.activityName;
  if (const Value *method = fields.find("method")) {
    std::string upper = method->isString() ? upperCase(method->asString()) : "";
    if (std::find(kMethods.begin(), kMethods.end(), upper) == kMethods.end()) {
      return detail::invalidImplementation(
          name, fmt::format("'method' must be one of GET, HEAD, POST, PUT, PATCH, DELETE or "
                            "OPTIONS (not a template), found {}",
                            describeValue(*method)));
    }
    shape.method = upper;
  }
  if (const Value *accept = fields.find("accept_status")) {
    Array rules = accept->isArray() ? accept->asArray() : Array{*accept};
    for (const Value &rule : rules) {
      std::optional<StatusRange> range = parseStatusRange(rule);
      if (!range) {
        return detail::invalidImplementation(
            name, fmt::format("'accept_status' takes statuses (404), classes (\"2xx\") or an "
                              "array of them, found {}",
                              describeValue(rule)));
      }
      shape.accepted.push_back(*range);
    }
  }
  if (const Value *follow = fields.find("follow_redirects")) {
    shape.followRedirects = follow->asBool();
  }
  if (const Value *values = fields.find("url_values")) {
    if (!values->isString() || (values->asString() != "encoded" && values->asString() != "raw")) {
      return detail::invalidImplementation(
          name, fmt::format("'url_values' must be \"encoded\" (input values become one "
                            "percent-encoded path segment each) or \"raw\", found {}",
                            describeValue(*values)));
    }
    shape.rawUrlValues = values->asString() == "raw";
  }
  if (const Value *body = fields.find("response_body")) {
    if (!body->isString() || (body->asString() != "auto" && body->asString() != "base64")) {
      return detail::invalidImplementation(
          name, fmt::format("'response_body' must be \"auto\" (JSON parsed, text as a string) "
                            "or \"base64\" (any bytes, as body_base64), found {}",
                            describeValue(*body)));
    }
    shape.bodyBase64 = body->asString() == "base64";
  }
  if (const Value *result = fields.find("result")) {
    if (!result->isString() || (result->asString() != "response" && result->asString() != "body")) {
      return detail::invalidImplementation(
          name, fmt::format("'result' must be \"response\" ({{status, headers, body}}) or "
                            "\"body\", found {}",
                            describeValue(*result)));
    }
    shape.bodyOnly = result->asString() == "body";
  }
  return std::nullopt;
}

Result<std::shared_ptr<runtime::Activity>>
makeHttpActivity(const runtime::ImplementationRequest &request, bool webhook) {
  std::string_view typeName = webhook ? "webhook" : "http";
  detail::FieldChecker check(request, typeName);
  std::optional<WorkflowError> fieldNames =
      webhook ? detail::checkFieldNames(request, typeName,
                                        {"url", "headers", "timeout", "ca_file", "url_values"})
              : detail::checkFieldNames(request, typeName,
                                        {"method", "url", "headers", "query", "body",
                                         "accept_status", "timeout", "follow_redirects", "result",
                                         "ca_file", "url_values", "response_body"});
  for (std::optional<WorkflowError> problem :
       {fieldNames, check.required("url", webhook ? kWebhookExample : kHttpExample),
        check.string("url"), check.textMap("headers"), check.textMap("query"),
        check.duration("timeout"), check.boolean("follow_redirects"), check.string("ca_file"),
        checkConstantUrl(request), checkHeaderNames(request)}) {
    if (problem) {
      return std::move(*problem);
    }
  }
  HttpShape shape;
  shape.webhook = webhook;
  if (std::optional<WorkflowError> problem = readShape(request, shape)) {
    return std::move(*problem);
  }
  if (webhook) {
    shape.method = "POST";
  }
  std::string where = fmt::format("activity '{}' implementation", request.activityName);
  Object rest = request.implementation.asObject();
  rest.erase("url");
  Result<runtime::TemplateValue> compiled = runtime::TemplateValue::compile(Value(rest), where);
  if (!compiled.ok()) {
    return std::move(compiled).error();
  }
  // Compiled on its own so that its field is named `url` in messages, as it is written.
  Object urlOnly;
  urlOnly.set("url", *request.implementation.asObject().find("url"));
  Result<runtime::TemplateValue> url = runtime::TemplateValue::compile(Value(urlOnly), where);
  if (!url.ok()) {
    return std::move(url).error();
  }
  return std::shared_ptr<runtime::Activity>(std::make_shared<HttpActivity>(
      request.activityName, std::move(compiled).value(), std::move(url).value(), std::move(shape),
      request.baseDirectory, request.environment));
}

} // namespace

runtime::ActivityFactory httpActivityFactory() {
  return [](const runtime::ImplementationRequest &request) {
    return makeHttpActivity(request, false);
  };
}

runtime::ActivityFactory webhookActivityFactory() {
  return
      [](const runtime::ImplementationRequest &request) { return makeHttpActivity(request, true); };
}

} // namespace kotoba::stdlib
