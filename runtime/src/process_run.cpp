// Running one program for the process activity: spawning with posix_spawn (no shell, own
// process group, default signal dispositions, every inherited descriptor above 2 closed),
// one poll() loop per attempt that feeds stdin, drains stdout and stderr, watches the child
// through a pidfd and wakes on cancellation through a pipe, and the reading of the outcome
// (result, error object, ProcessFailed).
#include "kotoba/runtime/process.h"

#include "kotoba/vm/json.h"

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <map>
#include <string>
#include <utility>
#include <vector>

extern char **environ;

namespace kotoba::runtime {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr size_t kReadChunkBytes = 64 * 1024;
// Without a pidfd (an old kernel) the loop polls the child's state this often.
constexpr int kExitPollIntervalMs = 20;

// A descriptor closed when it goes out of scope.
class Fd {
public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  Fd(Fd &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd &operator=(Fd &&other) noexcept {
    reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~Fd() { reset(); }

  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

struct Pipe {
  Fd read;
  Fd write;
};

std::optional<Pipe> makePipe(int extraFlags) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | extraFlags) != 0) {
    return std::nullopt;
  }
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

void setNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) {
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  }
}

// Blocks SIGPIPE on this thread while it talks to a child, so writing to a child that
// closed its stdin fails with EPIPE instead of killing the engine; a SIGPIPE raised meanwhile
// is consumed before the old mask comes back. Only this thread is affected: the engine's
// own disposition of SIGPIPE is left alone.
class SigpipeGuard {
public:
  SigpipeGuard() {
    sigset_t pipeSet;
    sigemptyset(&pipeSet);
    sigaddset(&pipeSet, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipeSet, &previous_);
  }
  SigpipeGuard(const SigpipeGuard &) = delete;
  SigpipeGuard &operator=(const SigpipeGuard &) = delete;
  ~SigpipeGuard() {
    consumePending();
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  static void consumePending() {
    sigset_t pipeSet;
    sigemptyset(&pipeSet);
    sigaddset(&pipeSet, SIGPIPE);
    timespec zero{0, 0};
    while (sigtimedwait(&pipeSet, nullptr, &zero) == SIGPIPE) {
    }
  }

private:
  sigset_t previous_;
};

std::string signalName(int signal) {
  switch (signal) {
  case SIGTERM:
    return "SIGTERM";
  case SIGKILL:
    return "SIGKILL";
  case SIGSEGV:
    return "SIGSEGV";
  case SIGABRT:
    return "SIGABRT";
  case SIGINT:
    return "SIGINT";
  case SIGHUP:
    return "SIGHUP";
  case SIGPIPE:
    return "SIGPIPE";
  case SIGBUS:
    return "SIGBUS";
  case SIGFPE:
    return "SIGFPE";
  case SIGILL:
    return "SIGILL";
  case SIGQUIT:
    return "SIGQUIT";
  default:
    return fmt::format("signal {}", signal);
  }
}

// Replaces every byte that is not part of well-formed UTF-8 with U+FFFD, so a program's
// stderr can always go into error details.
std::string sanitizeUtf8(std::string text) {
  size_t start = 0;
  while (true) {
    std::optional<size_t> bad = findInvalidUtf8(std::string_view(text).substr(start));
    if (!bad) {
      return text;
    }
    size_t position = start + *bad;
    text.replace(position, 1, "\xEF\xBF\xBD");
    start = position + 3;
  }
}

bool isLineBreak(char c) { return c == '\n' || c == '\r'; }
bool isSpace(char c) { return c == ' ' || c == '\t' || isLineBreak(c); }

std::string_view trimSpace(std::string_view text) {
  while (!text.empty() && isSpace(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && isSpace(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

// The last `count` lines of `text`, trailing blank lines dropped.
std::string lastLines(std::string_view text, size_t count) {
  while (!text.empty() && isSpace(text.back())) {
    text.remove_suffix(1);
  }
  size_t begin = text.size();
  for (size_t lines = 0; lines < count; ++lines) {
    size_t newline = begin == 0 ? std::string_view::npos : text.rfind('\n', begin - 1);
    if (newline == std::string_view::npos) {
      return std::string(text);
    }
    begin = newline;
  }
  return std::string(text.substr(begin + 1));
}

// An error object written on stderr: the whole of it, or its last non-empty line.
std::optional<WorkflowError> errorObjectFromStderr(std::string_view stderrText) {
  auto asError = [](std::string_view candidate) -> std::optional<WorkflowError> {
    candidate = trimSpace(candidate);
    if (candidate.empty() || candidate.front() != '{') {
      return std::nullopt;
    }
    Result<Value> parsed = parseJson(candidate);
    if (!parsed.ok() || !parsed->isObject()) {
      return std::nullopt;
    }
    const Value *type = parsed->asObject().find("type");
    if (type == nullptr || !type->isString() || type->asString().empty()) {
      return std::nullopt;
    }
    return workflowErrorFromValue(parsed.value());
  };
  if (std::optional<WorkflowError> whole = asError(stderrText)) {
    return whole;
  }
  std::string_view text = trimSpace(stderrText);
  size_t newline = text.find_last_of('\n');
  if (newline == std::string_view::npos) {
    return std::nullopt;
  }
  return asError(text.substr(newline + 1));
}

// The result of a successful run: JSON, else text, else null.
Result<Value> resultFromStdout(std::string_view stdoutText) {
  if (std::optional<size_t> offset = findInvalidUtf8(stdoutText)) {
    Object details;
    details.set("offset", static_cast<int64_t>(*offset));
    return makeError(error_types::InvalidPayload,
                     fmt::format("the process wrote output that is not valid UTF-8 (byte {}); "
                                 "write JSON or UTF-8 text on stdout",
                                 *offset),
                     Value(std::move(details)));
  }
  if (trimSpace(stdoutText).empty()) {
    return Value(nullptr);
  }
  Result<Value> parsed = parseJson(stdoutText);
  if (parsed.ok()) {
    return parsed;
  }
  while (!stdoutText.empty() && isLineBreak(stdoutText.back())) {
    stdoutText.remove_suffix(1);
  }
  return Value(std::string(stdoutText));
}

bool isTransientSpawnError(int error) {
  return error == EAGAIN || error == ENOMEM || error == EMFILE || error == ENFILE ||
         error == ETXTBSY;
}

// The environment block: the engine's (optionally), then the spec's, then the attempt's.
std::vector<std::string> buildEnvironment(const ProcessSpec &spec, const ActivityContext &context) {
  std::map<std::string, std::string> variables;
  if (spec.inheritEnvironment) {
    for (char **entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
      std::string_view text(*entry);
      size_t equals = text.find('=');
      if (equals == std::string_view::npos || equals == 0) {
        continue;
      }
      variables.emplace(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
    }
  }
  for (const auto &[name, value] : spec.env) {
    if (value) {
      variables.insert_or_assign(name, *value);
    } else {
      variables.erase(name);
    }
  }
  const AttemptIdentity &identity = context.identity();
  variables.insert_or_assign("KOTOBA_RUN_ID", identity.runId);
  variables.insert_or_assign("KOTOBA_STEP_ID", identity.stepId);
  variables.insert_or_assign("KOTOBA_ACTIVITY", identity.activityName);
  variables.insert_or_assign("KOTOBA_ATTEMPT", std::to_string(identity.attempt));
  variables.insert_or_assign("KOTOBA_IDEMPOTENCY_KEY", context.idempotencyKey());
  std::vector<std::string> block;
  block.reserve(variables.size());
  for (const auto &[name, value] : variables) {
    block.push_back(name + "=" + value);
  }
  return block;
}

std::vector<char *> pointers(std::vector<std::string> &strings) {
  std::vector<char *> result;
  result.reserve(strings.size() + 1);
  for (std::string &text : strings) {
    result.push_back(text.data());
  }
  result.push_back(nullptr);
  return result;
}

int openPidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) {
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  return fd;
#else
  return -1;
#endif
}

// Whether the child has exited, without reaping it: a zombie leader keeps its process group
// id reserved, so killing the group afterwards cannot hit an unrelated process.
bool hasExited(pid_t pid) {
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    // ECHILD: someone else reaped it (a host that ignores SIGCHLD); it is gone either way.
    return errno == ECHILD;
  }
  return info.si_pid == pid;
}

int millisecondsUntil(SteadyClock::time_point deadline) {
  auto remaining =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  return static_cast<int>(std::clamp<int64_t>(remaining.count(), 0, 60'000));
}

// Everything one running child needs; run() is the poll loop.
class ChildSession {
public:
  ChildSession(pid_t pid, Fd stdinFd, Fd stdoutFd, Fd stderrFd, std::string_view stdinText,
               ActivityContext &context, const ProcessOptions &options)
      : pid_(pid), stdin_(std::move(stdinFd)), stdout_(std::move(stdoutFd)),
        stderr_(std::move(stderrFd)), stdinText_(stdinText), context_(context), options_(options),
        limit_(context.payloadLimitBytes()) {}

  struct Outcome {
    int status = 0; // from waitpid, when reaped
    bool reaped = false;
    bool stopRequested = false; // the attempt was asked to stop
    bool outputTooLarge = false;
    std::string stdoutText;
    std::string stderrTail;
  };

  Outcome run() {
    std::optional<Pipe> wake = makePipe(O_NONBLOCK);
    int wakeWrite = wake ? wake->write.get() : -1;
    CancellationSignal::CallbackId callback = 0;
    if (wake) {
      callback = context_.cancellation().onStop([wakeWrite] {
        char byte = 1;
        [[maybe_unused]] ssize_t written = ::write(wakeWrite, &byte, 1);
      });
    }
    Fd pidfd(openPidfd(pid_));
    if (stdinText_.empty()) {
      stdin_.reset();
    }
    if (stdin_.valid()) {
      setNonBlocking(stdin_.get());
    }
    setNonBlocking(stdout_.get());
    setNonBlocking(stderr_.get());

    bool exited = false;
    std::optional<SteadyClock::time_point> exitedAt;
    std::optional<SteadyClock::time_point> killAt;
    bool killed = false;
    while (true) {
      std::array<pollfd, 5> fds{};
      size_t count = 0;
      auto add = [&](int fd, short events) -> int {
        if (fd < 0) {
          return -1;
        }
        fds[count] = pollfd{fd, events, 0};
        return static_cast<int>(count++);
      };
      int stdinIndex = add(stdin_.valid() ? stdin_.get() : -1, POLLOUT);
      int stdoutIndex = add(stdout_.valid() ? stdout_.get() : -1, POLLIN);
      int stderrIndex = add(stderr_.valid() ? stderr_.get() : -1, POLLIN);
      int wakeIndex = add(wake && !outcome_.stopRequested ? wake->read.get() : -1, POLLIN);
      int pidIndex = add(!exited && pidfd.valid() ? pidfd.get() : -1, POLLIN);

      int timeout = -1;
      auto tighten = [&timeout](int milliseconds) {
        timeout = timeout < 0 ? milliseconds : std::min(timeout, milliseconds);
      };
      if (!exited && !pidfd.valid()) {
        tighten(kExitPollIntervalMs);
      }
      if (killAt && !killed) {
        tighten(millisecondsUntil(*killAt));
      }
      if (exitedAt) {
        tighten(millisecondsUntil(*exitedAt + std::chrono::milliseconds(options_.orphanDrainMs)));
      }
      int ready = ::poll(fds.data(), count, timeout);
      if (ready < 0 && errno != EINTR) {
        // Cannot happen with valid descriptors; make sure the reap below cannot hang.
        ::kill(-pid_, SIGKILL);
        break;
      }
      if (ready > 0) {
        if (stdinIndex >= 0 && fds[stdinIndex].revents != 0) {
          feedStdin();
        }
        if (stdoutIndex >= 0 && fds[stdoutIndex].revents != 0) {
          drain(stdout_, /*isStdout=*/true);
        }
        if (stderrIndex >= 0 && fds[stderrIndex].revents != 0) {
          drain(stderr_, /*isStdout=*/false);
        }
        if (wakeIndex >= 0 && fds[wakeIndex].revents != 0) {
          outcome_.stopRequested = true;
        }
        if (pidIndex >= 0 && fds[pidIndex].revents != 0) {
          exited = hasExited(pid_);
        }
      }
      if (!exited && !pidfd.valid()) {
        exited = hasExited(pid_);
      }
      if ((outcome_.stopRequested || outcome_.outputTooLarge) && !killAt) {
        // Stop: SIGTERM now, SIGKILL after the grace period. The group, not only the
        // program, so a shell's children stop too.
        ::kill(-pid_, SIGTERM);
        killAt = SteadyClock::now() + std::chrono::milliseconds(options_.killGraceMs);
      }
      if (killAt && !killed && SteadyClock::now() >= *killAt) {
        ::kill(-pid_, SIGKILL);
        killed = true;
      }
      if (exited && !exitedAt) {
        exitedAt = SteadyClock::now();
        if (killAt) {
          // Stopping: whatever the program left behind goes now.
          ::kill(-pid_, SIGKILL);
        }
      }
      bool pipesClosed = !stdout_.valid() && !stderr_.valid();
      if (exited && pipesClosed) {
        break;
      }
      if (exitedAt &&
          SteadyClock::now() >= *exitedAt + std::chrono::milliseconds(options_.orphanDrainMs)) {
        // The program is gone but something it started still holds stdout or stderr.
        ::kill(-pid_, SIGKILL);
        break;
      }
    }
    if (wake) {
      context_.cancellation().removeCallback(callback);
    }
    stdin_.reset();
    stdout_.reset();
    stderr_.reset();
    reap();
    if (context_.cancellation().requested()) {
      outcome_.stopRequested = true;
    }
    return std::move(outcome_);
  }

private:
  void feedStdin() {
    while (stdinWritten_ < stdinText_.size()) {
      ssize_t written = ::write(stdin_.get(), stdinText_.data() + stdinWritten_,
                                stdinText_.size() - stdinWritten_);
      if (written > 0) {
        stdinWritten_ += static_cast<size_t>(written);
        continue;
      }
      if (written < 0 && errno == EINTR) {
        continue;
      }
      if (written < 0 && errno == EAGAIN) {
        return;
      }
      // EPIPE: the program does not read its input, which is its business.
      SigpipeGuard::consumePending();
      break;
    }
    stdin_.reset();
  }

  void drain(Fd &fd, bool isStdout) {
    std::array<char, kReadChunkBytes> buffer;
    while (true) {
      ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
      if (got > 0) {
        if (isStdout) {
          appendStdout(buffer.data(), static_cast<size_t>(got));
        } else {
          appendStderr(buffer.data(), static_cast<size_t>(got));
        }
        continue;
      }
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got < 0 && errno == EAGAIN) {
        return;
      }
      fd.reset(); // end of file, or an error that will not go away
      return;
    }
  }

  void appendStdout(const char *data, size_t size) {
    if (outcome_.outputTooLarge) {
      return; // keep reading so the program is not stuck writing, but keep nothing
    }
    if (outcome_.stdoutText.size() + size > limit_) {
      outcome_.outputTooLarge = true;
      outcome_.stdoutText.clear();
      outcome_.stdoutText.shrink_to_fit();
      return;
    }
    outcome_.stdoutText.append(data, size);
  }

  void appendStderr(const char *data, size_t size) {
    outcome_.stderrTail.append(data, size);
    if (outcome_.stderrTail.size() > options_.stderrTailBytes) {
      outcome_.stderrTail.erase(0, outcome_.stderrTail.size() - options_.stderrTailBytes);
    }
  }

  void reap() {
    while (true) {
      int status = 0;
      pid_t got = ::waitpid(pid_, &status, 0);
      if (got == pid_) {
        outcome_.status = status;
        outcome_.reaped = true;
        return;
      }
      if (got < 0 && errno == EINTR) {
        continue;
      }
      return; // ECHILD: reaped elsewhere
    }
  }

  pid_t pid_;
  Fd stdin_;
  Fd stdout_;
  Fd stderr_;
  std::string_view stdinText_;
  size_t stdinWritten_ = 0;
  ActivityContext &context_;
  const ProcessOptions &options_;
  size_t limit_;
  Outcome outcome_;
};

WorkflowError spawnError(const ProcessSpec &spec, int error) {
  Object details;
  details.set("command", spec.command);
  details.set("errno", static_cast<int64_t>(error));
  std::string hint;
  if (error == ENOENT) {
    hint = spec.command.find('/') == std::string::npos
               ? "; it is not in PATH, so give its path"
               : "; check the path (relative paths start at the workflow file's directory)";
  } else if (error == EACCES) {
    hint = "; make it executable (chmod +x) or check the directory permissions";
  }
  WorkflowError result =
      makeError(activity_errors::ProcessStartFailed,
                fmt::format("could not start '{}': {}{}", spec.command, std::strerror(error), hint),
                Value(std::move(details)));
  result.retryable = isTransientSpawnError(error);
  return result;
}

} // namespace

Result<Value> runProcess(const ProcessSpec &spec, std::string_view stdinText,
                         ActivityContext &context, const ProcessOptions &options) {
  if (context.cancelled()) {
    return stoppedError(context.identity(), context.stopReason());
  }
  SigpipeGuard sigpipeGuard;
  std::optional<Pipe> stdinPipe = makePipe(0);
  std::optional<Pipe> stdoutPipe = makePipe(0);
  std::optional<Pipe> stderrPipe = makePipe(0);
  if (!stdinPipe || !stdoutPipe || !stderrPipe) {
    return spawnError(spec, errno);
  }

  std::vector<std::string> argvStrings;
  argvStrings.push_back(spec.command);
  argvStrings.insert(argvStrings.end(), spec.args.begin(), spec.args.end());
  std::vector<char *> argv = pointers(argvStrings);
  std::vector<std::string> envStrings = buildEnvironment(spec, context);
  std::vector<char *> envp = pointers(envStrings);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, stdinPipe->read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, stdoutPipe->write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, stderrPipe->write.get(), STDERR_FILENO);
  // Descriptors other threads opened without O_CLOEXEC must not reach the program either.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (!spec.cwd.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, spec.cwd.c_str());
  }
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t noSignals;
  sigemptyset(&noSignals);
  sigset_t allSignals;
  sigfillset(&allSignals);
  // A process group of its own (so a stop reaches its children), no blocked signals (this
  // thread blocks SIGPIPE), and default dispositions (the engine may ignore some).
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attributes, 0);
  posix_spawnattr_setsigmask(&attributes, &noSignals);
  posix_spawnattr_setsigdefault(&attributes, &allSignals);

  pid_t pid = -1;
  int spawned =
      ::posix_spawnp(&pid, spec.command.c_str(), &actions, &attributes, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) {
    return spawnError(spec, spawned);
  }
  stdinPipe->read.reset();
  stdoutPipe->write.reset();
  stderrPipe->write.reset();

  ChildSession session(pid, std::move(stdinPipe->write), std::move(stdoutPipe->read),
                       std::move(stderrPipe->read), stdinText, context, options);
  ChildSession::Outcome outcome = session.run();

  if (outcome.stopRequested) {
    return stoppedError(context.identity(), context.stopReason());
  }
  if (outcome.outputTooLarge) {
    Object details;
    details.set("limit_bytes", static_cast<int64_t>(context.payloadLimitBytes()));
    return makeError(error_types::PayloadTooLarge,
                     fmt::format("'{}' wrote more than the payload limit of {} bytes on stdout "
                                 "and was stopped; write less or raise the limit",
                                 spec.command, context.payloadLimitBytes()),
                     Value(std::move(details)));
  }
  if (outcome.reaped && WIFEXITED(outcome.status) && WEXITSTATUS(outcome.status) == 0) {
    return resultFromStdout(outcome.stdoutText);
  }

  std::string stderrText = sanitizeUtf8(std::move(outcome.stderrTail));
  if (std::optional<WorkflowError> reported = errorObjectFromStderr(stderrText)) {
    return std::move(*reported);
  }
  Object details;
  details.set("command", spec.command);
  std::string how;
  if (!outcome.reaped) {
    details.set("exit_code", nullptr);
    how = "ended in a way that could not be observed";
  } else if (WIFEXITED(outcome.status)) {
    details.set("exit_code", static_cast<int64_t>(WEXITSTATUS(outcome.status)));
    how = fmt::format("exited with status {}", WEXITSTATUS(outcome.status));
  } else if (WIFSIGNALED(outcome.status)) {
    details.set("exit_code", nullptr);
    details.set("signal", signalName(WTERMSIG(outcome.status)));
    how = fmt::format("was killed by {}", signalName(WTERMSIG(outcome.status)));
  }
  std::string tail = lastLines(stderrText, options.stderrDetailLines);
  details.set("stderr", tail);
  std::string lastLine = lastLines(tail, 1);
  WorkflowError error =
      makeError(activity_errors::ProcessFailed,
                lastLine.empty() ? fmt::format("'{}' {}", spec.command, how)
                                 : fmt::format("'{}' {}: {}", spec.command, how, lastLine),
                Value(std::move(details)));
  error.retryable = true;
  return error;
}

} // namespace kotoba::runtime
