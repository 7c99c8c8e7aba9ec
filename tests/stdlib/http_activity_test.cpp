// The http and webhook activities against a real HTTP server on 127.0.0.1
// (loopback_http_server.h): requests as the server sees them, statuses and their retry
// rules, JSON and text bodies, timeouts, cancellation, large bodies, header injection, and
// `$.env` secrets kept out of errors and logs.
#include "loopback_http_server.h"
#include "stdlib_test_support.h"

#include "kotoba/runtime/activity_binding.h"
#include "kotoba/runtime/function.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

namespace kotoba::stdlib {
namespace {

using namespace testing;
using runtime::CancellationSignal;
using runtime::StopReason;

CannedResponse jsonAnswer(int status, std::string body) {
  CannedResponse response;
  response.status = status;
  response.reason = status == 200 ? "OK" : "Other";
  response.headers = {{"Content-Type", "application/json; charset=utf-8"}};
  response.body = std::move(body);
  return response;
}

std::shared_ptr<runtime::Activity> httpTo(const LoopbackHttpServer &server, std::string_view fields,
                                          std::map<std::string, std::string> environment = {}) {
  std::string text = fmt::format(R"({{"type": "http", "url": "{}"{}{}}})", server.url("/x"),
                                 fields.empty() ? "" : ", ", fields);
  return declare(json(text), "", std::move(environment));
}

TEST_CASE("an http GET sends the query and headers and parses a JSON answer") {
  LoopbackHttpServer server([](const ReceivedRequest &) {
    CannedResponse response = jsonAnswer(200, R"({"id": 42, "tags": ["a", "ü"]})");
    response.headers.emplace_back("X-Trace", "one");
    response.headers.emplace_back("X-Trace", "two");
    return response;
  });
  auto get = declare(json(fmt::format(R"({{"type": "http", "method": "get",
      "url": "{}", "query": {{"q": "${{$.input.q}}", "n": 3, "skip": null}},
      "headers": {{"X-Order": "${{$.input.id}}", "Accept": "application/json"}}}})",
                                      server.url("/orders?fixed=1"))));

  Result<Value> result = attempt(*get, json(R"({"q": "a b&c=d/é", "id": "o-1"})"));

  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  const Object &response = result->asObject();
  CHECK(response.find("status")->asInt() == 200);
  CHECK(toJson(*response.find("body")) == R"({"id":42,"tags":["a","ü"]})");
  const Object &headers = response.find("headers")->asObject();
  CHECK(headers.find("content-type")->asString() == "application/json; charset=utf-8");
  CHECK(headers.find("x-trace")->asString() == "one, two");
  std::vector<ReceivedRequest> requests = server.received();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "GET");
  CHECK(requests[0].target == "/orders?fixed=1&q=a%20b%26c%3Dd%2F%C3%A9&n=3");
  CHECK(requests[0].header("x-order") == "o-1");
  CHECK(requests[0].header("kotoba-run-id") == "run-1");
  CHECK(requests[0].header("kotoba-idempotency-key") == "run-1/step_a/c7/1");
  CHECK(requests[0].body.empty());
}

TEST_CASE("an http POST sends the input as JSON unless a body is given") {
  LoopbackHttpServer server([](const ReceivedRequest &) { return jsonAnswer(201, "{}"); });
  auto post = httpTo(server, R"("method": "POST")");
  auto put = httpTo(server, R"("method": "PUT", "body": {"sku": "${$.input.sku}", "n": 2})");
  auto text = httpTo(server, R"("method": "PATCH", "body": "sku=${$.input.sku}")");
  auto remove = httpTo(server, R"("method": "DELETE")");
  Value input = json(R"({"sku": "a\"b", "amount": 1.5})");

  REQUIRE(attempt(*post, input).ok());
  REQUIRE(attempt(*put, input).ok());
  REQUIRE(attempt(*text, input).ok());
  REQUIRE(attempt(*remove, input).ok());

  std::vector<ReceivedRequest> requests = server.received();
  REQUIRE(requests.size() == 4);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].body == R"({"sku":"a\"b","amount":1.5})");
  CHECK(requests[0].header("content-type") == "application/json");
  CHECK(requests[1].method == "PUT");
  CHECK(requests[1].body == R"({"sku":"a\"b","n":2})");
  CHECK(requests[2].method == "PATCH");
  CHECK(requests[2].body == R"(sku=a"b)");
  CHECK(requests[2].header("content-type") == "text/plain; charset=utf-8");
  CHECK(requests[3].method == "DELETE");
  CHECK(requests[3].body.empty());
}

TEST_CASE("text answers stay strings, empty ones are null, and fake JSON is refused") {
  LoopbackHttpServer server([](const ReceivedRequest &request) {
    CannedResponse response;
    if (request.target == "/text") {
      response.headers = {{"Content-Type", "text/plain"}};
      response.body = "{\"looks\": \"like json\"}";
    } else if (request.target == "/broken") {
      response = jsonAnswer(200, "{\"cut\": ");
    } else if (request.target == "/binary") {
      response.headers = {{"Content-Type", "application/octet-stream"}};
      response.body = std::string("\x89PNG\r\n\x1a\n\xff", 9);
    }
    return response;
  });
  auto at = [&](std::string_view path) {
    return declare(json(fmt::format(R"({{"type": "http", "url": "{}"}})", server.url(path))));
  };

  Result<Value> text = attempt(*at("/text"), Value());
  Result<Value> empty = attempt(*at("/empty"), Value());
  WorkflowError broken = failureOf(attempt(*at("/broken"), Value()));
  WorkflowError binary = failureOf(attempt(*at("/binary"), Value()));

  REQUIRE(text.ok());
  CHECK(text->asObject().find("body")->asString() == "{\"looks\": \"like json\"}");
  REQUIRE(empty.ok());
  CHECK(empty->asObject().find("body")->isNull());
  CHECK(broken.type == error_types::InvalidPayload);
  CHECK(broken.message.find("says it is JSON") != std::string::npos);
  CHECK(binary.type == error_types::InvalidPayload);
  CHECK(binary.message.find("not UTF-8 text") != std::string::npos);
}

TEST_CASE("4xx answers fail for good, 5xx and 429 may be retried") {
  LoopbackHttpServer server([](const ReceivedRequest &request) {
    int status = std::stoi(request.target.substr(1));
    CannedResponse response = jsonAnswer(status, R"({"error": "nope"})");
    response.reason = status == 404 ? "Not Found" : "Trouble";
    if (status == 429) {
      response.headers.emplace_back("Retry-After", "7");
    }
    return response;
  });
  auto at = [&](int status) {
    return declare(json(fmt::format(R"({{"type": "http", "method": "POST", "url": "{}"}})",
                                    server.url("/" + std::to_string(status)))));
  };

  WorkflowError notFound = failureOf(attempt(*at(404), Value()));
  WorkflowError conflict = failureOf(attempt(*at(409), Value()));
  WorkflowError broken = failureOf(attempt(*at(500), Value()));
  WorkflowError unavailable = failureOf(attempt(*at(503), Value()));
  WorkflowError slowDown = failureOf(attempt(*at(429), Value()));

  CHECK(notFound.type == stdlib_errors::HttpError);
  CHECK_FALSE(notFound.retryable);
  CHECK(notFound.message == fmt::format("POST {} answered 404 Not Found", server.url("/404")));
  CHECK(notFound.details.asObject().find("status")->asInt() == 404);
  CHECK(toJson(*notFound.details.asObject().find("body")) == R"({"error":"nope"})");
  CHECK_FALSE(conflict.retryable);
  CHECK(broken.type == stdlib_errors::HttpError);
  CHECK(broken.retryable);
  CHECK(unavailable.retryable);
  CHECK(slowDown.retryable);
  CHECK(slowDown.details.asObject().find("retry_after_ms")->asInt() == 7000);
}

TEST_CASE("accept_status turns chosen statuses into results") {
  LoopbackHttpServer server([](const ReceivedRequest &request) {
    return jsonAnswer(request.target == "/missing" ? 404 : 302, "null");
  });
  auto lenient = declare(json(fmt::format(R"({{"type": "http", "url": "{}",
      "accept_status": ["2xx", 404]}})",
                                          server.url("/missing"))));
  auto redirect =
      declare(json(fmt::format(R"({{"type": "http", "url": "{}"}})", server.url("/moved"))));

  Result<Value> missing = attempt(*lenient, Value());
  WorkflowError moved = failureOf(attempt(*redirect, Value()));

  REQUIRE(missing.ok());
  CHECK(missing->asObject().find("status")->asInt() == 404);
  CHECK(moved.type == stdlib_errors::HttpError);
  CHECK_FALSE(moved.retryable);
}

TEST_CASE("redirects are followed only when asked") {
  LoopbackHttpServer server([](const ReceivedRequest &request) {
    if (request.target == "/old") {
      CannedResponse response;
      response.status = 301;
      response.reason = "Moved Permanently";
      response.headers = {{"Location", "/new"}};
      return response;
    }
    return jsonAnswer(200, R"({"at": "new"})");
  });
  auto follow = declare(json(fmt::format(R"({{"type": "http", "url": "{}",
      "follow_redirects": true}})",
                                         server.url("/old"))));

  Result<Value> result = attempt(*follow, Value());

  REQUIRE(result.ok());
  CHECK(toJson(*result->asObject().find("body")) == R"({"at":"new"})");
}

TEST_CASE("a refused connection is a retryable ConnectionError") {
  int closedPort = 0;
  {
    LoopbackHttpServer gone([](const ReceivedRequest &) { return CannedResponse(); });
    closedPort = gone.port();
  }
  auto get = declare(
      json(fmt::format(R"({{"type": "http", "url": "http://127.0.0.1:{}/x"}})", closedPort)));

  WorkflowError error = failureOf(attempt(*get, Value()));

  CHECK(error.type == stdlib_errors::ConnectionError);
  CHECK(error.retryable);
  CHECK(error.message.find("Failed to connect") != std::string::npos);
}

TEST_CASE("a server that hangs up without answering is a retryable ConnectionError") {
  LoopbackHttpServer server([](const ReceivedRequest &) {
    CannedResponse response;
    response.hangUp = true;
    return response;
  });

  WorkflowError error = failureOf(attempt(*httpTo(server, ""), Value()));

  CHECK(error.type == stdlib_errors::ConnectionError);
  CHECK(error.retryable);
}

TEST_CASE("a slow answer past the request's timeout is a retryable HttpTimeout") {
  LoopbackHttpServer server([](const ReceivedRequest &) {
    CannedResponse response = jsonAnswer(200, "{}");
    response.delayMs = 5000;
    return response;
  });
  auto get = httpTo(server, R"("timeout": "200ms")");

  Stopwatch clock;
  WorkflowError error = failureOf(attempt(*get, Value()));

  CHECK(error.type == stdlib_errors::HttpTimeout);
  CHECK(error.retryable);
  CHECK(error.message.find("within its timeout of 200ms") != std::string::npos);
  CHECK(clock.elapsedMs() >= 190);
  CHECK(clock.elapsedMs() < 2000);
}

TEST_CASE("cancelling an attempt aborts its transfer at once") {
  LoopbackHttpServer server([](const ReceivedRequest &) {
    CannedResponse response = jsonAnswer(200, "{}");
    response.delayMs = 10'000;
    return response;
  });
  auto get = httpTo(server, "");
  auto cancellation = std::make_shared<CancellationSignal>();
  auto context = testContext(cancellation);

  Stopwatch clock;
  DelayedStop stop(cancellation, std::chrono::milliseconds(100));
  Result<Value> result = runtime::runActivity(*get, Value(), *context);

  CHECK(failureOf(result).type == runtime::activity_errors::ActivityCancelled);
  CHECK(clock.elapsedMs() < 600);
}

TEST_CASE("large bodies arrive whole, and bodies past the payload limit are refused") {
  std::string big(1536 * 1024, 'k');
  LoopbackHttpServer server([&](const ReceivedRequest &request) {
    CannedResponse response;
    response.headers = {{"Content-Type", "text/plain"}};
    response.body = request.target == "/echo-size" ? std::to_string(request.body.size()) : big;
    return response;
  });
  auto get = httpTo(server, "");
  auto upload = declare(json(fmt::format(R"({{"type": "http", "method": "POST", "url": "{}"}})",
                                         server.url("/echo-size"))));
  Object largeInput;
  largeInput.set("blob", std::string(1024 * 1024, 'u'));

  Result<Value> whole = attempt(*get, Value());
  WorkflowError tooLarge = failureOf(attempt(*get, Value(), 1024 * 1024));
  Result<Value> uploaded = attempt(*upload, Value(largeInput));

  REQUIRE(whole.ok());
  CHECK(whole->asObject().find("body")->asString() == big);
  CHECK(tooLarge.type == error_types::PayloadTooLarge);
  CHECK_FALSE(tooLarge.retryable);
  REQUIRE(uploaded.ok());
  CHECK(uploaded->asObject().find("body")->asString() == std::to_string(1024 * 1024 + 11));
}

TEST_CASE("a secret from $.env reaches the server but not the error or the log") {
  const std::string token = "tok-5f8a9c2e71";
  LoopbackHttpServer server([](const ReceivedRequest &request) {
    // A careless server that echoes what it got.
    CannedResponse response =
        jsonAnswer(500, fmt::format(R"({{"auth": "{}", "target": "{}"}})",
                                    request.header("authorization").value_or(""), request.target));
    response.reason = "Internal Server Error";
    return response;
  });
  auto call = httpTo(server,
                     R"("method": "POST", "query": {"key": "${$.env.SHOP_TOKEN}"},
                        "headers": {"Authorization": "Bearer ${$.env.SHOP_TOKEN}"})",
                     {{"SHOP_TOKEN", token}});
  CapturedLog log;
  auto context = testContext(nullptr, runtime::kDefaultPayloadLimitBytes, log.sink());

  WorkflowError error = failureOf(runtime::runActivity(*call, Value(), *context));
  context->log(runtime::LogLevel::Info, "called with " + token);

  REQUIRE(server.received().size() == 1);
  CHECK(server.received()[0].header("authorization") == "Bearer " + token);
  std::string everything = error.message + toJson(error.details) + toJson(error.toValue());
  CHECK(everything.find(token) == std::string::npos);
  CHECK(everything.find("[redacted $.env.SHOP_TOKEN]") != std::string::npos);
  for (const auto &[level, line] : log.lines) {
    CHECK(line.find(token) == std::string::npos);
  }
}

TEST_CASE("a header value with a line break is refused before anything is sent") {
  LoopbackHttpServer server([](const ReceivedRequest &) { return jsonAnswer(200, "{}"); });
  auto call = httpTo(server, R"("headers": {"X-Note": "${$.input.note}"})");

  WorkflowError error = failureOf(attempt(*call, json(R"({"note": "hi\r\nX-Admin: yes"})")));

  CHECK(error.type == runtime::kInvalidInput);
  CHECK(error.message.find("header 'X-Note' holds a line break") != std::string::npos);
  CHECK(server.received().empty());
}

TEST_CASE("an http url must stay http or https after evaluation") {
  auto call = declare(json(R"({"type": "http", "url": "${$.input.target}"})"));

  WorkflowError error = failureOf(attempt(*call, json(R"({"target": "file:///etc/passwd"})")));

  CHECK(error.type == runtime::activity_errors::InvalidImplementation);
  CHECK(error.message.find("must start with http:// or https://") != std::string::npos);
}

TEST_CASE("http and webhook implementations with mistakes are refused with the fix") {
  struct Case {
    const char *implementation;
    const char *message;
  };
  const Case cases[] = {
      {R"({"type": "http"})", "the http implementation needs 'url'"},
      {R"({"type": "http", "url": "http://h/", "methd": "GET"})",
       "unknown field 'methd' in the http implementation; it takes method, url, headers, query, "
       "body, accept_status, timeout, follow_redirects, result"},
      {R"({"type": "http", "url": "http://h/", "method": "FETCH"})", "'method' must be one of"},
      {R"({"type": "http", "url": "http://h/", "accept_status": "2xy"})",
       "'accept_status' takes statuses (404)"},
      {R"({"type": "http", "url": "http://h/", "accept_status": [200, 600]})", "found integer 600"},
      {R"({"type": "http", "url": "http://h/", "headers": {"Bad Name": "x"}})",
       "'Bad Name' is not a valid header name"},
      {R"({"type": "http", "url": "http://h/", "headers": {"X": [1]}})",
       "'headers.X' of the http implementation must be a string"},
      {R"({"type": "http", "url": "http://h/", "timeout": "soon"})", "'timeout': invalid"},
      {R"({"type": "http", "url": "http://h/", "result": "all"})", "'result' must be"},
      {R"({"type": "http", "url": "ftp://h/file"})",
       "'url' must start with http:// or https://, found 'ftp://h/file'"},
      {R"({"type": "webhook", "url": "http://h/", "method": "GET"})",
       "unknown field 'method' in the webhook implementation; it takes url, headers, timeout"},
  };
  for (const Case &testCase : cases) {
    CAPTURE(testCase.implementation);
    Result<std::shared_ptr<runtime::Activity>> activity = tryDeclare(json(testCase.implementation));
    REQUIRE_FALSE(activity.ok());
    CHECK(activity.error().type == runtime::activity_errors::InvalidImplementation);
    CHECK_MESSAGE(activity.error().message.find(testCase.message) != std::string::npos,
                  activity.error().message);
  }
}

TEST_CASE("result: body returns only the body") {
  LoopbackHttpServer server([](const ReceivedRequest &) { return jsonAnswer(200, "[1, 2]"); });

  Result<Value> result = attempt(*httpTo(server, R"("result": "body")"), Value());

  REQUIRE(result.ok());
  CHECK(toJson(result.value()) == "[1,2]");
}

TEST_CASE("--bind NAME=http:URL posts the input and returns the answer's body") {
  LoopbackHttpServer server([](const ReceivedRequest &request) {
    return jsonAnswer(200, R"({"charged": )" + request.body + "}");
  });
  Result<runtime::ActivityBinding> binding =
      runtime::parseBinding("charge=http:" + server.url("/charge"));
  REQUIRE(binding.ok());
  runtime::ActivityRegistry registry;
  registerStandardActivities(registry);
  REQUIRE_FALSE(registry.bindImplementation("charge", binding.value().implementation));

  Result<Value> result = attempt(*registry.findBound("charge"), json(R"({"amount": 5})"));

  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  CHECK(toJson(result.value()) == R"({"charged":{"amount":5}})");
}

TEST_CASE("a webhook posts its input as JSON and returns the status") {
  LoopbackHttpServer server([](const ReceivedRequest &request) {
    CannedResponse response;
    response.status = request.target == "/hook" ? 204 : 502;
    response.reason = "Whatever";
    return response;
  });
  auto hook = declare(json(fmt::format(R"({{"type": "webhook", "url": "{}",
      "headers": {{"X-Signature": "${{$.env.HOOK_SECRET}}"}}}})",
                                       server.url("/hook"))),
                      "", {{"HOOK_SECRET", "s3cret-value"}});
  auto failing =
      declare(json(fmt::format(R"({{"type": "webhook", "url": "{}"}})", server.url("/down"))));

  Result<Value> result = attempt(*hook, json(R"({"order": "o-1", "total": 12.5})"));
  WorkflowError error = failureOf(attempt(*failing, json("{}")));

  REQUIRE(result.ok());
  CHECK(toJson(result.value()) == R"({"status":204})");
  REQUIRE(server.received().size() == 2);
  CHECK(server.received()[0].method == "POST");
  CHECK(server.received()[0].body == R"({"order":"o-1","total":12.5})");
  CHECK(server.received()[0].header("content-type") == "application/json");
  CHECK(server.received()[0].header("x-signature") == "s3cret-value");
  CHECK(error.type == stdlib_errors::HttpError);
  CHECK(error.retryable);
}

} // namespace
} // namespace kotoba::stdlib
