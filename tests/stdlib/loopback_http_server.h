// A small HTTP/1.1 server on 127.0.0.1 for the http and webhook tests: real sockets that
// libcurl talks to, one request per connection, answered by a handler the test writes
// (status, headers, body, a delay before answering, or closing without an answer). It
// records every request it got. Every wait watches a stop pipe, so destroying the server
// ends slow answers at once.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace kotoba::stdlib::testing {

struct ReceivedRequest {
  std::string method;
  std::string target;                                       // path and query, as sent
  std::vector<std::pair<std::string, std::string>> headers; // names in lower case
  std::string body;

  [[nodiscard]] std::optional<std::string> header(std::string_view name) const {
    for (const auto &[key, value] : headers) {
      if (key == name) {
        return value;
      }
    }
    return std::nullopt;
  }
};

struct CannedResponse {
  int status = 200;
  std::string reason = "OK";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Waits this long before answering.
  int delayMs = 0;
  // Closes the connection without a byte of answer.
  bool hangUp = false;
};

using RequestHandler = std::function<CannedResponse(const ReceivedRequest &)>;

class LoopbackHttpServer {
public:
  explicit LoopbackHttpServer(RequestHandler handler) : handler_(std::move(handler)) {
    if (::pipe2(stopPipe_, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe2 failed");
    }
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr *>(&address), length) != 0 ||
        ::listen(listener_, 64) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr *>(&address), &length) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  LoopbackHttpServer(const LoopbackHttpServer &) = delete;
  LoopbackHttpServer &operator=(const LoopbackHttpServer &) = delete;

  ~LoopbackHttpServer() {
    char byte = 's';
    (void)::write(stopPipe_[1], &byte, 1);
    acceptor_.join();
    std::vector<std::thread> connections;
    {
      std::lock_guard lock(mutex_);
      connections.swap(connections_);
    }
    for (std::thread &connection : connections) {
      connection.join();
    }
    ::close(listener_);
    ::close(stopPipe_[0]);
    ::close(stopPipe_[1]);
  }

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string url(std::string_view path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  [[nodiscard]] std::vector<ReceivedRequest> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }

private:
  // Waits until `fd` is ready for `events` or the server stops; false when stopping.
  bool waitFor(int fd, short events, int timeoutMs = -1) const {
    pollfd fds[2] = {{fd, events, 0}, {stopPipe_[0], POLLIN, 0}};
    int ready = ::poll(fds, 2, timeoutMs);
    return ready > 0 && (fds[1].revents & POLLIN) == 0;
  }

  void acceptLoop() {
    while (waitFor(listener_, POLLIN)) {
      int connection = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (connection < 0) {
        continue;
      }
      std::lock_guard lock(mutex_);
      connections_.emplace_back([this, connection] {
        serve(connection);
        ::close(connection);
      });
    }
  }

  void serve(int connection) {
    std::optional<ReceivedRequest> request = readRequest(connection);
    if (!request) {
      return;
    }
    {
      std::lock_guard lock(mutex_);
      received_.push_back(*request);
    }
    CannedResponse response = handler_(*request);
    if (response.delayMs > 0) {
      pollfd stop = {stopPipe_[0], POLLIN, 0};
      if (::poll(&stop, 1, response.delayMs) > 0) {
        return;
      }
    }
    if (response.hangUp) {
      return;
    }
    std::string text =
        "HTTP/1.1 " + std::to_string(response.status) + " " + response.reason + "\r\n";
    for (const auto &[name, value] : response.headers) {
      text += name + ": " + value + "\r\n";
    }
    text += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
    text += "Connection: close\r\n\r\n";
    if (request->method != "HEAD") {
      text += response.body;
    }
    size_t sent = 0;
    while (sent < text.size() && waitFor(connection, POLLOUT)) {
      ssize_t written = ::send(connection, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
      if (written <= 0) {
        return; // the client went away (an aborted transfer)
      }
      sent += size_t(written);
    }
  }

  std::optional<ReceivedRequest> readRequest(int connection) const {
    std::string data;
    size_t headerEnd = std::string::npos;
    char buffer[65536];
    while (headerEnd == std::string::npos) {
      if (!waitFor(connection, POLLIN)) {
        return std::nullopt;
      }
      ssize_t got = ::recv(connection, buffer, sizeof buffer, 0);
      if (got <= 0) {
        return std::nullopt;
      }
      data.append(buffer, size_t(got));
      headerEnd = data.find("\r\n\r\n");
    }
    ReceivedRequest request;
    size_t lineEnd = data.find("\r\n");
    std::string requestLine = data.substr(0, lineEnd);
    size_t firstSpace = requestLine.find(' ');
    size_t secondSpace = requestLine.find(' ', firstSpace + 1);
    request.method = requestLine.substr(0, firstSpace);
    request.target = requestLine.substr(firstSpace + 1, secondSpace - firstSpace - 1);
    size_t position = lineEnd + 2;
    size_t contentLength = 0;
    while (position < headerEnd) {
      size_t end = data.find("\r\n", position);
      std::string line = data.substr(position, end - position);
      position = end + 2;
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return char(std::tolower(c)); });
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      if (name == "content-length") {
        contentLength = std::stoul(value);
      }
      request.headers.emplace_back(std::move(name), std::move(value));
    }
    request.body = data.substr(headerEnd + 4);
    while (request.body.size() < contentLength) {
      if (!waitFor(connection, POLLIN)) {
        return std::nullopt;
      }
      ssize_t got = ::recv(connection, buffer, sizeof buffer, 0);
      if (got <= 0) {
        return std::nullopt;
      }
      request.body.append(buffer, size_t(got));
    }
    return request;
  }

  RequestHandler handler_;
  int stopPipe_[2] = {-1, -1};
  int listener_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::thread> connections_;
  std::vector<ReceivedRequest> received_;
};

} // namespace kotoba::stdlib::testing
