// Owner identities and the liveness check behind immediate lease takeover (owner_identity.h).
// Everything here reads /proc and errs towards Unknown: a wrong Dead would let two processes
// run the same step, a wrong Unknown only costs a lease's wait.
#include "kotoba/runtime/owner_identity.h"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <fstream>
#include <limits>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace kotoba::runtime {

namespace {

constexpr std::string_view kTokenPrefix = "proc:";

template <typename Number> std::optional<Number> parseNumber(std::string_view text) {
  Number number{};
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return number;
}

std::optional<std::string> readFirstLine(const std::string &path) {
  std::ifstream file(path);
  std::string line;
  if (!file || !std::getline(file, line)) {
    return std::nullopt;
  }
  return line;
}

// The fields of /proc/PID/stat from field 3 (state) on. The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so the fields start after the
// last ')'.
struct StatFields {
  char state = '?';
  uint64_t startTicks = 0;
};

std::optional<StatFields> readStat(int64_t pid) {
  std::optional<std::string> line = readFirstLine(fmt::format("/proc/{}/stat", pid));
  if (!line) {
    return std::nullopt;
  }
  size_t close = line->rfind(')');
  if (close == std::string::npos) {
    return std::nullopt;
  }
  std::istringstream rest(line->substr(close + 1));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) {
    fields.push_back(std::move(field));
  }
  // fields[0] is field 3 of the file (state), fields[19] field 22 (starttime).
  constexpr size_t kStartTimeIndex = 22 - 3;
  if (fields.size() <= kStartTimeIndex || fields[0].size() != 1) {
    return std::nullopt;
  }
  std::optional<uint64_t> start = parseNumber<uint64_t>(fields[kStartTimeIndex]);
  if (!start) {
    return std::nullopt;
  }
  return StatFields{fields[0][0], *start};
}

std::optional<std::string> readBootId() {
  std::optional<std::string> bootId = readFirstLine("/proc/sys/kernel/random/boot_id");
  if (!bootId || bootId->empty() || bootId->find(':') != std::string::npos) {
    return std::nullopt;
  }
  return bootId;
}

} // namespace

std::optional<ProcessIdentity> readProcessIdentity(int64_t pid) {
  if (pid <= 0) {
    return std::nullopt;
  }
  std::optional<std::string> bootId = readBootId();
  struct stat pidNamespace {};
  if (!bootId || ::stat(fmt::format("/proc/{}/ns/pid", pid).c_str(), &pidNamespace) != 0) {
    return std::nullopt;
  }
  std::optional<StatFields> fields = readStat(pid);
  if (!fields) {
    return std::nullopt;
  }
  return ProcessIdentity{*bootId, static_cast<uint64_t>(pidNamespace.st_ino), pid,
                         fields->startTicks};
}

const std::optional<ProcessIdentity> &currentProcessIdentity() {
  static const std::optional<ProcessIdentity> identity = []() -> std::optional<ProcessIdentity> {
    // /proc may be mounted for another pid namespace (a container sharing the host's), where
    // our pid names someone else; /proc/self must name getpid() for the numbers to be ours.
    char self[32] = {};
    ssize_t length = ::readlink("/proc/self", self, sizeof self - 1);
    int64_t pid = ::getpid();
    if (length <= 0 || parseNumber<int64_t>(std::string_view(self, length)) != pid) {
      return std::nullopt;
    }
    return readProcessIdentity(pid);
  }();
  return identity;
}

std::string formatProcessToken(const ProcessIdentity &identity) {
  return fmt::format("{}{}:{}:{}:{}", kTokenPrefix, identity.bootId, identity.pidNamespace,
                     identity.pid, identity.startTicks);
}

std::string ownerWithProcessToken(std::string_view prefix) {
  const std::optional<ProcessIdentity> &identity = currentProcessIdentity();
  if (!identity) {
    return std::string(prefix);
  }
  return fmt::format("{}/{}", prefix, formatProcessToken(*identity));
}

std::optional<ProcessIdentity> parseOwnerIdentity(std::string_view owner) {
  size_t slash = owner.rfind('/');
  std::string_view token = slash == std::string_view::npos ? owner : owner.substr(slash + 1);
  if (!token.starts_with(kTokenPrefix)) {
    return std::nullopt;
  }
  token.remove_prefix(kTokenPrefix.size());
  std::vector<std::string_view> parts;
  for (size_t colon; (colon = token.find(':')) != std::string_view::npos;) {
    parts.push_back(token.substr(0, colon));
    token.remove_prefix(colon + 1);
  }
  parts.push_back(token);
  if (parts.size() != 4 || parts[0].empty()) {
    return std::nullopt;
  }
  std::optional<uint64_t> pidNamespace = parseNumber<uint64_t>(parts[1]);
  std::optional<int64_t> pid = parseNumber<int64_t>(parts[2]);
  std::optional<uint64_t> startTicks = parseNumber<uint64_t>(parts[3]);
  // kill() below takes a pid_t; 0 and negative pids address groups, never one process.
  if (!pidNamespace || !pid || !startTicks || *pid <= 0 ||
      *pid > std::numeric_limits<pid_t>::max()) {
    return std::nullopt;
  }
  return ProcessIdentity{std::string(parts[0]), *pidNamespace, *pid, *startTicks};
}

OwnerLiveness ownerLiveness(std::string_view owner) {
  std::optional<ProcessIdentity> claimed = parseOwnerIdentity(owner);
  const std::optional<ProcessIdentity> &self = currentProcessIdentity();
  if (!claimed || !self || claimed->bootId != self->bootId ||
      claimed->pidNamespace != self->pidNamespace) {
    return OwnerLiveness::Unknown;
  }
  // kill(pid, 0) sees every process of our pid namespace, even where /proc hides other
  // users' (hidepid): ESRCH proves the pid free, so the process that held it has been reaped.
  if (::kill(static_cast<pid_t>(claimed->pid), 0) != 0 && errno == ESRCH) {
    return OwnerLiveness::Dead;
  }
  std::optional<StatFields> fields = readStat(claimed->pid);
  if (!fields) {
    return OwnerLiveness::Unknown; // hidden from us, or gone this instant: the next look tells
  }
  if (fields->startTicks != claimed->startTicks) {
    return OwnerLiveness::Dead; // the pid was reused by a process started later
  }
  // A zombie is exited but not reaped; a thread-group leader shows as one while its other
  // threads still run, so it proves nothing.
  if (fields->state == 'Z' || fields->state == 'X') {
    return OwnerLiveness::Unknown;
  }
  return OwnerLiveness::Alive;
}

} // namespace kotoba::runtime
