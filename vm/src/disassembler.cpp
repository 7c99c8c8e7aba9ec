// Renders modules as text. Operand formatting is driven by the operand kinds of
// opcodes.def, so a new opcode prints correctly without touching this file. Column
// positions are fixed (the comment starts at a fixed column unless the operands are longer),
// which keeps diffs of two listings down to the lines that really changed.
#include "kotoba/vm/disassembler.h"

#include "kotoba/vm/builtins.h"
#include "kotoba/vm/descriptors.h"
#include "kotoba/vm/json.h"

#include <fmt/format.h>

#include <map>

namespace kotoba::vm {
namespace {

constexpr size_t kIndexWidth = 6;     // "@1234 "
constexpr size_t kMnemonicWidth = 14; // the longest mnemonic, CONTINUEASNEW, and a space
constexpr size_t kCommentColumn = 56; // where "; synopsis" starts, counted after the indent

// Compact JSON cut to `width` bytes, never inside a UTF-8 sequence.
std::string shortJson(const Value &value, size_t width) {
  std::string json = toJson(value);
  if (json.size() <= width) {
    return json;
  }
  size_t cut = width > 3 ? width - 3 : 0;
  while (cut > 0 && (static_cast<unsigned char>(json[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  json.resize(cut);
  return json + "...";
}

// Columns a line takes in a terminal: code points, since constants may hold any text.
size_t displayWidth(std::string_view text) {
  size_t width = 0;
  for (char byte : text) {
    if ((static_cast<unsigned char>(byte) & 0xC0) != 0x80) {
      ++width;
    }
  }
  return width;
}

std::string milliseconds(int64_t value) { return fmt::format("{} ms", value); }

std::string formatOperand(const Module &module, const Workflow &workflow,
                          const Instruction &instruction, size_t slot,
                          const DisassemblyOptions &options) {
  const OpcodeInfo &info = opcodeInfo(instruction.opcode);
  uint32_t value = instruction.operands[slot];
  switch (info.operands[slot]) {
  case OperandKind::None:
    return "";
  case OperandKind::Reg:
  case OperandKind::RegRange:
    return fmt::format("r{}", value);
  case OperandKind::PathRegs: {
    // The path descriptor is operand C; without dynamic indexes, D means nothing.
    uint32_t pathIndex = instruction.operands[2];
    if (pathIndex < module.constants.size()) {
      Decoded<PathDescriptor> path = decodePath(module.constants[pathIndex]);
      if (path && path->dynamicCount() == 0 && value == 0) {
        return "-";
      }
    }
    return fmt::format("r{}", value);
  }
  case OperandKind::Count:
    return fmt::format("#{}", value);
  case OperandKind::Jump:
    return fmt::format("@{}", value);
  case OperandKind::Branches:
  case OperandKind::IterationBlock:
  case OperandKind::CompensationBlock:
    return fmt::format("b{}", value);
  case OperandKind::Bool:
    return value == 0 ? "false" : value == 1 ? "true" : fmt::format("#{}", value);
  case OperandKind::Root:
    if (std::optional<StateRoot> root = stateRootFromNumber(value)) {
      return std::string(stateRootSpelling(*root));
    }
    return fmt::format("root#{}", value);
  case OperandKind::Builtin:
    if (const BuiltinInfo *builtin = findBuiltinById(value)) {
      return builtin->name;
    }
    return fmt::format("builtin#{}", value);
  case OperandKind::HostPred:
    if (value < workflow.hostPredicates.size()) {
      std::string name;
      appendJsonString(name, workflow.hostPredicates[value]);
      return fmt::format("p{}={}", value, name);
    }
    return fmt::format("p{}", value);
  case OperandKind::Const:
  case OperandKind::Name:
  case OperandKind::Path:
  case OperandKind::Keys:
  case OperandKind::ActivityCall:
  case OperandKind::Timer:
  case OperandKind::Signal:
  case OperandKind::Event:
  case OperandKind::Child:
  case OperandKind::Decision:
  case OperandKind::Parallel:
  case OperandKind::Foreach:
  case OperandKind::Saga:
  case OperandKind::Compensation:
  case OperandKind::ErrorTypes:
    if (value < module.constants.size()) {
      return fmt::format("k{}={}", value,
                         shortJson(module.constants[value], options.maxConstantWidth));
    }
    return fmt::format("k{}", value);
  }
  return fmt::format("?{}", value);
}

// Splits source texts into lines once per file, on demand.
class SourceLines {
public:
  explicit SourceLines(const DisassemblyOptions &options) : options_(options) {}

  std::optional<std::string_view> line(std::string_view file, uint32_t number) {
    if (!options_.sourceText || number == 0) {
      return std::nullopt;
    }
    auto [entry, inserted] = lines_.try_emplace(std::string(file));
    if (inserted) {
      if (std::optional<std::string_view> text = options_.sourceText(file)) {
        size_t start = 0;
        while (start <= text->size()) {
          size_t end = text->find('\n', start);
          if (end == std::string_view::npos) {
            end = text->size();
          }
          std::string_view line = text->substr(start, end - start);
          if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
          }
          entry->second.push_back(line);
          start = end + 1;
        }
      }
    }
    if (number > entry->second.size()) {
      return std::nullopt;
    }
    return entry->second[number - 1];
  }

private:
  const DisassemblyOptions &options_;
  std::map<std::string, std::vector<std::string_view>, std::less<>> lines_;
};

std::string_view trimmed(std::string_view text) {
  size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) {
    return {};
  }
  size_t last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

void appendParams(std::string &out, std::string_view title, const std::vector<Param> &params,
                  const DisassemblyOptions &options) {
  if (params.empty()) {
    return;
  }
  out += fmt::format("  {}:\n", title);
  for (const Param &param : params) {
    out += fmt::format("    {}: {}", param.name, param.type);
    if (param.required) {
      out += " required";
    }
    if (param.defaultValue) {
      out += " = " + shortJson(*param.defaultValue, options.maxConstantWidth);
    }
    out += '\n';
  }
}

void appendQuoted(std::string &out, std::string_view label, std::string_view text) {
  if (text.empty()) {
    return;
  }
  out += fmt::format("  {} ", label);
  appendJsonString(out, text);
  out += '\n';
}

void appendBlock(std::string &out, const Module &module, const Workflow &workflow,
                 size_t blockIndex, SourceLines &sources, const DisassemblyOptions &options) {
  const Block &block = workflow.blocks[blockIndex];
  out += fmt::format("\n  block b{} ({}):\n", blockIndex, blockKindName(block.kind));
  std::optional<SourceLocation> previous;
  for (size_t index = 0; index < block.code.size(); ++index) {
    if (index < block.locations.size()) {
      const SourceLocation &location = block.locations[index];
      bool sameLine =
          previous && previous->file == location.file && previous->line == location.line;
      if (!sameLine && location.line != 0 && location.file.index < module.sourceFiles.size()) {
        const std::string &file = module.sourceFiles[location.file.index];
        out += fmt::format("    ; {}:{}", file, location.line);
        if (std::optional<std::string_view> text = sources.line(file, location.line)) {
          out += fmt::format("  {}", trimmed(*text));
        }
        out += '\n';
      }
      previous = location;
    }
    out += "    ";
    out += disassembleInstruction(module, workflow, block, index, options);
    out += '\n';
  }
}

} // namespace

std::string disassembleInstruction(const Module &module, const Workflow &workflow,
                                   const Block &block, size_t index,
                                   const DisassemblyOptions &options) {
  const Instruction &instruction = block.code[index];
  const OpcodeInfo &info = opcodeInfo(instruction.opcode);
  std::string line = fmt::format("{:<{}}{:<{}}", fmt::format("@{}", index), kIndexWidth,
                                 info.mnemonic, kMnemonicWidth);
  size_t used = usedOperandCount(instruction.opcode);
  for (size_t slot = 0; slot < used; ++slot) {
    if (slot > 0) {
      line += ", ";
    }
    line += formatOperand(module, workflow, instruction, slot, options);
  }
  // Trailing spaces would make the listing noisy in diffs; pad only before a comment.
  while (!line.empty() && line.back() == ' ') {
    line.pop_back();
  }
  size_t width = displayWidth(line);
  line.append(width < kCommentColumn ? kCommentColumn - width : 1, ' ');
  line += "; ";
  line += info.synopsis;
  return line;
}

std::string disassemble(const Module &module, const DisassemblyOptions &options) {
  std::string out;
  out += fmt::format("module: {} source file(s), {} constant(s), {} workflow(s)\n",
                     module.sourceFiles.size(), module.constants.size(), module.workflows.size());
  for (size_t index = 0; index < module.sourceFiles.size(); ++index) {
    out += fmt::format("  file f{} {}\n", index, module.sourceFiles[index]);
  }
  for (const ActivityDecl &activity : module.activities) {
    out += fmt::format("activity {}", activity.name);
    if (activity.timeoutMs) {
      out += " timeout " + milliseconds(*activity.timeoutMs);
    }
    out += '\n';
    if (activity.declaredIn) {
      out += fmt::format("  declared in f{}\n", activity.declaredIn->index);
    }
    appendQuoted(out, "description", activity.description);
    if (!activity.retryPolicy.isNull()) {
      out += "  retry " + shortJson(activity.retryPolicy, options.maxConstantWidth) + '\n';
    }
    if (!activity.implementation.isNull()) {
      out +=
          "  implementation " + shortJson(activity.implementation, options.maxConstantWidth) + '\n';
    }
  }
  for (const std::string &name : module.hostActivities) {
    out += fmt::format("host activity {}\n", name);
  }

  SourceLines sources(options);
  for (const Workflow &workflow : module.workflows) {
    out += fmt::format("\nworkflow {}\n", workflow.id);
    appendQuoted(out, "name", workflow.name);
    appendQuoted(out, "version", workflow.version);
    appendQuoted(out, "description", workflow.description);
    appendParams(out, "inputs", workflow.inputs, options);
    appendParams(out, "outputs", workflow.outputs, options);
    if (workflow.timeoutMs) {
      out += "  timeout " + milliseconds(*workflow.timeoutMs) + '\n';
    }
    if (!workflow.retryPolicy.isNull()) {
      out += "  retry " + shortJson(workflow.retryPolicy, options.maxConstantWidth) + '\n';
    }
    for (size_t index = 0; index < workflow.hostPredicates.size(); ++index) {
      out += fmt::format("  host predicate p{} {}\n", index, workflow.hostPredicates[index]);
    }
    if (!workflow.metadata.isNull()) {
      out += "  metadata " + shortJson(workflow.metadata, options.maxConstantWidth) + '\n';
    }
    out += fmt::format("  registers {}\n", workflow.registerCount);
    // Compensation blocks last: they run only when something fails, so they read best
    // after the code that registers them.
    for (size_t index = 0; index < workflow.blocks.size(); ++index) {
      if (workflow.blocks[index].kind != BlockKind::Compensation) {
        appendBlock(out, module, workflow, index, sources, options);
      }
    }
    for (size_t index = 0; index < workflow.blocks.size(); ++index) {
      if (workflow.blocks[index].kind == BlockKind::Compensation) {
        appendBlock(out, module, workflow, index, sources, options);
      }
    }
  }
  return out;
}

} // namespace kotoba::vm
