// kotobac: the Kotoba compiler's command line. `check` reports diagnostics, `build` writes a
// .kbc module, `dis` prints a module's bytecode, `graph` draws a workflow.
#include "kotoba/compiler/compile.h"
#include "kotoba/compiler/graph.h"
#include "kotoba/vm/disassembler.h"
#include "kotoba/vm/module_format.h"
#include "kotoba/vm/verifier.h"

#include <CLI/CLI.hpp>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>

namespace {

using kotoba::compiler::Compilation;
using kotoba::compiler::DiagnosticKind;

// Exit codes shared with kotoba-vm (runtime.md section 9).
constexpr int exitOk = 0;
constexpr int exitUsage = 2;
constexpr int exitCompileError = 3;

int fail(int code, const std::string &message) {
  std::cerr << "kotobac: error: " << message << "\n";
  return code;
}

bool unreadable(const Compilation &compilation) {
  for (const auto &diagnostic : compilation.diagnostics.diagnostics()) {
    if (diagnostic.kind == DiagnosticKind::UnreadableFile) {
      return true;
    }
  }
  return false;
}

// The exit code for a compilation that reported errors.
int compileFailure(const Compilation &compilation) {
  return unreadable(compilation) ? exitUsage : exitCompileError;
}

std::optional<std::string> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Writes through a temporary file and a rename, so a crash never leaves half a module.
bool writeFileAtomically(const std::string &path, const std::vector<uint8_t> &bytes,
                         std::string &problem) {
  std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char *>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      problem = "cannot write '" + temporary + "'";
      return false;
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    problem = "cannot rename '" + temporary + "' to '" + path + "': " + error.message();
    std::filesystem::remove(temporary, error);
    return false;
  }
  return true;
}

bool isModuleFile(const std::string &path) {
  return std::filesystem::path(path).extension() == ".kbc";
}

int runCheck(const std::vector<std::string> &files, const std::optional<std::string> &workflow) {
  int status = exitOk;
  for (const std::string &file : files) {
    Compilation compilation;
    kotoba::compiler::CheckOptions options;
    options.entryWorkflow = workflow;
    bool ok = kotoba::compiler::checkProgram(compilation, file, options);
    compilation.diagnostics.print(std::cerr);
    if (!ok) {
      status = std::max(status, compileFailure(compilation));
    }
  }
  return status;
}

int runBuild(const std::string &file, std::string output,
             const std::optional<std::string> &workflow) {
  Compilation compilation;
  kotoba::compiler::CheckOptions options;
  options.entryWorkflow = workflow;
  std::optional<kotoba::vm::Module> module =
      kotoba::compiler::compileFile(compilation, file, options);
  compilation.diagnostics.print(std::cerr);
  if (!module) {
    return compileFailure(compilation);
  }
  std::vector<kotoba::vm::ModuleError> problems = kotoba::vm::verifyModule(*module);
  if (!problems.empty()) {
    // The code generator made a module its own verifier rejects: a compiler bug.
    return fail(exitCompileError,
                "internal error: generated module does not verify: " + problems.front().describe());
  }
  if (output.empty()) {
    output = std::filesystem::path(file).replace_extension(".kbc").string();
  }
  std::string problem;
  if (!writeFileAtomically(output, kotoba::vm::writeModule(*module), problem)) {
    return fail(exitUsage, problem);
  }
  return exitOk;
}

int runDisassemble(const std::string &file) {
  kotoba::vm::DisassemblyOptions options;
  if (isModuleFile(file)) {
    std::optional<std::string> bytes = readFile(file);
    if (!bytes) {
      return fail(exitUsage, "cannot read '" + file + "'");
    }
    auto loaded = kotoba::vm::loadModule(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(bytes->data()), bytes->size()));
    if (!loaded.ok()) {
      return fail(exitCompileError,
                  "'" + file + "' is not a valid module: " + loaded.errors().front().describe());
    }
    // Source lines are shown when the files the module names are still where they were.
    std::map<std::string, std::string> texts;
    options.sourceText = [&texts](std::string_view name) -> std::optional<std::string_view> {
      std::string key(name);
      auto found = texts.find(key);
      if (found == texts.end()) {
        std::optional<std::string> text = readFile(key);
        if (!text) {
          return std::nullopt;
        }
        found = texts.emplace(key, std::move(*text)).first;
      }
      return std::string_view(found->second);
    };
    std::cout << kotoba::vm::disassemble(loaded.value().module, options);
    return exitOk;
  }
  Compilation compilation;
  std::optional<kotoba::vm::Module> module = kotoba::compiler::compileFile(compilation, file);
  compilation.diagnostics.print(std::cerr);
  if (!module) {
    return compileFailure(compilation);
  }
  const kotoba::compiler::SourceManager &sources = compilation.sources;
  options.sourceText = [&sources](std::string_view name) -> std::optional<std::string_view> {
    std::optional<kotoba::compiler::FileId> id = sources.findByPath(std::string(name));
    if (!id) {
      return std::nullopt;
    }
    return sources.text(*id);
  };
  std::cout << kotoba::vm::disassemble(*module, options);
  return exitOk;
}

int runGraph(const std::string &file, const std::string &format,
             const std::optional<std::string> &workflow) {
  Compilation compilation;
  kotoba::compiler::CheckOptions options;
  options.entryWorkflow = workflow;
  bool ok = kotoba::compiler::checkProgram(compilation, file, options);
  compilation.diagnostics.print(std::cerr);
  if (!ok) {
    return compileFailure(compilation);
  }
  const kotoba::compiler::Program &program = compilation.program;
  kotoba::compiler::GraphFormat graphFormat = format == "mermaid"
                                                  ? kotoba::compiler::GraphFormat::Mermaid
                                                  : kotoba::compiler::GraphFormat::Dot;
  std::cout << kotoba::compiler::drawWorkflow(*program.workflows[program.entry], graphFormat);
  return exitOk;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"kotobac: compiles .kotoba workflow files"};
  app.require_subcommand(1);
  // Parse errors in the format of every other error (`kotobac: error: ...`); a word that
  // names no command is reported as such, not as a missing command.
  app.failure_message([](const CLI::App *parsed, const CLI::Error &error) {
    std::string message = error.what();
    if (error.get_name() == "RequiredError" && parsed->get_subcommands().empty() &&
        !parsed->remaining().empty()) {
      message = "unknown command '" + parsed->remaining().front() +
                "'; the commands are check, build, dis and graph";
    } else if (!message.empty()) {
      message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
    }
    return "kotobac: error: " + message + "\nrun `kotobac --help` for the commands\n";
  });

  std::vector<std::string> checkFiles;
  std::optional<std::string> workflow;
  CLI::App *check = app.add_subcommand("check", "report diagnostics only");
  check->add_option("files", checkFiles, "the .kotoba files to check")->required();
  check->add_option("--workflow", workflow, "the entry workflow id");

  std::string buildFile;
  std::string buildOutput;
  CLI::App *build = app.add_subcommand("build", "compile to a .kbc module");
  build->add_option("file", buildFile, "the .kotoba file")->required();
  build->add_option("-o,--output", buildOutput, "the module to write (default: FILE.kbc)");
  build->add_option("--workflow", workflow, "the entry workflow id");

  std::string disFile;
  CLI::App *dis = app.add_subcommand("dis", "print the bytecode of a .kbc or .kotoba file");
  dis->add_option("file", disFile, "the module or source file")->required();

  std::string graphFile;
  std::string graphFormat = "dot";
  CLI::App *graph = app.add_subcommand("graph", "draw the entry workflow");
  graph->add_option("file", graphFile, "the .kotoba file")->required();
  graph->add_option("--format", graphFormat, "dot or mermaid")
      ->check(CLI::IsMember({"dot", "mermaid"}));
  graph->add_option("--workflow", workflow, "the workflow to draw");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &error) {
    int code = app.exit(error);
    return code == 0 ? exitOk : exitUsage;
  }

  if (*check) {
    return runCheck(checkFiles, workflow);
  }
  if (*build) {
    return runBuild(buildFile, buildOutput, workflow);
  }
  if (*dis) {
    return runDisassemble(disFile);
  }
  if (*graph) {
    return runGraph(graphFile, graphFormat, workflow);
  }
  return exitUsage;
}
