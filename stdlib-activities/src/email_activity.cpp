// The `email` activity: sends one plain-text message over SMTP through libcurl.
//
//   { type: "email", server: "127.0.0.1", port: 2525, starttls: false,
//     username: "${$.env.SMTP_USER}", password: "${$.env.SMTP_PASSWORD}",
//     from: "Shop <shop@example.com>", to: "${$.input.customer}", cc: [...], bcc: [...],
//     subject: "Order ${$.input.order_id} shipped", text: "..." }
//
// `to`, `cc`, `bcc`, `subject` and `text` may also come from the activity's input when the
// implementation leaves them out, so a workflow can build the message in its input_mapping
// (including lists of recipients, which templates cannot produce). The result is
// {message_id}; every attempt of one call sends the same Message-ID. docs/activities.md has
// the rules in full.
#include "kotoba/stdlib/standard_activities.h"

#include "curl_transfer.h"
#include "email_message.h"
#include "implementation_fields.h"

#include "kotoba/runtime/activity_template.h"
#include "kotoba/runtime/function.h"

#include <fmt/format.h>

#include <cstring>

namespace kotoba::stdlib {

using detail::MailAddress;
using runtime::ActivityContext;

namespace {

// TODO(#6): only plain SMTP with optional STARTTLS; implicit TLS (smtps, port 465), HTML
// bodies and attachments are not supported yet.
constexpr int64_t kDefaultSmtpPort = 25;

struct SmtpCall {
  std::string server;
  int64_t port = kDefaultSmtpPort;
  bool starttls = false;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<int64_t> timeoutMs;
  detail::MailMessage message;
  std::vector<MailAddress> bcc;
};

WorkflowError invalidMessage(std::string message, Value details = nullptr) {
  return makeError(runtime::kInvalidInput, std::move(message), std::move(details));
}

// The addresses of one recipient field: a string, or an array of strings.
Result<std::vector<MailAddress>> readAddresses(const Value *value, std::string_view field) {
  std::vector<MailAddress> addresses;
  if (value == nullptr || value->isNull()) {
    return addresses;
  }
  Array items = value->isArray() ? value->asArray() : Array{*value};
  for (const Value &item : items) {
    // An empty string is no address, so `cc: "${$.input.cc ?? ''}"` can leave cc empty.
    if (item.isString() && item.asString().find_first_not_of(" \t") == std::string::npos) {
      continue;
    }
    std::optional<MailAddress> address =
        item.isString() ? detail::parseMailAddress(item.asString()) : std::nullopt;
    if (!address) {
      return invalidMessage(fmt::format("'{}' holds {}, which is not one e-mail address; write "
                                        "ann@example.com or Ann Lee <ann@example.com>, one per "
                                        "array element",
                                        field, describeValue(item)));
    }
    addresses.push_back(std::move(*address));
  }
  return addresses;
}

struct Upload {
  std::string_view rest;
};

size_t sendMessageText(char *buffer, size_t size, size_t count, void *user) {
  auto *upload = static_cast<Upload *>(user);
  size_t bytes = std::min(size * count, upload->rest.size());
  std::memcpy(buffer, upload->rest.data(), bytes);
  upload->rest.remove_prefix(bytes);
  return bytes;
}

WorkflowError smtpFailure(const SmtpCall &call, CURLcode code, const char *errorBuffer,
                          long smtpCode) {
  Object details;
  details.set("server", call.server);
  details.set("port", call.port);
  details.set("curl_code", int64_t(code));
  std::string reason = detail::curlErrorText(code, errorBuffer);
  details.set("curl_error", reason);
  std::string where = fmt::format("{}:{}", call.server, call.port);
  if (code == CURLE_LOGIN_DENIED) {
    return makeError(stdlib_errors::SmtpError,
                     fmt::format("the SMTP server {} refused the login: {}; check the username "
                                 "and password",
                                 where, reason),
                     Value(std::move(details)));
  }
  if (code == CURLE_USE_SSL_FAILED) {
    return makeError(stdlib_errors::SmtpError,
                     fmt::format("the SMTP server {} does not offer STARTTLS: {}; set starttls: "
                                 "false only for a server on a trusted network",
                                 where, reason),
                     Value(std::move(details)));
  }
  if (smtpCode >= 400) {
    details.set("smtp_code", int64_t(smtpCode));
    // 4xx replies are temporary by definition (RFC 5321 section 4.2.1), 5xx permanent.
    WorkflowError error = makeError(
        stdlib_errors::SmtpError,
        fmt::format("the SMTP server {} refused the message with {}: {}", where, smtpCode, reason),
        Value(std::move(details)));
    error.retryable = smtpCode < 500;
    return error;
  }
  WorkflowError error = makeError(stdlib_errors::ConnectionError,
                                  fmt::format("sending mail through {} failed: {}", where, reason),
                                  Value(std::move(details)));
  error.retryable = true;
  return error;
}

Result<Value> sendMail(const SmtpCall &call, ActivityContext &context) {
  char errorBuffer[CURL_ERROR_SIZE];
  detail::EasyHandle easy = detail::makeEasyHandle("smtp", errorBuffer);
  if (!easy) {
    return smtpFailure(call, CURLE_OUT_OF_MEMORY, nullptr, 0);
  }
  CURL *handle = easy.get();
  bool ipv6Literal = call.server.find(':') != std::string::npos;
  std::string url = ipv6Literal ? fmt::format("smtp://[{}]:{}", call.server, call.port)
                                : fmt::format("smtp://{}:{}", call.server, call.port);
  std::string text = detail::composeMessage(call.message);
  Upload upload{text};
  detail::CurlList recipients;
  for (const auto *list : {&call.message.to, &call.message.cc, &call.bcc}) {
    for (const MailAddress &address : *list) {
      recipients.append("<" + address.address + ">");
    }
  }
  std::string sender = "<" + call.message.from.address + ">";
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_USE_SSL, long(call.starttls ? CURLUSESSL_ALL : CURLUSESSL_NONE));
  curl_easy_setopt(handle, CURLOPT_MAIL_FROM, sender.c_str());
  curl_easy_setopt(handle, CURLOPT_MAIL_RCPT, recipients.get());
  curl_easy_setopt(handle, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(handle, CURLOPT_READFUNCTION, sendMessageText);
  curl_easy_setopt(handle, CURLOPT_READDATA, &upload);
  curl_easy_setopt(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(text.size()));
  if (call.username) {
    curl_easy_setopt(handle, CURLOPT_USERNAME, call.username->c_str());
  }
  if (call.password) {
    curl_easy_setopt(handle, CURLOPT_PASSWORD, call.password->c_str());
  }
  if (call.timeoutMs && *call.timeoutMs > 0) {
    curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, long(*call.timeoutMs));
  }

  detail::TransferOutcome outcome = detail::performTransfer(handle, context);
  if (outcome.stopped || context.cancelled()) {
    return runtime::stoppedError(context.identity(), context.stopReason());
  }
  if (outcome.code != CURLE_OK) {
    long smtpCode = 0;
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &smtpCode);
    return smtpFailure(call, outcome.code, errorBuffer, smtpCode);
  }
  Object result;
  result.set("message_id", call.message.messageId);
  return Value(std::move(result));
}

class EmailActivity final : public runtime::Activity {
public:
  EmailActivity(std::string activityName, runtime::TemplateValue implementation,
                runtime::EnvironmentLookup environment)
      : activityName_(std::move(activityName)), implementation_(std::move(implementation)),
        environment_(std::move(environment)) {}

  [[nodiscard]] Result<Value> run(const Value &input, ActivityContext &context) override {
    Result<SmtpCall> call = resolve(input, context);
    if (!call.ok()) {
      return std::move(call).error();
    }
    return sendMail(call.value(), context);
  }
  [[nodiscard]] std::string_view type() const override { return "email"; }

private:
  [[nodiscard]] Result<SmtpCall> resolve(const Value &input, ActivityContext &context) const;

  std::string activityName_;
  runtime::TemplateValue implementation_;
  runtime::EnvironmentLookup environment_;
};

Result<SmtpCall> EmailActivity::resolve(const Value &input, ActivityContext &context) const {
  Result<Value> evaluated =
      implementation_.evaluate(runtime::TemplateScope{input, environment_, context.redactor()});
  if (!evaluated.ok()) {
    return std::move(evaluated).error();
  }
  const Object &fields = evaluated->asObject();
  // A message field the implementation leaves out comes from the input.
  auto field = [&](std::string_view name) -> const Value * {
    if (const Value *value = fields.find(name)) {
      return value;
    }
    return input.isObject() ? input.asObject().find(name) : nullptr;
  };
  SmtpCall call;
  call.server = fields.find("server")->asString();
  if (call.server.empty() || call.server.find_first_of("/@ \t\r\n[]?#") != std::string::npos) {
    return detail::invalidImplementation(
        activityName_,
        fmt::format("'server' must be a host name or address, found '{}'", call.server));
  }
  Result<std::optional<int64_t>> port =
      detail::readInteger(activityName_, fields, "port", 1, 65535);
  if (!port.ok()) {
    return std::move(port).error();
  }
  call.port = port.value().value_or(kDefaultSmtpPort);
  if (const Value *starttls = fields.find("starttls")) {
    call.starttls = starttls->asBool();
  }
  call.username = detail::readString(fields, "username");
  call.password = detail::readString(fields, "password");
  Result<std::optional<int64_t>> timeout = detail::readDurationMs(activityName_, fields, "timeout");
  if (!timeout.ok()) {
    return std::move(timeout).error();
  }
  call.timeoutMs = timeout.value();

  std::optional<MailAddress> from = detail::parseMailAddress(fields.find("from")->asString());
  if (!from) {
    return invalidMessage(fmt::format("'from' holds '{}', which is not one e-mail address; write "
                                      "shop@example.com or Shop <shop@example.com>",
                                      fields.find("from")->asString()));
  }
  call.message.from = std::move(*from);
  for (auto [name, target] : {std::pair{"to", &call.message.to}, std::pair{"cc", &call.message.cc},
                              std::pair{"bcc", &call.bcc}}) {
    Result<std::vector<MailAddress>> addresses = readAddresses(field(name), name);
    if (!addresses.ok()) {
      return std::move(addresses).error();
    }
    *target = std::move(addresses).value();
  }
  if (call.message.to.empty() && call.message.cc.empty() && call.bcc.empty()) {
    return invalidMessage("an email needs a recipient in 'to', 'cc' or 'bcc', in the "
                          "implementation or the activity's input");
  }
  for (auto [name, target] :
       {std::pair{"subject", &call.message.subject}, std::pair{"text", &call.message.text}}) {
    const Value *value = field(name);
    if (value == nullptr || value->isNull()) {
      continue;
    }
    if (!value->isString()) {
      return invalidMessage(
          fmt::format("'{}' of an email must be a string, found {}", name, describeValue(*value)));
    }
    *target = value->asString();
  }
  if (call.message.subject.find_first_of("\r\n") != std::string::npos) {
    return invalidMessage("the subject of an email must be one line; remove its line breaks");
  }
  const runtime::AttemptIdentity &identity = context.identity();
  call.message.messageId = detail::makeMessageId(identity.runId, identity.stepId,
                                                 identity.commandId, call.message.from.address);
  call.message.date = detail::currentMailDate();
  return call;
}

constexpr std::string_view kEmailExample =
    "{type: \"email\", server: \"127.0.0.1\", port: 25, from: \"shop@example.com\", to: "
    "\"${$.input.email}\", subject: \"...\", text: \"...\"}";

} // namespace

runtime::ActivityFactory emailActivityFactory() {
  return [](const runtime::ImplementationRequest &request)
             -> Result<std::shared_ptr<runtime::Activity>> {
    detail::FieldChecker check(request, "email");
    for (std::optional<WorkflowError> problem :
         {detail::checkFieldNames(request, "email",
                                  {"server", "port", "starttls", "username", "password", "from",
                                   "to", "cc", "bcc", "subject", "text", "timeout"}),
          check.required("server", kEmailExample), check.required("from", kEmailExample),
          check.string("server"), check.integer("port", 1, 65535), check.boolean("starttls"),
          check.string("username"), check.string("password"), check.string("from"),
          check.strings("to"), check.strings("cc"), check.strings("bcc"), check.string("subject"),
          check.string("text"), check.duration("timeout")}) {
      if (problem) {
        return std::move(*problem);
      }
    }
    Result<runtime::TemplateValue> compiled = runtime::TemplateValue::compile(
        request.implementation, fmt::format("activity '{}' implementation", request.activityName));
    if (!compiled.ok()) {
      return std::move(compiled).error();
    }
    return std::shared_ptr<runtime::Activity>(std::make_shared<EmailActivity>(
        request.activityName, std::move(compiled).value(), request.environment));
  };
}

} // namespace kotoba::stdlib
