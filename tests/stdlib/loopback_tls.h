// TLS for the loopback test servers: certificates the test makes with the openssl command
// (a CA, a server certificate for 127.0.0.1 that it signed, and an unrelated CA), and a TLS
// front (tls_terminator.py, Python's ssl module) that completes the handshake, at once or
// after SMTP's STARTTLS, and relays the plain bytes to a LoopbackHttpServer or
// LoopbackSmtpServer. The client under test is the real libcurl with OpenSSL; only the
// server side is borrowed.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

extern char **environ;

namespace kotoba::stdlib::testing {

// Runs `argv` (looked up in PATH) with its output discarded; its exit status, -1 when it
// could not be started.
inline int runQuietly(const std::vector<std::string> &argv) {
  std::vector<char *> args;
  for (const std::string &arg : argv) {
    args.push_back(const_cast<char *>(arg.c_str()));
  }
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    return -1;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// PEM files in `directory`: ca.pem (a CA), server.pem and server.key (a certificate for
// IP 127.0.0.1 signed by that CA), and other-ca.pem (a CA that signed nothing here).
struct TestCertificates {
  std::string ca;
  std::string serverCertificate;
  std::string serverKey;
  std::string otherCa;

  explicit TestCertificates(const std::filesystem::path &directory) {
    auto file = [&](const char *name) { return (directory / name).string(); };
    ca = file("ca.pem");
    serverCertificate = file("server.pem");
    serverKey = file("server.key");
    otherCa = file("other-ca.pem");
    std::ofstream(file("server.ext")) << "subjectAltName=IP:127.0.0.1\n";
    const std::vector<std::vector<std::string>> steps = {
        {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", file("ca.key"), "-out", ca, "-days", "2", "-subj",
         "/CN=Kotoba Test CA"},
        {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", file("other-ca.key"), "-out", otherCa, "-days", "2", "-subj",
         "/CN=Some Other CA"},
        {"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", serverKey, "-out", file("server.csr"), "-subj", "/CN=127.0.0.1"},
        {"openssl", "x509", "-req", "-in", file("server.csr"), "-CA", ca, "-CAkey", file("ca.key"),
         "-CAcreateserial", "-out", serverCertificate, "-days", "2", "-extfile",
         file("server.ext")},
    };
    for (const std::vector<std::string> &step : steps) {
      if (runQuietly(step) != 0) {
        throw std::runtime_error("openssl failed to make the test certificates");
      }
    }
  }
};

// How the TLS front starts a connection.
enum class TlsStart : uint8_t {
  Immediately,  // https, smtps: the handshake is the first thing on the connection
  SmtpStarttls, // plain SMTP until the client's STARTTLS, then the handshake
};

// tls_terminator.py in front of 127.0.0.1:`targetPort`, on a port of its own.
class TlsTerminator {
public:
  TlsTerminator(const TestCertificates &certificates, int targetPort,
                TlsStart start = TlsStart::Immediately) {
    int input[2];
    int output[2];
    if (::pipe2(input, O_CLOEXEC) != 0 || ::pipe2(output, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe2 failed");
    }
    std::string script = std::string(KOTOBA_SOURCE_DIR) + "/tests/stdlib/tls_terminator.py";
    std::string port = std::to_string(targetPort);
    std::vector<std::string> argv = {"python3",       script,
                                     "--cert",        certificates.serverCertificate,
                                     "--key",         certificates.serverKey,
                                     "--target-port", port};
    if (start == TlsStart::SmtpStarttls) {
      argv.emplace_back("--starttls");
    }
    std::vector<char *> args;
    for (std::string &arg : argv) {
      args.push_back(arg.data());
    }
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, input[0], 0);
    posix_spawn_file_actions_adddup2(&actions, output[1], 1);
    int spawned = posix_spawnp(&pid_, "python3", &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(input[0]);
    ::close(output[1]);
    stdin_ = input[1];
    if (spawned != 0) {
      ::close(output[0]);
      throw std::runtime_error("cannot start python3 for the TLS front");
    }
    std::string line;
    char c = 0;
    while (::read(output[0], &c, 1) == 1 && c != '\n') {
      line += c;
    }
    ::close(output[0]);
    port_ = line.empty() ? 0 : std::stoi(line);
    if (port_ == 0) {
      throw std::runtime_error("the TLS front did not report its port");
    }
  }
  TlsTerminator(const TlsTerminator &) = delete;
  TlsTerminator &operator=(const TlsTerminator &) = delete;
  ~TlsTerminator() {
    ::close(stdin_); // the script exits when its stdin closes
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }

  [[nodiscard]] int port() const { return port_; }

private:
  pid_t pid_ = 0;
  int stdin_ = -1;
  int port_ = 0;
};

} // namespace kotoba::stdlib::testing
