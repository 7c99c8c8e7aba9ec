// The http activity's url templates, binary bodies, https and Retry-After, against the real
// loopback HTTP server (loopback_http_server.h), and behind a TLS front with certificates the
// test makes (loopback_tls.h): values from the input arrive as exactly one percent-encoded
// path segment whatever they hold, `url_values: "raw"` is the explicit way out, any bytes come
// back as base64, a trusted CA connects and an untrusted one fails for good naming the
// certificate's problem, and Retry-After in either form reaches the error's details.
#include "loopback_http_server.h"
#include "loopback_smtp_server.h" // base64Decode
#include "loopback_tls.h"
#include "stdlib_test_support.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <ctime>
#include <fstream>
#include <random>

namespace kotoba::stdlib {
namespace {

using namespace testing;

CannedResponse okAnswer() {
  CannedResponse response;
  response.headers = {{"Content-Type", "application/json"}};
  response.body = "{}";
  return response;
}

std::string percentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      out += char(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::vector<std::string> splitPath(std::string_view target) {
  std::vector<std::string> segments;
  size_t start = 1; // after the leading '/'
  while (start <= target.size()) {
    size_t end = std::min(target.find('/', start), target.size());
    segments.emplace_back(target.substr(start, end - start));
    start = end + 1;
  }
  return segments;
}

TEST_CASE("an input value in a url is one percent-encoded path segment, whatever it holds") {
  LoopbackHttpServer server([](const ReceivedRequest &) { return okAnswer(); });
  auto call = declare(json(fmt::format(R"({{"type": "http",
      "url": "{}/files/${{$.input.name}}/meta", "query": {{"v": "${{$.input.name}}"}}}})",
                                       server.url(""))));
  struct Case {
    const char *value;
    const char *segment;
  };
  const Case cases[] = {
      {"a/../b?x=1#f", "a%2F..%2Fb%3Fx%3D1%23f"},
      {"'; DROP TABLE x; --", "%27%3B%20DROP%20TABLE%20x%3B%20--"},
      {"$(rm -rf /)", "%24%28rm%20-rf%20%2F%29"},
      {"注文 ü", "%E6%B3%A8%E6%96%87%20%C3%BC"},
      {"100% sure", "100%25%20sure"},
      {"..", "%2E%2E"},
      {".", "%2E"},
      {"a\\b", "a%5Cb"},
  };
  for (const Case &testCase : cases) {
    CAPTURE(testCase.value);
    Object input;
    input.set("name", testCase.value);

    Result<Value> result = attempt(*call, Value(std::move(input)));

    REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
    std::string target = server.received().back().target;
    std::string path = target.substr(0, target.find('?'));
    std::vector<std::string> segments = splitPath(path);
    REQUIRE(segments.size() == 3);
    CHECK(segments[0] == "files");
    CHECK(segments[1] == testCase.segment);
    CHECK(segments[2] == "meta");
    CHECK(percentDecode(segments[1]) == testCase.value);
    // The query is encoded once, not twice.
    CHECK(percentDecode(target.substr(target.find("?v=") + 3)) == testCase.value);
  }
  Result<Value> number = attempt(*call, json(R"({"name": 42})"));
  REQUIRE(number.ok());
  CHECK(server.received().back().target.starts_with("/files/42/meta?"));
}

TEST_CASE("env values and literals in a url are configuration and go in as written") {
  LoopbackHttpServer server([](const ReceivedRequest &) { return okAnswer(); });
  std::string base = server.url(""); // no trailing '/'
  auto call = declare(json(R"({"type": "http",
      "url": "${$.env.SHOP_API}/v1/${$.input.kind ?? 'orders/all'}/${$.input.id}",
      "headers": {"X-Id": "${$.input.id}"}, "method": "POST", "body": "${$.input.id}"})"),
                      "", {{"SHOP_API", base}});

  Result<Value> fallback = attempt(*call, json(R"({"id": "a/b c"})"));
  Result<Value> fromInput = attempt(*call, json(R"({"id": "x", "kind": "k/j"})"));

  REQUIRE_MESSAGE(fallback.ok(), (fallback.ok() ? "" : fallback.error().message));
  REQUIRE(fromInput.ok());
  std::vector<ReceivedRequest> requests = server.received();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].target == "/v1/orders/all/a%2Fb%20c");
  // Only the url encodes: the header and the body carry the value as it is.
  CHECK(requests[0].header("x-id") == "a/b c");
  CHECK(requests[0].body == "a/b c");
  CHECK(requests[1].target == "/v1/k%2Fj/x");
}

TEST_CASE("url_values: raw inserts input values as they are, and only when asked") {
  LoopbackHttpServer server([](const ReceivedRequest &) { return okAnswer(); });
  auto raw = declare(json(R"({"type": "http", "url": "${$.input.target}",
      "url_values": "raw"})"));
  auto encoded = declare(json(R"({"type": "http", "url": "${$.input.target}"})"));
  std::string target = server.url("/deep/path?page=2");

  Result<Value> rawResult = attempt(*raw, json(fmt::format(R"({{"target": "{}"}})", target)));
  WorkflowError refused =
      failureOf(attempt(*encoded, json(fmt::format(R"({{"target": "{}"}})", target))));

  REQUIRE_MESSAGE(rawResult.ok(), (rawResult.ok() ? "" : rawResult.error().message));
  REQUIRE(server.received().size() == 1);
  CHECK(server.received()[0].target == "/deep/path?page=2");
  CHECK(refused.type == runtime::activity_errors::InvalidImplementation);
  CHECK(refused.message.find("http%3A%2F%2F127.0.0.1") != std::string::npos);
  CHECK(refused.message.find("url_values: \"raw\"") != std::string::npos);
  Result<std::shared_ptr<runtime::Activity>> typo =
      tryDeclare(json(R"({"type": "http", "url": "http://h/", "url_values": "none"})"));
  REQUIRE_FALSE(typo.ok());
  CHECK(typo.error().message.find("'url_values' must be \"encoded\"") != std::string::npos);
}

std::string randomBytes(size_t size) {
  std::mt19937 generator(20261204);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string bytes;
  for (size_t i = 0; i < size; ++i) {
    bytes += char(byte(generator));
  }
  // Certainly a NUL, a lone continuation byte and a truncated sequence, whatever the draw.
  bytes += std::string("\0\x80\xff\xc3", 4);
  return bytes;
}

TEST_CASE("response_body: base64 returns any bytes, NUL and invalid UTF-8 included") {
  const std::string image = randomBytes(70000);
  LoopbackHttpServer server([&](const ReceivedRequest &request) {
    CannedResponse response;
    response.headers = {
        {"Content-Type", request.target == "/json" ? "application/json" : "image/png"}};
    response.body = request.target == "/json" ? std::string(R"({"a": 1})") : image;
    return response;
  });
  auto fetch = declare(json(fmt::format(R"({{"type": "http", "url": "{}",
      "response_body": "base64"}})",
                                        server.url("/logo.png"))));
  auto bodyOnly = declare(json(fmt::format(R"({{"type": "http", "url": "{}",
      "response_body": "base64", "result": "body"}})",
                                           server.url("/json"))));
  auto plain =
      declare(json(fmt::format(R"({{"type": "http", "url": "{}"}})", server.url("/logo.png"))));

  Result<Value> fetched = attempt(*fetch, Value());
  Result<Value> jsonBytes = attempt(*bodyOnly, Value());
  WorkflowError refused = failureOf(attempt(*plain, Value()));

  REQUIRE_MESSAGE(fetched.ok(), (fetched.ok() ? "" : fetched.error().message));
  const Object &response = fetched->asObject();
  CHECK(response.find("status")->asInt() == 200);
  CHECK(response.find("body") == nullptr);
  CHECK(response.find("headers")->asObject().find("content-type")->asString() == "image/png");
  std::string decoded = base64Decode(response.find("body_base64")->asString());
  CHECK(decoded.size() == image.size());
  CHECK(decoded == image);
  REQUIRE(jsonBytes.ok());
  CHECK(base64Decode(jsonBytes->asString()) == R"({"a": 1})");
  CHECK(refused.type == error_types::InvalidPayload);
  CHECK(refused.message.find("response_body: \"base64\"") != std::string::npos);
}

TEST_CASE("https with ca_file trusts the test's CA, and a relative ca_file starts at the "
          "workflow's directory") {
  TempDir dir;
  TestCertificates certificates(dir.path());
  LoopbackHttpServer server([](const ReceivedRequest &request) {
    CannedResponse response = okAnswer();
    response.body = fmt::format(R"({{"path": "{}"}})", request.target);
    return response;
  });
  TlsTerminator front(certificates, server.port());
  std::string url = fmt::format("https://127.0.0.1:{}/secure/${{$.input.id}}", front.port());
  auto absolute = declare(json(
      fmt::format(R"({{"type": "http", "url": "{}", "ca_file": "{}"}})", url, certificates.ca)));
  auto relative =
      declare(json(fmt::format(R"({{"type": "http", "url": "{}", "ca_file": "ca.pem"}})", url)),
              dir.path().string());

  Result<Value> first = attempt(*absolute, json(R"({"id": "a/b"})"));
  Result<Value> second = attempt(*relative, json(R"({"id": "c"})"));

  REQUIRE_MESSAGE(first.ok(), (first.ok() ? "" : first.error().message));
  REQUIRE_MESSAGE(second.ok(), (second.ok() ? "" : second.error().message));
  CHECK(toJson(*first->asObject().find("body")) == R"({"path":"/secure/a%2Fb"})");
  CHECK(toJson(*second->asObject().find("body")) == R"({"path":"/secure/c"})");
  CHECK(server.received().size() == 2);
}

TEST_CASE("https against a certificate no trusted CA signed fails for good, naming the "
          "problem") {
  TempDir dir;
  TestCertificates certificates(dir.path());
  LoopbackHttpServer server([](const ReceivedRequest &) { return okAnswer(); });
  TlsTerminator front(certificates, server.port());
  std::string url = fmt::format("https://127.0.0.1:{}/secure", front.port());
  auto otherCa = declare(json(fmt::format(R"({{"type": "http", "url": "{}", "ca_file": "{}"}})",
                                          url, certificates.otherCa)));
  auto systemCas = declare(json(fmt::format(R"({{"type": "http", "url": "{}"}})", url)));
  auto missing = declare(json(fmt::format(R"({{"type": "http", "url": "{}",
      "ca_file": "no-such-ca.pem"}})",
                                          url)),
                         dir.path().string());

  WorkflowError untrusted = failureOf(attempt(*otherCa, Value()));
  WorkflowError unknown = failureOf(attempt(*systemCas, Value()));
  WorkflowError unreadable = failureOf(attempt(*missing, Value()));
  std::ofstream(dir.file("not-a-ca.pem")) << "not a certificate\n";
  auto notPem = declare(json(fmt::format(R"({{"type": "http", "url": "{}",
      "ca_file": "not-a-ca.pem"}})",
                                         url)),
                        dir.path().string());
  WorkflowError garbage = failureOf(attempt(*notPem, Value()));

  CHECK(untrusted.type == stdlib_errors::ConnectionError);
  CHECK_FALSE(untrusted.retryable);
  CHECK(untrusted.message.find("refused the server's certificate: SSL certificate problem") !=
        std::string::npos);
  CHECK(untrusted.message.find("not signed by a CA in ca_file") != std::string::npos);
  CHECK(untrusted.details.asObject().find("certificate_problem") != nullptr);
  // Without ca_file the system's CAs decide; a machine without them fails as surely.
  CAPTURE(unknown.message);
  CHECK(unknown.type == stdlib_errors::ConnectionError);
  CHECK_FALSE(unknown.retryable);
  CHECK(unknown.message.find("ca_file") != std::string::npos);
  CHECK(unreadable.type == runtime::activity_errors::InvalidImplementation);
  CHECK(unreadable.message.find("no-such-ca.pem', which cannot be read") != std::string::npos);
  CHECK(garbage.type == stdlib_errors::ConnectionError);
  CHECK_FALSE(garbage.retryable);
  CHECK(garbage.message.find("ca_file must be a PEM file") != std::string::npos);
  CHECK(server.received().empty());
}

TEST_CASE("Retry-After in seconds or as an HTTP date reaches the error as retry_after_ms") {
  std::time_t inOneMinute = std::time(nullptr) + 60;
  std::tm utc{};
  ::gmtime_r(&inOneMinute, &utc);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &utc);
  std::string dateText = date;
  LoopbackHttpServer server([&](const ReceivedRequest &request) {
    CannedResponse response;
    response.status = 503;
    response.reason = "Service Unavailable";
    if (request.target == "/seconds") {
      response.headers = {{"Retry-After", "120"}};
    } else if (request.target == "/date") {
      response.headers = {{"Retry-After", dateText}};
    } else if (request.target == "/past") {
      response.headers = {{"Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT"}};
    } else {
      response.headers = {{"Retry-After", "soon"}};
    }
    return response;
  });
  auto at = [&](const char *path) {
    return failureOf(
        attempt(*declare(json(fmt::format(R"({{"type": "http", "url": "{}"}})", server.url(path)))),
                Value()));
  };

  WorkflowError seconds = at("/seconds");
  WorkflowError dated = at("/date");
  WorkflowError past = at("/past");
  WorkflowError garbage = at("/garbage");

  CHECK(seconds.details.asObject().find("retry_after_ms")->asInt() == 120000);
  int64_t fromDate = dated.details.asObject().find("retry_after_ms")->asInt();
  CHECK(fromDate <= 60000);
  CHECK(fromDate >= 58000);
  CHECK(past.details.asObject().find("retry_after_ms")->asInt() == 0);
  CHECK(garbage.details.asObject().find("retry_after_ms") == nullptr);
  CHECK(seconds.retryable);
}

} // namespace
} // namespace kotoba::stdlib
