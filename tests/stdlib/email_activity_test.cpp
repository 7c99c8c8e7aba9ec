// The email activity against a real SMTP server on 127.0.0.1 (loopback_smtp_server.h): the
// envelope and the message as the server captured them, encodings of non-ASCII text, logins
// with credentials from `$.env`, refusals and their retry rules, STARTTLS required of a
// server that lacks it, and header injection attempts refused before anything is sent.
#include "loopback_smtp_server.h"
#include "stdlib_test_support.h"

#include "kotoba/runtime/function.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

namespace kotoba::stdlib {
namespace {

using namespace testing;

std::shared_ptr<runtime::Activity> mailerFor(const LoopbackSmtpServer &server,
                                             std::string_view fields,
                                             std::map<std::string, std::string> environment = {}) {
  std::string text = fmt::format(R"({{"type": "email", "server": "127.0.0.1", "port": {},
      "from": "Shop <shop@example.com>"{}{}}})",
                                 server.port(), fields.empty() ? "" : ", ", fields);
  return declare(json(text), "", std::move(environment));
}

// The value of header `name` in a captured message (the first line of it).
std::string headerOf(const std::string &data, const std::string &name) {
  size_t start = data.find("\r\n" + name + ": ");
  if (data.starts_with(name + ": ")) {
    start = 0;
  } else if (start != std::string::npos) {
    start += 2;
  } else {
    return "";
  }
  start += name.size() + 2;
  return data.substr(start, data.find("\r\n", start) - start);
}

std::string bodyOf(const std::string &data) {
  return data.substr(data.find("\r\n\r\n") + 4);
}

TEST_CASE("an email reaches the server with its envelope, headers and text") {
  LoopbackSmtpServer server;
  auto mailer = mailerFor(server, R"("to": "${$.input.customer}",
      "cc": ["ops@example.com"], "bcc": "audit@example.com",
      "subject": "Order ${$.input.id} shipped", "text": "Hello,\nyour order left.\n")");

  Result<Value> result =
      attempt(*mailer, json(R"({"customer": "Ann Lee <ann@example.org>", "id": "o-7"})"));

  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  std::vector<CapturedMail> mails = server.mails();
  REQUIRE(mails.size() == 1);
  const CapturedMail &mail = mails[0];
  CHECK(mail.mailFrom == "shop@example.com");
  CHECK(mail.recipients ==
        std::vector<std::string>{"ann@example.org", "ops@example.com", "audit@example.com"});
  CHECK(headerOf(mail.data, "From") == "Shop <shop@example.com>");
  CHECK(headerOf(mail.data, "To") == "Ann Lee <ann@example.org>");
  CHECK(headerOf(mail.data, "Cc") == "ops@example.com");
  CHECK(headerOf(mail.data, "Subject") == "Order o-7 shipped");
  CHECK(headerOf(mail.data, "Content-Transfer-Encoding") == "7bit");
  CHECK(mail.data.find("audit@example.com") == std::string::npos);
  CHECK(bodyOf(mail.data) == "Hello,\r\nyour order left.\r\n");
  std::string messageId = result->asObject().find("message_id")->asString();
  CHECK(headerOf(mail.data, "Message-ID") == messageId);
  CHECK(messageId.starts_with("<kotoba.run-1.step_a.c7."));
  CHECK(messageId.ends_with("@example.com>"));
}

TEST_CASE("non-ASCII subjects and text are encoded and arrive intact") {
  LoopbackSmtpServer server;
  std::string subject = "Ihre Bestellung ist unterwegs — 注文は発送されました 🎉 and more words "
                        "to need a second encoded word";
  std::string text = "Grüße aus Köln\n.a line that starts with a dot\n.\nend";
  auto mailer = mailerFor(server, R"("to": "ann@example.org", "subject": "${$.input.subject}",
      "text": "${$.input.text}")");
  Object input;
  input.set("subject", subject);
  input.set("text", text);

  REQUIRE(attempt(*mailer, Value(input)).ok());

  REQUIRE(server.mails().size() == 1);
  std::string data = server.mails()[0].data;
  CHECK(headerOf(data, "Content-Transfer-Encoding") == "base64");
  // The subject is encoded words on folded lines; unfold and decode each.
  size_t start = data.find("Subject: ") + 9;
  std::string folded = data.substr(start, data.find("\r\nMessage-ID") - start);
  std::string decoded;
  size_t word = 0;
  while ((word = folded.find("=?UTF-8?B?", word)) != std::string::npos) {
    size_t end = folded.find("?=", word + 10);
    decoded += base64Decode(folded.substr(word + 10, end - word - 10));
    word = end;
  }
  CHECK(decoded == subject);
  for (size_t lineStart = 0;;) {
    size_t lineEnd = std::min(folded.find("\r\n", lineStart), folded.size());
    CHECK(lineEnd - lineStart < 78);
    if (lineEnd == folded.size()) {
      break;
    }
    lineStart = lineEnd + 2;
  }
  CHECK(base64Decode(bodyOf(data)) ==
        "Grüße aus Köln\r\n.a line that starts with a dot\r\n.\r\nend");
}

TEST_CASE("a plain ASCII body keeps its dot lines through SMTP's dot-stuffing") {
  LoopbackSmtpServer server;
  auto mailer = mailerFor(server, R"("to": "ann@example.org", "subject": "dots",
      "text": "first\n.\n..two\nlast")");

  REQUIRE(attempt(*mailer, Value()).ok());

  REQUIRE(server.mails().size() == 1);
  CHECK(bodyOf(server.mails()[0].data) == "first\r\n.\r\n..two\r\nlast\r\n");
}

TEST_CASE("recipients, subject and text may come from the input") {
  LoopbackSmtpServer server;
  auto mailer = mailerFor(server, "");

  Result<Value> result = attempt(*mailer, json(R"({"to": ["a@example.org", "b@example.org"],
      "cc": "c@example.org", "bcc": "", "subject": "From the input",
      "text": "built by the workflow"})"));

  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  REQUIRE(server.mails().size() == 1);
  CapturedMail mail = server.mails()[0];
  CHECK(mail.recipients ==
        std::vector<std::string>{"a@example.org", "b@example.org", "c@example.org"});
  CHECK(mail.data.find("To: a@example.org,\r\n b@example.org\r\n") != std::string::npos);
  CHECK(headerOf(mail.data, "Subject") == "From the input");
  CHECK(bodyOf(mail.data) == "built by the workflow\r\n");
}

TEST_CASE("credentials from $.env log in, and a refused login hides the password") {
  SmtpBehaviour behaviour;
  behaviour.requiredLogin = std::string("mailer\0p4ss-w0rd-xyz", 20);
  LoopbackSmtpServer server(behaviour);
  std::string fields = R"("to": "ann@example.org", "subject": "s", "text": "t",
      "username": "${$.env.SMTP_USER}", "password": "${$.env.SMTP_PASSWORD}")";
  auto good =
      mailerFor(server, fields, {{"SMTP_USER", "mailer"}, {"SMTP_PASSWORD", "p4ss-w0rd-xyz"}});
  auto bad =
      mailerFor(server, fields, {{"SMTP_USER", "mailer"}, {"SMTP_PASSWORD", "wrong-password-123"}});

  Result<Value> sent = attempt(*good, Value());
  WorkflowError refused = failureOf(attempt(*bad, Value()));

  REQUIRE_MESSAGE(sent.ok(), (sent.ok() ? "" : sent.error().message));
  REQUIRE(server.mails().size() == 1);
  CHECK(server.mails()[0].login == std::string("mailer\0p4ss-w0rd-xyz", 20));
  CHECK(refused.type == stdlib_errors::SmtpError);
  CHECK_FALSE(refused.retryable);
  CHECK(refused.message.find("refused the login") != std::string::npos);
  std::string everything = toJson(refused.toValue());
  CHECK(everything.find("wrong-password-123") == std::string::npos);
}

TEST_CASE("a refused recipient fails for good, a temporary refusal may be retried") {
  SmtpBehaviour refusing;
  refusing.refusedRecipients = {"nobody@example.org"};
  LoopbackSmtpServer strict(refusing);
  SmtpBehaviour busy;
  busy.dataReply = "451 4.3.0 try again later";
  LoopbackSmtpServer later(busy);

  WorkflowError unknown = failureOf(attempt(
      *mailerFor(strict, R"("to": "nobody@example.org", "subject": "s", "text": "t")"), Value()));
  WorkflowError deferred = failureOf(attempt(
      *mailerFor(later, R"("to": "ann@example.org", "subject": "s", "text": "t")"), Value()));

  CHECK(unknown.type == stdlib_errors::SmtpError);
  CHECK_FALSE(unknown.retryable);
  CHECK(unknown.details.asObject().find("smtp_code")->asInt() == 550);
  CHECK(strict.mails().empty());
  CHECK(deferred.type == stdlib_errors::SmtpError);
  CHECK(deferred.retryable);
  CHECK(deferred.details.asObject().find("smtp_code")->asInt() == 451);
}

TEST_CASE("starttls against a server without STARTTLS sends nothing in the clear") {
  LoopbackSmtpServer server;
  auto mailer = mailerFor(server, R"("starttls": true, "to": "ann@example.org",
      "subject": "s", "text": "secret text", "username": "u", "password": "${$.env.PW}")",
                          {{"PW", "hunter2-long"}});

  WorkflowError error = failureOf(attempt(*mailer, Value()));

  CHECK(error.type == stdlib_errors::SmtpError);
  CHECK(error.message.find("does not offer STARTTLS") != std::string::npos);
  CHECK(server.mails().empty());
  for (const std::string &command : server.commands()) {
    CHECK_FALSE(command.starts_with("AUTH"));
    CHECK_FALSE(command.starts_with("MAIL"));
  }
}

TEST_CASE("line breaks in a subject or an address are refused before connecting") {
  LoopbackSmtpServer server;
  auto mailer = mailerFor(server, R"("to": "${$.input.to}", "subject": "${$.input.subject}",
      "text": "t")");

  WorkflowError subject = failureOf(attempt(
      *mailer, json(R"({"to": "ann@example.org", "subject": "hi\r\nBcc: victim@example.net"})")));
  WorkflowError address =
      failureOf(attempt(*mailer, json(R"({"to": "ann@example.org\r\nBcc: victim@example.net",
                                "subject": "hi"})")));
  WorkflowError list = failureOf(
      attempt(*mailer, json(R"({"to": "a@example.org, b@example.org", "subject": "x"})")));

  CHECK(subject.type == runtime::kInvalidInput);
  CHECK(subject.message.find("must be one line") != std::string::npos);
  CHECK(address.type == runtime::kInvalidInput);
  CHECK(list.type == runtime::kInvalidInput);
  CHECK(list.message.find("not one e-mail address") != std::string::npos);
  CHECK(server.commands().empty());
}

TEST_CASE("every attempt of one call sends the same Message-ID") {
  LoopbackSmtpServer server;
  auto mailer = mailerFor(server, R"("to": "ann@example.org", "subject": "s", "text": "t")");
  auto cancellation = std::make_shared<runtime::CancellationSignal>();
  runtime::AttemptIdentity second = runtime::testing::testIdentity("notify", 2);
  runtime::AttemptIdentity otherCall = second;
  otherCall.commandId = 8;
  runtime::ActivityContext secondContext(second, cancellation);
  runtime::ActivityContext otherContext(otherCall, cancellation);

  Result<Value> first = attempt(*mailer, Value());
  Result<Value> retry = runtime::runActivity(*mailer, Value(), secondContext);
  Result<Value> other = runtime::runActivity(*mailer, Value(), otherContext);

  REQUIRE(first.ok());
  REQUIRE(retry.ok());
  REQUIRE(other.ok());
  CHECK(first.value() == retry.value());
  CHECK_FALSE(first.value() == other.value());
}

TEST_CASE("an unreachable SMTP server is a retryable ConnectionError") {
  int closedPort = 0;
  {
    LoopbackSmtpServer gone;
    closedPort = gone.port();
  }
  auto mailer = declare(json(fmt::format(R"({{"type": "email", "server": "127.0.0.1",
      "port": "{}", "from": "shop@example.com", "to": "ann@example.org"}})",
                                         closedPort)));

  WorkflowError error = failureOf(attempt(*mailer, Value()));

  CHECK(error.type == stdlib_errors::ConnectionError);
  CHECK(error.retryable);
}

TEST_CASE("email implementations and messages with mistakes are refused with the fix") {
  struct Case {
    const char *implementation;
    const char *message;
  };
  const Case cases[] = {
      {R"({"type": "email", "from": "a@b.c"})", "the email implementation needs 'server'"},
      {R"({"type": "email", "server": "h", "from": "a@b.c", "bc": "x@y.z"})",
       "unknown field 'bc' in the email implementation"},
      {R"({"type": "email", "server": "h", "from": "a@b.c", "port": 70000})",
       "'port' must be an integer from 1 to 65535, found integer 70000"},
      {R"({"type": "email", "server": "h", "from": "a@b.c", "to": [1]})",
       "'to' of the email implementation must be a string or an array of strings"},
      {R"({"type": "email", "server": "h", "from": "a@b.c", "starttls": "yes"})",
       "'starttls' of the email implementation must be true or false"},
  };
  for (const Case &testCase : cases) {
    CAPTURE(testCase.implementation);
    Result<std::shared_ptr<runtime::Activity>> activity = tryDeclare(json(testCase.implementation));
    REQUIRE_FALSE(activity.ok());
    CHECK(activity.error().type == runtime::activity_errors::InvalidImplementation);
    CHECK_MESSAGE(activity.error().message.find(testCase.message) != std::string::npos,
                  activity.error().message);
  }
  auto noRecipient =
      declare(json(R"({"type": "email", "server": "127.0.0.1", "from": "a@example.com"})"));
  WorkflowError error = failureOf(attempt(*noRecipient, json(R"({"subject": "x"})")));
  CHECK(error.type == runtime::kInvalidInput);
  CHECK(error.message.find("needs a recipient") != std::string::npos);
}

} // namespace
} // namespace kotoba::stdlib
