// The benchmark program: `kotoba-bench NAME [--smoke] [--reps N] [--mode M] [--size N]` runs
// one benchmark of issue #8 and prints its samples and facts as one JSON object on stdout.
// bench/run builds it in release mode, runs every benchmark, takes the medians and writes
// docs/benchmarks.md. This file holds main and the helpers of bench_support.h.
#include "bench_support.h"

#include "kotoba/compiler/check.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace kotoba::bench {

void Report::print() const {
  nlohmann::json out = nlohmann::json::object();
  out["samples"] = nlohmann::json::object();
  for (const auto &[metric, values] : samples_) {
    out["samples"][metric] = values;
  }
  out["facts"] = facts_;
  std::cout << out.dump() << std::endl;
}

namespace {

int64_t statusField(const std::string &field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream numbers(line.substr(field.size() + 1));
      int64_t kilobytes = 0;
      numbers >> kilobytes;
      return kilobytes;
    }
  }
  return -1;
}

} // namespace

int64_t peakRssKb() {
  return statusField("VmHWM");
}

int64_t currentRssKb() {
  return statusField("VmRSS");
}

void fail(const std::string &message) {
  std::cerr << "kotoba-bench: " << message << "\n";
  std::exit(1);
}

std::shared_ptr<const vm::Module> compileText(const std::string &name, const std::string &text) {
  compiler::Compilation compilation;
  bool ok = compiler::checkSource(compilation, name, text);
  if (!ok) {
    std::ostringstream diagnostics;
    compilation.diagnostics.print(diagnostics);
    fail(fmt::format("the generated workflow {} does not compile:\n{}", name, diagnostics.str()));
  }
  return std::make_shared<const vm::Module>(
      compiler::generateModule(compilation.program, compilation.sources));
}

Value parseOrDie(const std::string &json) {
  Result<Value> parsed = parseJson(json);
  if (!parsed.ok()) {
    fail(fmt::format("bad json {}: {}", json, parsed.error().message));
  }
  return parsed.value();
}

ScratchDirectory::ScratchDirectory(const std::string &label) {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          fmt::format("kotoba-bench-{}-{}-{}", label, ::getpid(), counter++);
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScratchDirectory::~ScratchDirectory() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::unique_ptr<runtime::Store> openStore(const std::string &path,
                                          runtime::Durability durability) {
  runtime::StoreOptions options;
  options.durability = durability;
  auto opened = runtime::Store::open(path, options);
  if (!opened.ok()) {
    fail(fmt::format("cannot open {}: {}", path, opened.error().message));
  }
  return std::move(opened).value();
}

void bindNoop(runtime::ActivityRegistry &registry) {
  auto error = registry.bindFunction("noop", [](const Value &, runtime::ActivityContext &) {
    return Result<Value>(Value(Object()));
  });
  if (error) {
    fail("cannot bind noop: " + error->message);
  }
}

std::string loopWorkflow(bool parkOnSignal) {
  std::string park = parkOnSignal ? R"(, { op: "wait", signal: "go", id: "go" })" : "";
  return fmt::format(R"({{ workflow: {{ id: "steps",
  inputs: [{{ name: "n", type: "integer", required: true }}],
  outputs: [{{ name: "count" }}],
  output_mapping: {{ count: $.vars.i }},
  strategy: {{ op: "seq", strategies: [
    {{ op: "set", vars: {{ i: 0 }} }},
    {{ op: "loop", while: $.vars.i < $.inputs.n, max_iterations: 10000000,
      body: {{ op: "seq", strategies: [
        {{ op: "activity", activity_ref: "noop", id: "step" }},
        {{ op: "set", vars: {{ i: $.vars.i + 1 }} }} ] }} }}{} ] }} }} }})",
                     park);
}

std::string startRun(runtime::Engine &engine, const std::string &moduleHash,
                     const std::string &inputsJson) {
  runtime::StartRequest request;
  request.moduleHash = moduleHash;
  request.inputs = parseOrDie(inputsJson);
  auto runId = engine.start(request);
  if (!runId.ok()) {
    fail(fmt::format("cannot start a run: {}", runId.error().message));
  }
  return runId.value();
}

} // namespace kotoba::bench

int main(int argc, char **argv) {
  using namespace kotoba::bench;
  CLI::App app{"Kotoba benchmarks (issue #8); bench/run runs them all"};
  std::string name;
  Options options;
  app.add_option("benchmark", name,
                 "compile, vm, durable, throughput, fanout, replay, resume, memory, storage")
      ->required();
  app.add_flag("--smoke", options.smoke, "tiny sizes, to check that the benchmark works");
  app.add_option("--reps", options.repetitions, "repetitions inside this process");
  app.add_option("--mode", options.mode, "durability mode: full, normal or batch");
  app.add_option("--size", options.size, "the benchmark's size (steps, runs, events)");
  CLI11_PARSE(app, argc, argv);

  const std::map<std::string, void (*)(const Options &, Report &)> benchmarks = {
      {"compile", benchCompile},       {"vm", benchVm},         {"durable", benchDurable},
      {"throughput", benchThroughput}, {"fanout", benchFanOut}, {"replay", benchReplay},
      {"resume", benchResume},         {"memory", benchMemory}, {"storage", benchStorage}};
  auto found = benchmarks.find(name);
  if (found == benchmarks.end()) {
    fail(fmt::format("no benchmark named '{}'", name));
  }
  Report report;
  found->second(options, report);
  report.print();
  return 0;
}
