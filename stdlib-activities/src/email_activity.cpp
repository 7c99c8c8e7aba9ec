// The `email` activity: sends one message over SMTP through libcurl.
//
//   { type: "email", server: "127.0.0.1", port: 2525, starttls: false, implicit_tls: false,
//     ca_file: "ca.pem", username: "${$.env.SMTP_USER}", password: "${$.env.SMTP_PASSWORD}",
//     from: "Shop <shop@example.com>", to: "${$.input.customer}", cc: [...], bcc: [...],
//     subject: "Order ${$.input.order_id} shipped", text: "...", html: "<p>...</p>",
//     attachments: [{path: "terms.pdf"}, {filename: "a.csv", content_base64: "..."}] }
//
// `to`, `cc`, `bcc`, `subject`, `text`, `html` and `attachments` may also come from the
// activity's input when the implementation leaves them out, so a workflow can build the
// message in its input_mapping (including lists of recipients, which templates cannot
// produce); attachments from the input carry their content, since only the implementation
// may name files. The result is {message_id}; every attempt of one call sends the same
// Message-ID. docs/activities.md has the rules in full.
#include "kotoba/stdlib/standard_activities.h"

#include "curl_transfer.h"
#include "email_message.h"
#include "implementation_fields.h"

#include "kotoba/runtime/activity_template.h"
#include "kotoba/runtime/function.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace kotoba::stdlib {

using detail::MailAddress;
using runtime::ActivityContext;

namespace {

constexpr int64_t kDefaultSmtpPort = 25;
constexpr int64_t kDefaultSmtpsPort = 465;
// What all attachments of one message may add up to: common mail servers refuse messages
// past 25 MiB, and base64 makes the message a third larger than this.
constexpr size_t kMaxAttachmentBytes = 18u << 20;

struct SmtpCall {
  std::string server;
  int64_t port = kDefaultSmtpPort;
  bool starttls = false;
  bool implicitTls = false;
  std::optional<std::string> caFile;
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
  if (code == CURLE_PEER_FAILED_VERIFICATION) {
    // The next attempt meets the same certificate.
    details.set("certificate_problem", reason);
    return makeError(stdlib_errors::ConnectionError,
                     fmt::format("the SMTP server {} has a certificate the client refuses: {}; "
                                 "name the CA that signed it with ca_file",
                                 where, reason),
                     Value(std::move(details)));
  }
  if (code == CURLE_SSL_CACERT_BADFILE) {
    return makeError(stdlib_errors::ConnectionError,
                     fmt::format("the CA certificates for {} cannot be read: {}; name a PEM file "
                                 "of CA certificates with ca_file",
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
  detail::EasyHandle easy = detail::makeEasyHandle("smtp,smtps", errorBuffer);
  if (!easy) {
    return smtpFailure(call, CURLE_OUT_OF_MEMORY, nullptr, 0);
  }
  CURL *handle = easy.get();
  bool ipv6Literal = call.server.find(':') != std::string::npos;
  const char *scheme = call.implicitTls ? "smtps" : "smtp";
  std::string url = ipv6Literal ? fmt::format("{}://[{}]:{}", scheme, call.server, call.port)
                                : fmt::format("{}://{}:{}", scheme, call.server, call.port);
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
  if (call.caFile) {
    curl_easy_setopt(handle, CURLOPT_CAINFO, call.caFile->c_str());
    curl_easy_setopt(handle, CURLOPT_CAPATH, nullptr);
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

// A guess at an attachment's media type from its name, for when none is given.
std::string mediaTypeForName(std::string_view filename) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".pdf", "application/pdf"}, {".png", "image/png"},         {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},     {".gif", "image/gif"},         {".txt", "text/plain"},
      {".csv", "text/csv"},        {".json", "application/json"}, {".html", "text/html"},
      {".zip", "application/zip"}, {".xml", "application/xml"},
  };
  std::string lower(filename);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  for (auto [suffix, type] : kTypes) {
    if (lower.ends_with(suffix)) {
      return std::string(type);
    }
  }
  return "application/octet-stream";
}

// Whether a path has a `..` component.
bool climbsUp(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = std::min(path.find('/', start), path.size());
    if (path.substr(start, end - start) == "..") {
      return true;
    }
    start = end + 1;
  }
  return false;
}

class EmailActivity final : public runtime::Activity {
public:
  EmailActivity(std::string activityName, runtime::TemplateValue implementation,
                std::string baseDirectory, runtime::EnvironmentLookup environment)
      : activityName_(std::move(activityName)), implementation_(std::move(implementation)),
        baseDirectory_(std::move(baseDirectory)), environment_(std::move(environment)) {}

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
  // The attachments of `list`; `fromImplementation` says whether files may be named.
  [[nodiscard]] Result<std::vector<detail::MailAttachment>>
  readAttachments(const Value &list, bool fromImplementation) const;

  std::string activityName_;
  runtime::TemplateValue implementation_;
  std::string baseDirectory_;
  runtime::EnvironmentLookup environment_;
};

Result<std::vector<detail::MailAttachment>>
EmailActivity::readAttachments(const Value &list, bool fromImplementation) const {
  std::vector<detail::MailAttachment> attachments;
  if (list.isNull()) {
    return attachments;
  }
  if (!list.isArray()) {
    return invalidMessage(fmt::format("'attachments' must be an array of {{path}} or {{filename, "
                                      "content_base64}} objects, found {}",
                                      describeValue(list)));
  }
  const Value *written = implementation_.source().asObject().find("attachments");
  size_t totalBytes = 0;
  for (size_t i = 0; i < list.asArray().size(); ++i) {
    const Value &item = list.asArray()[i];
    const Object *fields = item.isObject() ? &item.asObject() : nullptr;
    const Value *path = fields != nullptr ? fields->find("path") : nullptr;
    const Value *content = fields != nullptr ? fields->find("content_base64") : nullptr;
    const Value *name = fields != nullptr ? fields->find("filename") : nullptr;
    const Value *type = fields != nullptr ? fields->find("content_type") : nullptr;
    Object details;
    details.set("attachment", int64_t(i));
    if (fields == nullptr || (path == nullptr) == (content == nullptr) ||
        (path != nullptr && !path->isString()) || (content != nullptr && !content->isString()) ||
        (name != nullptr && !name->isString()) || (type != nullptr && !type->isString())) {
      return invalidMessage(fmt::format("attachment {} must be {{path: \"file.pdf\"}} or "
                                        "{{filename: \"a.csv\", content_base64: \"...\"}}, "
                                        "with an optional content_type, found {}",
                                        i, describeValue(item)),
                            Value(std::move(details)));
    }
    detail::MailAttachment attachment;
    if (path != nullptr) {
      const std::string &relative = path->asString();
      // Files are configuration: the input may not name them, and a template in a path may
      // not lead out of where the path was written to point.
      const Value *writtenItem =
          written != nullptr && written->isArray() && i < written->asArray().size()
              ? &written->asArray()[i]
              : nullptr;
      const Value *writtenPath = writtenItem != nullptr && writtenItem->isObject()
                                     ? writtenItem->asObject().find("path")
                                     : nullptr;
      bool writtenRelative = writtenPath != nullptr && writtenPath->isString() &&
                             !writtenPath->asString().starts_with("/");
      if (!fromImplementation || relative.empty() || climbsUp(relative) ||
          (writtenRelative && relative.starts_with("/"))) {
        return invalidMessage(
            fromImplementation
                ? fmt::format("attachment {} path '{}' leaves the directory it names; a "
                              "value in a path may not hold '..' or start with '/'",
                              i, relative)
                : fmt::format("attachment {} from the input names a file ('{}'); only the "
                              "implementation may name files, the input gives content_base64",
                              i, relative),
            Value(std::move(details)));
      }
      std::string file = detail::resolvePath(relative, baseDirectory_);
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        return detail::invalidImplementation(
            activityName_, fmt::format("attachment {} names '{}', which cannot be read: {}", i,
                                       file, std::strerror(errno)));
      }
      attachment.content.assign(std::istreambuf_iterator<char>(in),
                                std::istreambuf_iterator<char>());
      attachment.filename = relative.substr(relative.rfind('/') + 1);
    } else {
      std::optional<std::string> bytes = detail::base64Decode(content->asString());
      if (!bytes) {
        return invalidMessage(
            fmt::format("attachment {} content_base64 is not base64 (RFC 4648)", i),
            Value(std::move(details)));
      }
      attachment.content = std::move(*bytes);
      attachment.filename = "attachment";
    }
    if (name != nullptr) {
      attachment.filename = name->asString();
    }
    if (!detail::isSafeAttachmentName(attachment.filename)) {
      return invalidMessage(fmt::format("attachment {} filename {} cannot name a file: it must "
                                        "be UTF-8 without control characters, '/' or '\\'",
                                        i, describeValue(Value(attachment.filename))),
                            Value(std::move(details)));
    }
    attachment.contentType =
        type != nullptr ? type->asString() : mediaTypeForName(attachment.filename);
    if (!detail::isMediaType(attachment.contentType)) {
      return invalidMessage(fmt::format("attachment {} content_type {} is not a media type; "
                                        "write it as type/subtype, such as application/pdf",
                                        i, describeValue(Value(attachment.contentType))),
                            Value(std::move(details)));
    }
    totalBytes += attachment.content.size();
    if (totalBytes > kMaxAttachmentBytes) {
      details.set("limit_bytes", int64_t(kMaxAttachmentBytes));
      return makeError(error_types::PayloadTooLarge,
                       fmt::format("the attachments of the email add up to more than {} MiB, "
                                   "which mail servers refuse; send a link instead",
                                   kMaxAttachmentBytes >> 20),
                       Value(std::move(details)));
    }
    attachments.push_back(std::move(attachment));
  }
  return attachments;
}

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
  if (const Value *starttls = fields.find("starttls")) {
    call.starttls = starttls->asBool();
  }
  if (const Value *implicitTls = fields.find("implicit_tls")) {
    call.implicitTls = implicitTls->asBool();
  }
  call.port = port.value().value_or(call.implicitTls ? kDefaultSmtpsPort : kDefaultSmtpPort);
  if (std::optional<std::string> caFile = detail::readString(fields, "ca_file")) {
    call.caFile = detail::resolvePath(*caFile, baseDirectory_);
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
  if (const Value *html = field("html"); html != nullptr && !html->isNull()) {
    if (!html->isString()) {
      return invalidMessage(
          fmt::format("'html' of an email must be a string, found {}", describeValue(*html)));
    }
    call.message.html = html->asString();
  }
  if (const Value *attachments = field("attachments")) {
    Result<std::vector<detail::MailAttachment>> read =
        readAttachments(*attachments, fields.contains("attachments"));
    if (!read.ok()) {
      return std::move(read).error();
    }
    call.message.attachments = std::move(read).value();
  }
  const runtime::AttemptIdentity &identity = context.identity();
  call.message.messageId = detail::makeMessageId(identity.runId, identity.stepId,
                                                 identity.commandId, call.message.from.address);
  call.message.date = detail::currentMailDate();
  return call;
}

// `attachments` in an implementation: an array of objects, each naming a `path` or giving
// `content_base64`; their strings may be templates.
std::optional<WorkflowError> checkAttachments(const runtime::ImplementationRequest &request) {
  const Value *list = request.implementation.asObject().find("attachments");
  if (list == nullptr || list->isNull()) {
    return std::nullopt;
  }
  auto problem = [&](std::string what) {
    return detail::invalidImplementation(
        request.activityName,
        fmt::format("'attachments' of the email implementation {}; write [{{path: "
                    "\"terms.pdf\"}}, {{filename: \"a.csv\", content_base64: \"...\"}}]",
                    what));
  };
  if (!list->isArray()) {
    return problem(fmt::format("must be an array, found {}", describeValue(*list)));
  }
  for (const Value &item : list->asArray()) {
    if (!item.isObject()) {
      return problem(fmt::format("holds {}, not an object", describeValue(item)));
    }
    const Object &fields = item.asObject();
    if (fields.contains("path") == fields.contains("content_base64")) {
      return problem("needs exactly one of 'path' and 'content_base64' in each attachment");
    }
    for (const ObjectEntry &entry : fields) {
      bool known = entry.key == "path" || entry.key == "content_base64" ||
                   entry.key == "filename" || entry.key == "content_type";
      if (!known || !entry.value.isString()) {
        return problem(fmt::format("has '{}: {}'; an attachment takes the strings path, "
                                   "content_base64, filename and content_type",
                                   entry.key, describeValue(entry.value)));
      }
    }
  }
  return std::nullopt;
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
                                  {"server", "port", "starttls", "implicit_tls", "ca_file",
                                   "username", "password", "from", "to", "cc", "bcc", "subject",
                                   "text", "html", "attachments", "timeout"}),
          check.required("server", kEmailExample), check.required("from", kEmailExample),
          check.string("server"), check.integer("port", 1, 65535), check.boolean("starttls"),
          check.boolean("implicit_tls"), check.string("ca_file"), check.string("username"),
          check.string("password"), check.string("from"), check.strings("to"), check.strings("cc"),
          check.strings("bcc"), check.string("subject"), check.string("text"), check.string("html"),
          checkAttachments(request), check.duration("timeout")}) {
      if (problem) {
        return std::move(*problem);
      }
    }
    Result<runtime::TemplateValue> compiled = runtime::TemplateValue::compile(
        request.implementation, fmt::format("activity '{}' implementation", request.activityName));
    if (!compiled.ok()) {
      return std::move(compiled).error();
    }
    const Object &fields = request.implementation.asObject();
    const Value *starttls = fields.find("starttls");
    const Value *implicitTls = fields.find("implicit_tls");
    if (starttls != nullptr && implicitTls != nullptr && starttls->asBool() &&
        implicitTls->asBool()) {
      return detail::invalidImplementation(
          request.activityName, "'starttls' and 'implicit_tls' exclude each other; use "
                                "implicit_tls for a server that speaks TLS from the first byte "
                                "(smtps, port 465), starttls for one that upgrades (port 587)");
    }
    return std::shared_ptr<runtime::Activity>(
        std::make_shared<EmailActivity>(request.activityName, std::move(compiled).value(),
                                        request.baseDirectory, request.environment));
  };
}

} // namespace kotoba::stdlib
