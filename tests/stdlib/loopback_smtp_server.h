// A minimal SMTP server on 127.0.0.1 for the email tests (RFC 5321: EHLO, AUTH PLAIN,
// MAIL, RCPT, DATA, RSET, NOOP, QUIT), serving one session at a time on its own thread.
// It captures each accepted message with its envelope, undoes dot-stuffing, and can be
// told to require a login, refuse recipients or answer DATA with a chosen reply.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kotoba::stdlib::testing {

struct CapturedMail {
  std::string mailFrom;                // the envelope sender, without brackets
  std::vector<std::string> recipients; // the envelope recipients, without brackets
  std::string data;                    // the message text as the client meant it
  std::optional<std::string> login;    // "user\0password" from AUTH PLAIN
};

struct SmtpBehaviour {
  // "user\0password" the server accepts; nullopt: no AUTH offered or needed.
  std::optional<std::string> requiredLogin;
  std::set<std::string> refusedRecipients;
  // The reply to the end of DATA, "250 queued" by default.
  std::string dataReply = "250 2.0.0 queued";
};

inline std::string base64Decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') {
      return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
      return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
      return c - '0' + 52;
    }
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    int v = value(c);
    if (v < 0) {
      continue; // padding and line breaks
    }
    bits = (bits << 6) | uint32_t(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += char((bits >> count) & 0xff);
    }
  }
  return out;
}

inline std::string base64Encode(std::string_view bytes) {
  static constexpr std::string_view kDigits =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t group = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) {
      group |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    }
    if (i + 2 < bytes.size()) {
      group |= uint32_t(uint8_t(bytes[i + 2]));
    }
    out += kDigits[(group >> 18) & 63];
    out += kDigits[(group >> 12) & 63];
    out += i + 1 < bytes.size() ? kDigits[(group >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kDigits[group & 63] : '=';
  }
  return out;
}

class LoopbackSmtpServer {
public:
  explicit LoopbackSmtpServer(SmtpBehaviour behaviour = {}) : behaviour_(std::move(behaviour)) {
    if (::pipe2(stopPipe_, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe2 failed");
    }
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr *>(&address), length) != 0 ||
        ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr *>(&address), &length) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { acceptLoop(); });
  }
  LoopbackSmtpServer(const LoopbackSmtpServer &) = delete;
  LoopbackSmtpServer &operator=(const LoopbackSmtpServer &) = delete;
  ~LoopbackSmtpServer() {
    char byte = 's';
    (void)::write(stopPipe_[1], &byte, 1);
    thread_.join();
    ::close(listener_);
    ::close(stopPipe_[0]);
    ::close(stopPipe_[1]);
  }

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::vector<CapturedMail> mails() const {
    std::lock_guard lock(mutex_);
    return mails_;
  }
  // Every command line the server received, for checking what never reached it.
  [[nodiscard]] std::vector<std::string> commands() const {
    std::lock_guard lock(mutex_);
    return commands_;
  }

private:
  bool waitReadable(int fd) const {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stopPipe_[0], POLLIN, 0}};
    return ::poll(fds, 2, -1) > 0 && (fds[1].revents & POLLIN) == 0;
  }

  void acceptLoop() {
    while (waitReadable(listener_)) {
      int connection = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (connection >= 0) {
        session(connection);
        ::close(connection);
      }
    }
  }

  void reply(int connection, const std::string &line) const {
    std::string text = line + "\r\n";
    (void)::send(connection, text.data(), text.size(), MSG_NOSIGNAL);
  }

  // The next CRLF-terminated line, or nullopt when the client left or the server stops.
  std::optional<std::string> readLine(int connection, std::string &pending) const {
    for (;;) {
      size_t end = pending.find("\r\n");
      if (end != std::string::npos) {
        std::string line = pending.substr(0, end);
        pending.erase(0, end + 2);
        return line;
      }
      if (!waitReadable(connection)) {
        return std::nullopt;
      }
      char buffer[8192];
      ssize_t got = ::recv(connection, buffer, sizeof buffer, 0);
      if (got <= 0) {
        return std::nullopt;
      }
      pending.append(buffer, size_t(got));
    }
  }

  static std::string upper(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return char(std::toupper(c)); });
    return text;
  }

  // The address between the angle brackets of `MAIL FROM:<a>` or `RCPT TO:<b>`.
  static std::string bracketed(const std::string &line) {
    size_t open = line.find('<');
    size_t close = line.find('>', open);
    return open == std::string::npos || close == std::string::npos
               ? std::string()
               : line.substr(open + 1, close - open - 1);
  }

  void session(int connection) {
    std::string pending;
    CapturedMail mail;
    bool loggedIn = !behaviour_.requiredLogin.has_value();
    reply(connection, "220 loopback ESMTP test server");
    while (std::optional<std::string> line = readLine(connection, pending)) {
      {
        std::lock_guard lock(mutex_);
        commands_.push_back(*line);
      }
      std::string verb = upper(line->substr(0, line->find(' ')));
      if (verb == "EHLO" || verb == "HELO") {
        if (behaviour_.requiredLogin) {
          reply(connection, "250-loopback");
          reply(connection, "250 AUTH PLAIN");
        } else {
          reply(connection, "250 loopback");
        }
      } else if (verb == "AUTH") {
        std::string response = line->size() > 11 ? line->substr(11) : "";
        if (response.empty()) {
          reply(connection, "334 ");
          response = readLine(connection, pending).value_or("");
        }
        mail.login = base64Decode(response).substr(1); // drop the empty authorization id
        loggedIn = behaviour_.requiredLogin && mail.login == *behaviour_.requiredLogin;
        reply(connection, loggedIn ? "235 2.7.0 accepted" : "535 5.7.8 bad credentials");
      } else if (verb == "MAIL") {
        if (!loggedIn) {
          reply(connection, "530 5.7.0 authentication required");
          continue;
        }
        mail.mailFrom = bracketed(*line);
        reply(connection, "250 2.1.0 ok");
      } else if (verb == "RCPT") {
        std::string recipient = bracketed(*line);
        if (behaviour_.refusedRecipients.contains(recipient)) {
          reply(connection, "550 5.1.1 no such user");
          continue;
        }
        mail.recipients.push_back(recipient);
        reply(connection, "250 2.1.5 ok");
      } else if (verb == "DATA") {
        reply(connection, "354 end with <CRLF>.<CRLF>");
        std::string data;
        while (std::optional<std::string> dataLine = readLine(connection, pending)) {
          if (*dataLine == ".") {
            break;
          }
          // Dot-stuffing (RFC 5321 section 4.5.2): a leading dot was doubled.
          data += (dataLine->starts_with("..") ? dataLine->substr(1) : *dataLine) + "\r\n";
        }
        mail.data = data;
        reply(connection, behaviour_.dataReply);
        if (behaviour_.dataReply.starts_with("250")) {
          std::lock_guard lock(mutex_);
          mails_.push_back(mail);
        }
      } else if (verb == "RSET" || verb == "NOOP") {
        reply(connection, "250 ok");
      } else if (verb == "QUIT") {
        reply(connection, "221 bye");
        return;
      } else {
        reply(connection, "502 5.5.1 not implemented");
      }
    }
  }

  SmtpBehaviour behaviour_;
  int stopPipe_[2] = {-1, -1};
  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<CapturedMail> mails_;
  std::vector<std::string> commands_;
};

} // namespace kotoba::stdlib::testing
