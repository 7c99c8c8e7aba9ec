// The email activity's MIME messages and implicit TLS against the loopback SMTP server
// (loopback_smtp_server.h), with smtps and STARTTLS behind a TLS front and certificates the
// test makes (loopback_tls.h): an HTML body goes with the text as multipart/alternative,
// attachments from files and from base64 arrive byte for byte in multipart/mixed, files stay the
// implementation's to name, and nothing in a subject, an address or an attachment's name or
// type can start a header of its own.
#include "loopback_smtp_server.h"
#include "loopback_tls.h"
#include "stdlib_test_support.h"

#include "kotoba/runtime/function.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fstream>

namespace kotoba::stdlib {
namespace {

using namespace testing;

// One MIME entity: its header lines (each ending in CRLF) and its body.
struct Entity {
  std::string headers;
  std::string body;
};

Entity splitEntity(std::string_view text) {
  size_t end = text.find("\r\n\r\n");
  REQUIRE(end != std::string_view::npos);
  return Entity{std::string(text.substr(0, end + 2)), std::string(text.substr(end + 4))};
}

// The header `name`, continuation lines unfolded; empty when absent.
std::string headerOf(const Entity &entity, std::string_view name) {
  std::string prefix = std::string(name) + ": ";
  size_t start = entity.headers.starts_with(prefix) ? 0 : entity.headers.find("\r\n" + prefix);
  if (start == std::string::npos) {
    return "";
  }
  start += start == 0 ? prefix.size() : prefix.size() + 2;
  std::string value;
  while (true) {
    size_t end = entity.headers.find("\r\n", start);
    value += entity.headers.substr(start, end - start);
    if (end + 2 >= entity.headers.size() || entity.headers[end + 2] != ' ') {
      return value;
    }
    start = end + 2;
  }
}

// The names of every header line of an entity, in order.
std::vector<std::string> headerNames(const Entity &entity) {
  std::vector<std::string> names;
  size_t start = 0;
  while (start < entity.headers.size()) {
    size_t end = entity.headers.find("\r\n", start);
    std::string line = entity.headers.substr(start, end - start);
    if (!line.starts_with(" ")) {
      names.push_back(line.substr(0, line.find(':')));
    }
    start = end + 2;
  }
  return names;
}

// The parts of a multipart entity.
std::vector<Entity> partsOf(const Entity &entity) {
  std::string type = headerOf(entity, "Content-Type");
  size_t open = type.find("boundary=\"");
  REQUIRE_MESSAGE(open != std::string::npos, type);
  open += 10;
  std::string boundary = "--" + type.substr(open, type.find('"', open) - open);
  std::vector<Entity> parts;
  size_t start = entity.body.find(boundary + "\r\n");
  REQUIRE(start == 0);
  while (true) {
    start += boundary.size() + 2;
    size_t next = entity.body.find("\r\n" + boundary, start);
    REQUIRE(next != std::string::npos);
    parts.push_back(splitEntity(entity.body.substr(start, next + 2 - start)));
    start = next + 2;
    if (entity.body.compare(start, boundary.size() + 2, boundary + "--") == 0) {
      CHECK(entity.body.substr(start) == boundary + "--\r\n");
      return parts;
    }
  }
}

// A part's body with its transfer encoding undone.
std::string contentOf(const Entity &part) {
  std::string encoding = headerOf(part, "Content-Transfer-Encoding");
  return encoding == "base64" ? base64Decode(part.body) : part.body;
}

std::string someBytes() {
  std::string bytes("\0\x01\xff\xfe\x80\xc3(binary)\r\n.\r\n", 17);
  for (int i = 0; i < 5000; ++i) {
    bytes += char((i * 131 + 7) % 256);
  }
  return bytes;
}

std::shared_ptr<runtime::Activity> mailer(int port, std::string_view fields,
                                          const std::string &baseDirectory = "") {
  return declare(json(fmt::format(R"({{"type": "email", "server": "127.0.0.1", "port": {},
      "from": "Shop <shop@example.com>", "to": "ann@example.org"{}{}}})",
                                  port, fields.empty() ? "" : ", ", fields)),
                 baseDirectory);
}

TEST_CASE("an html body goes with the text as multipart/alternative") {
  LoopbackSmtpServer server;
  auto mail = mailer(server.port(), R"("subject": "Shipped",
      "text": "Your order left.\n", "html": "<p>Your order <b>left</b> — ü.</p>")");

  Result<Value> result = attempt(*mail, Value());

  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  REQUIRE(server.mails().size() == 1);
  Entity message = splitEntity(server.mails()[0].data);
  CHECK(headerOf(message, "MIME-Version") == "1.0");
  CHECK(headerOf(message, "Content-Type").starts_with("multipart/alternative; boundary="));
  std::vector<Entity> parts = partsOf(message);
  REQUIRE(parts.size() == 2);
  CHECK(headerOf(parts[0], "Content-Type") == "text/plain; charset=utf-8");
  CHECK(contentOf(parts[0]) == "Your order left.\r\n");
  CHECK(headerOf(parts[1], "Content-Type") == "text/html; charset=utf-8");
  CHECK(headerOf(parts[1], "Content-Transfer-Encoding") == "base64");
  CHECK(contentOf(parts[1]) == "<p>Your order <b>left</b> — ü.</p>");
}

TEST_CASE("attachments from a file and from base64 arrive byte for byte in multipart/mixed") {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "files");
  const std::string pdf = "%PDF-1.4\n" + someBytes();
  std::ofstream(dir.file("files/terms.pdf"), std::ios::binary) << pdf;
  const std::string csv = "sku,qty\nA-1,2\n";
  LoopbackSmtpServer server;
  auto mail = mailer(server.port(), R"("subject": "Invoice", "text": "See attached.",
      "html": "<p>See attached.</p>",
      "attachments": [{"path": "files/terms.pdf"},
                      {"filename": "${$.input.name}", "content_base64": "${$.input.data}"},
                      {"filename": "lines.csv", "content_base64": "${$.input.csv}",
                       "content_type": "text/csv"}])",
                     dir.path().string());
  Object input;
  input.set("name", "Rechnung März.bin");
  input.set("data", base64Encode(someBytes()));
  input.set("csv", base64Encode(csv));

  Result<Value> result = attempt(*mail, Value(std::move(input)));

  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  REQUIRE(server.mails().size() == 1);
  Entity message = splitEntity(server.mails()[0].data);
  CHECK(headerOf(message, "Content-Type").starts_with("multipart/mixed; boundary="));
  std::vector<Entity> parts = partsOf(message);
  REQUIRE(parts.size() == 4);
  CHECK(headerOf(parts[0], "Content-Type").starts_with("multipart/alternative; boundary="));
  std::vector<Entity> bodies = partsOf(parts[0]);
  REQUIRE(bodies.size() == 2);
  CHECK(contentOf(bodies[0]) == "See attached.\r\n");
  CHECK(contentOf(bodies[1]) == "<p>See attached.</p>\r\n");

  CHECK(headerOf(parts[1], "Content-Type") == "application/pdf");
  CHECK(headerOf(parts[1], "Content-Disposition") == "attachment; filename=\"terms.pdf\"");
  CHECK(contentOf(parts[1]) == pdf);
  CHECK(headerOf(parts[2], "Content-Type") == "application/octet-stream");
  CHECK(headerOf(parts[2], "Content-Disposition") ==
        "attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.bin");
  CHECK(contentOf(parts[2]) == someBytes());
  CHECK(headerOf(parts[3], "Content-Type") == "text/csv");
  CHECK(contentOf(parts[3]) == csv);
}

TEST_CASE("attachments from the input carry content; only the implementation names files") {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "files");
  std::ofstream(dir.file("files/a.txt")) << "a";
  std::ofstream(dir.file("secret.txt")) << "secret";
  LoopbackSmtpServer server;
  auto fromInput = mailer(server.port(), R"("subject": "s", "text": "t")", dir.path().string());
  auto templated = mailer(server.port(), R"("subject": "s", "text": "t",
      "attachments": [{"path": "files/${$.input.name}"}])",
                          dir.path().string());

  Result<Value> inlined =
      attempt(*fromInput,
              json(R"({"attachments": [{"filename": "x.txt", "content_base64": "aGVsbG8="}]})"));
  WorkflowError namesFile =
      failureOf(attempt(*fromInput, json(R"({"attachments": [{"path": "secret.txt"}]})")));
  WorkflowError climbs = failureOf(attempt(*templated, json(R"({"name": "../secret.txt"})")));
  Result<Value> inside = attempt(*templated, json(R"({"name": "a.txt"})"));
  WorkflowError notBase64 = failureOf(attempt(
      *fromInput, json(R"({"attachments": [{"filename": "x", "content_base64": "@@@"}]})")));

  REQUIRE_MESSAGE(inlined.ok(), (inlined.ok() ? "" : inlined.error().message));
  REQUIRE(inside.ok());
  CHECK(namesFile.type == runtime::kInvalidInput);
  CHECK(namesFile.message.find("only the implementation may name files") != std::string::npos);
  CHECK(climbs.type == runtime::kInvalidInput);
  CHECK(climbs.message.find("may not hold '..'") != std::string::npos);
  CHECK(notBase64.message.find("is not base64") != std::string::npos);
  std::vector<CapturedMail> mails = server.mails();
  REQUIRE(mails.size() == 2);
  CHECK(contentOf(partsOf(splitEntity(mails[0].data))[1]) == "hello");
  for (const CapturedMail &mail : mails) {
    CHECK(mail.data.find(base64Encode("secret")) == std::string::npos);
  }
}

TEST_CASE("CR or LF in a subject, address, attachment name or type never makes a header") {
  LoopbackSmtpServer server;
  auto mail = mailer(server.port(), R"("cc": "${$.input.cc}", "subject": "${$.input.subject}",
      "text": "t", "html": "<p>h</p>",
      "attachments": [{"filename": "${$.input.file}", "content_base64": "eA==",
                       "content_type": "${$.input.type}"}])");
  auto with = [](std::string_view field, std::string_view value) {
    Object input;
    input.set("cc", "ops@example.com");
    input.set("subject", "hello");
    input.set("file", "a.txt");
    input.set("type", "text/plain");
    input.set(std::string(field), std::string(value));
    return Value(std::move(input));
  };
  const std::pair<const char *, const char *> attempts[] = {
      {"subject", "hi\r\nBcc: victim@example.net"},
      {"subject", "hi\nX-Injected: 1"},
      {"cc", "Ops\r\nBcc: victim@example.net <ops@example.com>"},
      {"cc", "ops@example.com\r\nBcc: victim@example.net"},
      {"file", "a.txt\r\nBcc: victim@example.net"},
      {"file", "a.txt\"\r\nX-Injected: 1"},
      {"type", "text/plain\r\nBcc: victim@example.net"},
      {"type", "text/plain; name=x"},
  };

  for (auto [field, value] : attempts) {
    CAPTURE(field);
    CAPTURE(value);
    WorkflowError error = failureOf(attempt(*mail, with(field, value)));
    CHECK(error.type == runtime::kInvalidInput);
    CHECK_FALSE(error.retryable);
  }
  Result<Value> quoted = attempt(*mail, with("file", "say \"hi\".txt"));

  REQUIRE_MESSAGE(quoted.ok(), (quoted.ok() ? "" : quoted.error().message));
  std::vector<CapturedMail> mails = server.mails();
  REQUIRE(mails.size() == 1); // only the last, harmless one was sent
  Entity message = splitEntity(mails[0].data);
  CHECK(headerNames(message) == std::vector<std::string>{"Date", "From", "To", "Cc", "Subject",
                                                         "Message-ID", "MIME-Version",
                                                         "Content-Type"});
  std::vector<Entity> parts = partsOf(message);
  REQUIRE(parts.size() == 2);
  CHECK(headerNames(parts[1]) == std::vector<std::string>{"Content-Type",
                                                          "Content-Transfer-Encoding",
                                                          "Content-Disposition"});
  CHECK(headerOf(parts[1], "Content-Disposition") ==
        "attachment; filename*=UTF-8''say%20%22hi%22.txt");
  CHECK(mails[0].data.find("victim") == std::string::npos);
  CHECK(mails[0].recipients == std::vector<std::string>{"ann@example.org", "ops@example.com"});
}

TEST_CASE("implicit_tls speaks TLS from the first byte and checks the server's certificate") {
  TempDir dir;
  TestCertificates certificates(dir.path());
  LoopbackSmtpServer server;
  TlsTerminator front(certificates, server.port());
  auto trusted = mailer(front.port(), fmt::format(R"("implicit_tls": true, "ca_file": "{}",
      "subject": "over TLS", "text": "sealed")",
                                                  certificates.ca));
  auto untrusted = mailer(front.port(), fmt::format(R"("implicit_tls": true, "ca_file": "{}",
      "subject": "over TLS", "text": "sealed")",
                                                    certificates.otherCa));
  auto plain = mailer(front.port(), R"("subject": "s", "text": "t", "timeout": "2s")");
  auto missingCa = mailer(front.port(), R"("implicit_tls": true, "ca_file": "no-such-ca.pem",
      "subject": "s", "text": "t")",
                          dir.path().string());

  Result<Value> sent = attempt(*trusted, Value());
  size_t commandsAfterSent = server.commands().size();
  WorkflowError refused = failureOf(attempt(*untrusted, Value()));
  WorkflowError notTls = failureOf(attempt(*plain, Value()));
  WorkflowError noCa = failureOf(attempt(*missingCa, Value()));

  REQUIRE_MESSAGE(sent.ok(), (sent.ok() ? "" : sent.error().message));
  REQUIRE(server.mails().size() == 1);
  CHECK(splitEntity(server.mails()[0].data).body == "sealed\r\n");
  CHECK(refused.type == stdlib_errors::ConnectionError);
  CHECK_FALSE(refused.retryable);
  CHECK(refused.message.find("certificate") != std::string::npos);
  CHECK(refused.message.find("ca_file") != std::string::npos);
  // Neither the refused client nor a client speaking plain SMTP to a TLS port got a word
  // through to the server.
  CHECK(server.commands().size() == commandsAfterSent);
  CHECK(server.mails().size() == 1);
  CHECK(notTls.retryable);
  CHECK(noCa.type == stdlib_errors::ConnectionError);
  CHECK_FALSE(noCa.retryable);
  CHECK(noCa.message.find("cannot be read") != std::string::npos);
}

TEST_CASE("starttls upgrades before the login and the message, and checks the certificate") {
  TempDir dir;
  TestCertificates certificates(dir.path());
  SmtpBehaviour behaviour;
  behaviour.requiredLogin = std::string("shop") + char(0) + "pw-secret-7";
  LoopbackSmtpServer server(behaviour);
  TlsTerminator front(certificates, server.port(), TlsStart::SmtpStarttls);
  std::string fields = R"("starttls": true, "ca_file": "{}", "username": "shop",
      "password": "${{$.env.SMTP_PASSWORD}}", "subject": "s", "text": "upgraded")";
  auto trusted =
      declare(json(fmt::format(R"({{"type": "email", "server": "127.0.0.1", "port": {},
      "from": "shop@example.com", "to": "ann@example.org", {}}})",
                               front.port(), fmt::format(fmt::runtime(fields), certificates.ca))),
              "", {{"SMTP_PASSWORD", "pw-secret-7"}});
  auto untrusted = declare(
      json(fmt::format(R"({{"type": "email", "server": "127.0.0.1", "port": {},
      "from": "shop@example.com", "to": "ann@example.org", {}}})",
                       front.port(), fmt::format(fmt::runtime(fields), certificates.otherCa))),
      "", {{"SMTP_PASSWORD", "pw-secret-7"}});

  Result<Value> sent = attempt(*trusted, Value());
  size_t commandsAfterSent = server.commands().size();
  WorkflowError refused = failureOf(attempt(*untrusted, Value()));

  REQUIRE_MESSAGE(sent.ok(), (sent.ok() ? "" : sent.error().message));
  std::vector<CapturedMail> mails = server.mails();
  REQUIRE(mails.size() == 1);
  CHECK(mails[0].login == std::string("shop") + char(0) + "pw-secret-7");
  CHECK(splitEntity(mails[0].data).body == "upgraded\r\n");
  // The SMTP server behind the front hears only what was said after the upgrade: the
  // second EHLO first, then the login.
  std::vector<std::string> commands = server.commands();
  REQUIRE(commands.size() >= 2);
  CHECK(commands[0].starts_with("EHLO"));
  CHECK(commands[1].starts_with("AUTH PLAIN"));
  CHECK(refused.type == stdlib_errors::ConnectionError);
  CHECK_FALSE(refused.retryable);
  CHECK(refused.message.find("certificate") != std::string::npos);
  CHECK(refused.message.find("pw-secret-7") == std::string::npos);
  CHECK(server.commands().size() == commandsAfterSent);
}

TEST_CASE("implicit_tls defaults to port 465 and excludes starttls") {
  Result<std::shared_ptr<runtime::Activity>> both = tryDeclare(json(R"({"type": "email",
      "server": "h", "from": "a@b.c", "starttls": true, "implicit_tls": true})"));

  REQUIRE_FALSE(both.ok());
  CHECK(both.error().message.find("exclude each other") != std::string::npos);
  auto smtps = declare(json(R"({"type": "email", "server": "127.0.0.1", "from": "a@example.com",
      "to": "b@example.com", "implicit_tls": true, "timeout": "1s"})"));
  WorkflowError error = failureOf(attempt(*smtps, Value()));
  CHECK(error.details.asObject().find("port")->asInt() == 465);
}

} // namespace
} // namespace kotoba::stdlib
