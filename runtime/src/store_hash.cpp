// The hash chains over a run's history and checkpoints, and their verification. The
// encoding is the one runtime/schema/store.sql documents: a domain tag, the previous hash,
// then each field with its length, so no two different events can encode to the same bytes
// (a step id ending where a location begins cannot be confused with another split).
#include "kotoba/runtime/store.h"

#include "store_event_rows.h"
#include "store_internal.h"
#include "store_rows.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <limits>

namespace kotoba::runtime {
namespace {

// Collects one chain link's encoding, then hashes it in one call. SHA-256 is OpenSSL's
// libcrypto, which uses the CPU's SHA extensions where it has them: llvm::SHA256 (portable C)
// was 22% of the batch writer's instructions in the throughput benchmark (callgrind,
// bench/findings.md, "The batch writer thread").
class ChainHasher {
public:
  explicit ChainHasher(std::string_view tag, const Hash &previous) {
    encoded_.reserve(256);
    text(tag);
    hash(previous);
  }

  void integer(int64_t value) {
    auto bits = static_cast<uint64_t>(value);
    for (size_t index = 0; index < 8; ++index) {
      encoded_.push_back(static_cast<char>(static_cast<uint8_t>(bits >> (8 * index))));
    }
  }

  void text(std::string_view bytes) {
    integer(static_cast<int64_t>(bytes.size()));
    encoded_.append(bytes);
  }

  void hash(const Hash &value) {
    encoded_.append(reinterpret_cast<const char *>(value.data()), value.size());
  }

  [[nodiscard]] Hash finish() {
    // OpenSSL 3's one-shot SHA256() looks the algorithm up on every call; one fetched
    // algorithm and one context per thread skip that.
    static EVP_MD *const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(
        EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    Hash result;
    unsigned int length = 0;
    if (sha256 == nullptr || context == nullptr ||
        EVP_DigestInit_ex2(context.get(), sha256, nullptr) != 1 ||
        EVP_DigestUpdate(context.get(), encoded_.data(), encoded_.size()) != 1 ||
        EVP_DigestFinal_ex(context.get(), result.data(), &length) != 1 || length != result.size()) {
      // Only an OpenSSL without its default provider (or out of memory) gets here; a wrong
      // hash would break every chain, so stop rather than store one.
      fmt::print(stderr, "kotoba: OpenSSL could not compute a SHA-256 hash\n");
      std::abort();
    }
    return result;
  }

private:
  std::string encoded_;
};

} // namespace

Hash eventHash(const Hash &previous, std::string_view runId, int64_t seq, int64_t typeNumber,
               int64_t timeMs, int64_t tx, std::string_view stepId, std::string_view location,
               std::string_view payloadJson) {
  ChainHasher hasher("kotoba.event.v1", previous);
  hasher.text(runId);
  hasher.integer(seq);
  hasher.integer(typeNumber);
  hasher.integer(timeMs);
  hasher.integer(tx);
  hasher.text(stepId);
  hasher.text(location);
  hasher.text(payloadJson);
  return hasher.finish();
}

Hash checkpointHash(const Hash &previous, std::string_view runId, int64_t seq,
                    const Hash &eventHashAtSeq, std::string_view state) {
  ChainHasher hasher("kotoba.checkpoint.v1", previous);
  hasher.text(runId);
  hasher.integer(seq);
  hasher.hash(eventHashAtSeq);
  hasher.text(state);
  return hasher.finish();
}

namespace {

using detail::Operation;
using detail::Statement;

BrokenLink broken(BrokenLink::Where where, int64_t seq, std::string reason) {
  return BrokenLink{where, seq, std::move(reason)};
}

// Walks the events in seq order; stops at the first link that does not hold. Each event's
// previous hash is the hash stored with the event before it, so a changed, removed or
// reordered event shows as the first event whose recomputed hash differs from its own.
StoreStatus verifyEvents(detail::Connection &connection, const Operation &operation,
                         std::string_view runId, ChainReport &report,
                         std::vector<Hash> &hashesBySeq) {
  StoreResult<Statement> statement = connection.prepare(operation, detail::kRunEventsSql);
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, runId)
      .bind(2, int64_t{1})
      .bind(3, detail::kMaxEventSeq)
      .bind(4, std::numeric_limits<int64_t>::max());
  Hash previous{};
  while (true) {
    StoreResult<bool> row = statement->next(operation);
    if (!row.ok()) {
      return std::move(row).error();
    }
    if (!row.value()) {
      return {};
    }
    detail::EventRow event = detail::readEventRow(*statement);
    int64_t seq = event.seq;
    int64_t expected = static_cast<int64_t>(hashesBySeq.size()) + 1;
    ++report.eventsChecked;
    if (seq != expected) {
      report.firstBroken = broken(BrokenLink::Where::Event, seq,
                                  fmt::format("event {} follows event {}: the events between "
                                              "them are missing",
                                              seq, expected - 1));
      return {};
    }
    Hash stored{};
    if (!detail::copyHash(event.hash, stored)) {
      report.firstBroken =
          broken(BrokenLink::Where::Event, seq, "its stored hash is not 32 bytes long");
      return {};
    }
    Hash recomputed = eventHash(previous, runId, seq, event.typeNumber, event.timeMs, event.tx,
                                event.stepId, event.location, event.payload);
    if (recomputed != stored) {
      report.firstBroken = broken(BrokenLink::Where::Event, seq,
                                  fmt::format("its content does not match its hash (stored {}, "
                                              "recomputed {})",
                                              hashHex(stored), hashHex(recomputed)));
      return {};
    }
    hashesBySeq.push_back(stored);
    previous = stored;
  }
}

StoreStatus verifyCheckpoints(detail::Connection &connection, const Operation &operation,
                              std::string_view runId, ChainReport &report,
                              const std::vector<Hash> &hashesBySeq) {
  StoreResult<Statement> statement = connection.prepare(
      operation, "SELECT seq, state, hash, prev_hash FROM checkpoints WHERE run_id = ?1 "
                 "ORDER BY seq");
  if (!statement.ok()) {
    return std::move(statement).error();
  }
  statement->bind(1, runId);
  std::optional<std::pair<int64_t, Hash>> previous;
  while (true) {
    StoreResult<bool> row = statement->next(operation);
    if (!row.ok()) {
      return std::move(row).error();
    }
    if (!row.value()) {
      return {};
    }
    int64_t seq = statement->integer(0);
    ++report.checkpointsChecked;
    Hash stored{};
    Hash storedPrevious{};
    if (!detail::copyHash(statement->bytes(2), stored) ||
        !detail::copyHash(statement->bytes(3), storedPrevious)) {
      report.firstBroken =
          broken(BrokenLink::Where::Checkpoint, seq, "its stored hash is not 32 bytes long");
      return {};
    }
    if (seq < 1 || seq > static_cast<int64_t>(hashesBySeq.size())) {
      report.firstBroken = broken(BrokenLink::Where::Checkpoint, seq,
                                  fmt::format("it covers event {}, which the history does not "
                                              "have",
                                              seq));
      return {};
    }
    // The oldest kept checkpoint may name a pruned predecessor; later ones name the one
    // before them.
    if (previous && storedPrevious != previous->second) {
      report.firstBroken = broken(BrokenLink::Where::Checkpoint, seq,
                                  fmt::format("its prev_hash does not match the hash of the "
                                              "checkpoint at event {}",
                                              previous->first));
      return {};
    }
    Hash recomputed = checkpointHash(
        storedPrevious, runId, seq, hashesBySeq[static_cast<size_t>(seq - 1)], statement->bytes(1));
    if (recomputed != stored) {
      report.firstBroken = broken(BrokenLink::Where::Checkpoint, seq,
                                  "its state or the event it covers no longer "
                                  "matches its hash");
      return {};
    }
    previous = std::pair{seq, stored};
  }
}

} // namespace

StoreResult<ChainReport> StoreReader::verifyRun(std::string_view runId) const {
  Operation operation{connection_, "verify run {}", runId};
  int64_t lastSeq = 0;
  {
    StoreResult<Statement> statement =
        connection_.prepare(operation, "SELECT last_seq FROM runs WHERE id = ?1");
    if (!statement.ok()) {
      return std::move(statement).error();
    }
    statement->bind(1, runId);
    StoreResult<bool> row = statement->next(operation);
    if (!row.ok()) {
      return std::move(row).error();
    }
    if (!row.value()) {
      return operation.fail(StoreErrorKind::NotFound, fmt::format("no run has the id {}", runId));
    }
    lastSeq = statement->integer(0);
  }

  ChainReport report;
  std::vector<Hash> hashesBySeq;
  if (StoreStatus events = verifyEvents(connection_, operation, runId, report, hashesBySeq);
      !events.ok()) {
    return std::move(events).error();
  }
  if (report.firstBroken) {
    return report;
  }
  auto historyLength = static_cast<int64_t>(hashesBySeq.size());
  if (lastSeq != historyLength) {
    report.firstBroken = broken(BrokenLink::Where::Run, lastSeq,
                                fmt::format("the run's last_seq is {} but its history ends at "
                                            "event {}",
                                            lastSeq, historyLength));
    return report;
  }
  if (StoreStatus checkpoints =
          verifyCheckpoints(connection_, operation, runId, report, hashesBySeq);
      !checkpoints.ok()) {
    return std::move(checkpoints).error();
  }
  return report;
}

} // namespace kotoba::runtime
