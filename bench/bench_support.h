// Shared pieces of the benchmark program: a report that collects timed samples and facts and
// prints them as one JSON object (bench/run takes the medians and writes the table), a
// stopwatch, memory readings from /proc, compiling generated workflow text, and store files
// in a private temporary directory.
#pragma once

#include "kotoba/compiler/check.h"
#include "kotoba/compiler/codegen.h"
#include "kotoba/runtime/engine.h"
#include "kotoba/vm/json.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kotoba::bench {

// Sizes and repetitions of one benchmark run; --smoke shrinks the sizes.
struct Options {
  bool smoke = false;
  int repetitions = 5;
  std::string mode;   // a durability mode name, for the benchmarks that take one
  int64_t size = 0;   // 0: the benchmark's own default
};

// What a benchmark prints: samples per metric (bench/run reports their median) and facts
// measured once (row counts, sizes, machine details).
class Report {
public:
  void sample(const std::string &metric, double value) { samples_[metric].push_back(value); }
  void fact(const std::string &key, nlohmann::json value) { facts_[key] = std::move(value); }
  void print() const;

private:
  std::map<std::string, std::vector<double>> samples_;
  nlohmann::json facts_ = nlohmann::json::object();
};

class Stopwatch {
public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  [[nodiscard]] double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

private:
  std::chrono::steady_clock::time_point start_;
};

// Kilobytes from /proc/self/status: VmHWM (peak resident) and VmRSS (resident now).
[[nodiscard]] int64_t peakRssKb();
[[nodiscard]] int64_t currentRssKb();

// Compiles workflow text; aborts the benchmark with the diagnostics when it does not check.
[[nodiscard]] std::shared_ptr<const vm::Module> compileText(const std::string &name,
                                                            const std::string &text);

[[nodiscard]] Value parseOrDie(const std::string &json);

// A directory of its own under the system temporary directory, removed on destruction.
class ScratchDirectory {
public:
  explicit ScratchDirectory(const std::string &label);
  ~ScratchDirectory();
  ScratchDirectory(const ScratchDirectory &) = delete;
  ScratchDirectory &operator=(const ScratchDirectory &) = delete;
  [[nodiscard]] std::string file(const std::string &name) const {
    return (path_ / name).string();
  }

private:
  std::filesystem::path path_;
};

[[nodiscard]] std::unique_ptr<runtime::Store> openStore(const std::string &path,
                                                        runtime::Durability durability);

// Binds `noop`, the activity of every step benchmark: returns {} at once.
void bindNoop(runtime::ActivityRegistry &registry);

// Prints the message and exits with status 1: a benchmark that cannot run has no numbers.
[[noreturn]] void fail(const std::string &message);

// A loop of `n` no-op activities (3 events each: scheduled, started, completed); with
// `parkOnSignal`, the run then waits for the signal "go" and ends when it arrives.
[[nodiscard]] std::string loopWorkflow(bool parkOnSignal);

// Starts a run of the module's entry workflow with the given inputs (JSON object text).
[[nodiscard]] std::string startRun(runtime::Engine &engine, const std::string &moduleHash,
                                   const std::string &inputsJson);

// The benchmarks, one function each (the files named after them).
void benchCompile(const Options &options, Report &report);
void benchVm(const Options &options, Report &report);
void benchDurable(const Options &options, Report &report);
void benchThroughput(const Options &options, Report &report);
void benchFanOut(const Options &options, Report &report);
void benchReplay(const Options &options, Report &report);
void benchResume(const Options &options, Report &report);
void benchMemory(const Options &options, Report &report);
void benchStorage(const Options &options, Report &report);

} // namespace kotoba::bench
