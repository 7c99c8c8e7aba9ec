// Benchmarks 1 and 2 of issue #8: compiling a generated 10,000-step workflow (nested seq,
// parallel and decision), and the VM alone on an expression-heavy loop, with no store and
// no engine, in instructions per second.
#include "bench_support.h"

#include "kotoba/vm/machine.h"
#include "kotoba/vm/opcodes.h"

#include <fmt/format.h>

#include <sstream>

namespace kotoba::bench {

namespace {

// One leaf step: every other one an activity with a unique step id, the rest `set`s.
void appendLeaf(std::string &out, int64_t &leafNumber) {
  int64_t number = leafNumber++;
  if (number % 2 == 0) {
    out += fmt::format(R"({{ op: "activity", activity_ref: "noop", id: "s{}", )"
                       R"(input_mapping: {{ k: $.inputs.n + {} }} }})",
                       number, number);
  } else {
    out += fmt::format(R"({{ op: "set", vars: {{ v{}: $.inputs.n * 2 + {} }} }})", number % 64,
                       number);
  }
}

// A strategy holding `steps` leaves: seq, parallel and decision by turns with depth, each
// node splitting its leaves over up to 8 children.
void appendTree(std::string &out, int64_t steps, int depth, int64_t &leafNumber) {
  if (steps == 1) {
    appendLeaf(out, leafNumber);
    return;
  }
  int64_t children = std::min<int64_t>(steps, 8);
  std::vector<int64_t> sizes(static_cast<size_t>(children), steps / children);
  for (int64_t extra = 0; extra < steps % children; ++extra) {
    ++sizes[static_cast<size_t>(extra)];
  }
  switch (depth % 3) {
  case 0:
  case 1: {
    out += depth % 3 == 0 ? R"({ op: "seq", strategies: [)" : R"({ op: "parallel", branches: [)";
    for (size_t child = 0; child < sizes.size(); ++child) {
      out += child == 0 ? "\n" : ",\n";
      appendTree(out, sizes[child], depth + 1, leafNumber);
    }
    out += "] }";
    return;
  }
  case 2: {
    out += R"({ op: "decision", conditions: [)";
    for (size_t child = 0; child + 1 < sizes.size(); ++child) {
      out += fmt::format("{}{{ condition: $.inputs.n > {}, branch: ", child == 0 ? "\n" : ",\n",
                         child * 10);
      appendTree(out, sizes[child], depth + 1, leafNumber);
      out += " }";
    }
    out += "],\n default_branch: ";
    appendTree(out, sizes.back(), depth + 1, leafNumber);
    out += " }";
    return;
  }
  }
}

std::string generatedWorkflow(int64_t steps) {
  std::string out = R"({ workflow: { id: "generated",
  inputs: [{ name: "n", type: "integer", required: true }],
  strategy: )";
  int64_t leafNumber = 0;
  appendTree(out, steps, 0, leafNumber);
  out += " } }\n";
  return out;
}

// The expression-heavy loop: integer arithmetic, comparisons, string building and a builtin
// per iteration, all in one `set` so the loop body runs straight through.
const char *const kCrunch = R"({ workflow: { id: "crunch",
  inputs: [{ name: "n", type: "integer", required: true }],
  outputs: [{ name: "acc" }, { name: "tag" }],
  output_mapping: { acc: $.vars.acc, tag: $.vars.tag },
  strategy: { op: "seq", strategies: [
    { op: "set", vars: { i: 0, acc: 0, a: 0, b: 0, tag: "" } },
    { op: "loop", while: $.vars.i < $.inputs.n, max_iterations: 1000000000,
      body: { op: "set", vars: {
        a: $.vars.i * 3 + 7,
        b: ($.vars.a - $.vars.i) * 2 + $.vars.b % 11,
        acc: ($.vars.acc + $.vars.a * $.vars.b) % 1000003,
        tag: len("k" + to_string($.vars.i % 97)) > 2 && $.vars.acc >= 0,
        i: $.vars.i + 1 } } } ] } } })";

// Instructions one loop iteration executes: the span from the target of the loop's
// backward JMP to the JMP itself, less the instructions a forward jump inside it always
// skips on the way round (the limit check jumps over its RAISE, `&&` over its false).
// Checked against the disassembly: the span is straight-line code apart from those.
int64_t instructionsPerIteration(const vm::Module &module) {
  const vm::Block &body = module.workflows.front().blocks.front();
  for (size_t index = 0; index < body.code.size(); ++index) {
    const vm::Instruction &jump = body.code[index];
    if (jump.opcode != vm::Opcode::Jmp || jump.a() >= index) {
      continue;
    }
    int64_t executed = static_cast<int64_t>(index - jump.a() + 1);
    for (size_t inner = jump.a(); inner < index; ++inner) {
      const vm::Instruction &instruction = body.code[inner];
      if (instruction.opcode == vm::Opcode::Jmp && instruction.a() > inner &&
          instruction.a() <= index) {
        executed -= static_cast<int64_t>(instruction.a() - inner - 1);
      }
    }
    return executed;
  }
  fail("the crunch workflow has no backward jump");
}

} // namespace

void benchCompile(const Options &options, Report &report) {
  int64_t steps = options.size > 0 ? options.size : (options.smoke ? 200 : 10'000);
  std::string text = generatedWorkflow(steps);
  int64_t before = currentRssKb();
  for (int repetition = 0; repetition < options.repetitions; ++repetition) {
    Stopwatch watch;
    compiler::Compilation compilation;
    bool ok = compiler::checkSource(compilation, "generated.kotoba", text);
    double checked = watch.seconds();
    if (!ok) {
      std::ostringstream diagnostics;
      compilation.diagnostics.print(diagnostics);
      fail("the generated workflow does not compile:\n" + diagnostics.str().substr(0, 2000));
    }
    vm::Module module = compiler::generateModule(compilation.program, compilation.sources);
    double total = watch.seconds();
    report.sample("seconds", total);
    report.sample("check_seconds", checked);
    report.sample("steps_per_second", static_cast<double>(steps) / total);
    if (module.workflows.empty()) {
      fail("the generated module has no workflow");
    }
  }
  report.fact("steps", steps);
  report.fact("source_bytes", text.size());
  // Peak memory of the compile over the resident size before it, per source byte; where it
  // goes is in docs/fuzzing.md (Large inputs).
  report.fact("peak_rss_growth_kb", peakRssKb() - before);
  report.fact("peak_bytes_per_source_byte",
              static_cast<double>(peakRssKb() - before) * 1024.0 /
                  static_cast<double>(text.size()));
}

void benchVm(const Options &options, Report &report) {
  int64_t iterations = options.size > 0 ? options.size : (options.smoke ? 2'000 : 300'000);
  std::shared_ptr<const vm::Module> module = compileText("crunch.kotoba", kCrunch);
  int64_t perIteration = instructionsPerIteration(*module);
  Value inputs = parseOrDie(fmt::format(R"({{"n": {}}})", iterations));
  for (int repetition = 0; repetition < options.repetitions; ++repetition) {
    vm::Machine machine(module, 0, vm::RunInfo{"bench-vm", "", 1, 0, std::nullopt});
    Stopwatch watch;
    std::vector<vm::Command> commands = machine.start(inputs);
    double seconds = watch.seconds();
    if (machine.status() != vm::RunStatus::Completed) {
      fail("the crunch workflow did not complete");
    }
    double instructions = static_cast<double>(iterations * perIteration);
    report.sample("seconds", seconds);
    report.sample("instructions_per_second", instructions / seconds);
    report.sample("iterations_per_second", static_cast<double>(iterations) / seconds);
  }
  report.fact("iterations", iterations);
  report.fact("instructions_per_iteration", perIteration);
}

} // namespace kotoba::bench
