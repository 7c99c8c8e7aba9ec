// Decodes .kbc bytes into a module (layout in module_format.h and docs/kbc-format.md).
//
// The input is untrusted: any byte may be wrong. The reader therefore keeps one rule per
// read: check before use. Lengths and counts are compared with the bytes that remain before
// anything is allocated for them, recursion is bounded by kMaxConstantDepth, and copied text
// is charged against an expansion budget. The first problem stops the reader; from then on
// every read returns a harmless zero and every loop ends, so the decoding code reads
// straight through without an error check after each field.
#include "kotoba/vm/module_format.h"

#include "kotoba/vm/json.h"

#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_set>

namespace kotoba::vm {
namespace {

class BodyReader {
public:
  BodyReader(std::span<const uint8_t> bytes, uint32_t version, ModuleByteOffsets *offsets)
      : bytes_(bytes), version_(version), position_(kKbcHeaderSize), offsets_(offsets),
        expansionBudget_(kKbcExpansionFactor * bytes.size() + kKbcExpansionSlack) {}

  [[nodiscard]] bool failed() const { return error_.has_value(); }
  [[nodiscard]] ModuleError takeError() { return std::move(*error_); }

  Module module() {
    Module module;
    stringPool();
    uint32_t fileCount = count("source file count");
    for (uint32_t index = 0; index < fileCount && !failed(); ++index) {
      module.sourceFiles.push_back(copyString("source file name"));
    }
    uint32_t constantCount = count("constant count");
    for (uint32_t index = 0; index < constantCount && !failed(); ++index) {
      record(offsets_ ? &offsets_->constants : nullptr);
      module.constants.push_back(value(0));
    }
    uint32_t activityCount = count("activity count");
    for (uint32_t index = 0; index < activityCount && !failed(); ++index) {
      record(offsets_ ? &offsets_->activities : nullptr);
      ActivityDecl activity;
      activity.name = copyString("activity name");
      activity.description = copyString("activity description");
      activity.timeoutMs = optionalMilliseconds("activity timeout");
      activity.retryPolicy = value(0);
      activity.implementation = value(0);
      if (version_ >= 2 && presence("activity source file flag")) {
        uint64_t at = position_;
        uint32_t file = u32("activity source file");
        if (!failed() && file >= module.sourceFiles.size()) {
          fail(at, fmt::format("activity source file index {} out of range (the module has {} "
                               "source files)",
                               file, module.sourceFiles.size()));
        }
        activity.declaredIn = FileIndex{file};
      }
      module.activities.push_back(std::move(activity));
    }
    uint32_t hostActivityCount = count("host activity count");
    for (uint32_t index = 0; index < hostActivityCount && !failed(); ++index) {
      module.hostActivities.push_back(copyString("host activity name"));
    }
    uint32_t workflowCount = count("workflow count");
    for (uint32_t index = 0; index < workflowCount && !failed(); ++index) {
      record(offsets_ ? &offsets_->workflows : nullptr);
      module.workflows.push_back(workflow());
    }
    if (!failed() && position_ != bytes_.size()) {
      fail(position_,
           fmt::format("{} bytes after the end of the module", bytes_.size() - position_));
    }
    return module;
  }

private:
  void stringPool() {
    uint32_t stringCount = count("string pool size");
    for (uint32_t index = 0; index < stringCount && !failed(); ++index) {
      uint32_t length = count("string length");
      if (failed()) {
        return;
      }
      std::string_view text(reinterpret_cast<const char *>(bytes_.data() + position_), length);
      if (std::optional<size_t> bad = findInvalidUtf8(text)) {
        fail(position_ + *bad, fmt::format("string {} is not valid UTF-8", index));
        return;
      }
      strings_.emplace_back(text);
      position_ += length;
    }
    stringValues_.resize(strings_.size());
  }

  Workflow workflow() {
    Workflow workflow;
    workflow.id = copyString("workflow id");
    workflow.name = copyString("workflow name");
    workflow.version = copyString("workflow version");
    workflow.description = copyString("workflow description");
    workflow.metadata = value(0);
    workflow.inputs = params("input");
    workflow.outputs = params("output");
    workflow.timeoutMs = optionalMilliseconds("workflow timeout");
    workflow.retryPolicy = value(0);
    uint32_t predicateCount = count("host predicate count");
    for (uint32_t index = 0; index < predicateCount && !failed(); ++index) {
      workflow.hostPredicates.push_back(copyString("host predicate name"));
    }
    workflow.registerCount = u32("register count");
    uint32_t blockCount = count("block count");
    std::vector<std::vector<uint64_t>> *instructionOffsets = nullptr;
    if (offsets_ != nullptr) {
      instructionOffsets = &offsets_->instructions.emplace_back();
    }
    for (uint32_t index = 0; index < blockCount && !failed(); ++index) {
      workflow.blocks.push_back(
          block(instructionOffsets ? &instructionOffsets->emplace_back() : nullptr));
    }
    return workflow;
  }

  std::vector<Param> params(std::string_view what) {
    std::vector<Param> params;
    uint32_t paramCount = count(what);
    for (uint32_t index = 0; index < paramCount && !failed(); ++index) {
      Param param;
      param.name = copyString("param name");
      param.type = copyString("param type");
      uint64_t flagsOffset = position_;
      uint8_t flags = byte("param flags");
      if ((flags & ~uint8_t{3}) != 0) {
        fail(flagsOffset, fmt::format("param flags {:#04x} have unknown bits (only 0x01 required "
                                      "and 0x02 has default are defined)",
                                      flags));
      }
      param.required = (flags & 1) != 0;
      if ((flags & 2) != 0) {
        param.defaultValue = value(0);
      }
      params.push_back(std::move(param));
    }
    return params;
  }

  Block block(std::vector<uint64_t> *instructionOffsets) {
    Block block;
    uint64_t kindOffset = position_;
    uint8_t kindNumber = byte("block kind");
    std::optional<BlockKind> kind = blockKindFromNumber(kindNumber);
    if (!failed() && !kind) {
      fail(kindOffset, fmt::format("unknown block kind {}", kindNumber));
    }
    block.kind = kind.value_or(BlockKind::Body);
    // An instruction takes at least 1 byte of code and 3 of line table.
    uint32_t instructionCount = count("instruction count", 4);
    if (failed()) {
      return block;
    }
    block.code.reserve(instructionCount);
    block.locations.reserve(instructionCount);
    for (uint32_t index = 0; index < instructionCount && !failed(); ++index) {
      uint64_t start = position_;
      if (instructionOffsets != nullptr) {
        instructionOffsets->push_back(start);
      }
      uint8_t number = byte("opcode");
      std::optional<Opcode> opcode = opcodeFromNumber(number);
      if (failed()) {
        break;
      }
      if (!opcode) {
        fail(start, fmt::format("unknown opcode {}", number));
        break;
      }
      Instruction instruction{*opcode, {}};
      const OpcodeInfo &info = opcodeInfo(*opcode);
      for (size_t slot = 0; slot < kOperandsPerInstruction; ++slot) {
        if (info.operands[slot] != OperandKind::None) {
          instruction.operands[slot] = u32("operand");
        }
      }
      block.code.push_back(instruction);
    }
    for (uint32_t index = 0; index < instructionCount && !failed(); ++index) {
      SourceLocation location;
      location.file = FileIndex{u32("line table file")};
      location.line = u32("line table line");
      location.column = u32("line table column");
      block.locations.push_back(location);
    }
    return block;
  }

  Value value(uint32_t depth) {
    uint64_t start = position_;
    uint8_t tag = byte("value tag");
    if (failed()) {
      return Value();
    }
    switch (tag) {
    case static_cast<uint8_t>(ValueTag::Null):
      return Value();
    case static_cast<uint8_t>(ValueTag::False):
      return Value(false);
    case static_cast<uint8_t>(ValueTag::True):
      return Value(true);
    case static_cast<uint8_t>(ValueTag::Int): {
      uint64_t zigzag = varint("integer");
      auto magnitude = static_cast<int64_t>(zigzag >> 1);
      return Value((zigzag & 1) != 0 ? ~magnitude : magnitude);
    }
    case static_cast<uint8_t>(ValueTag::Double): {
      if (remaining() < 8) {
        truncated("double");
        return Value();
      }
      uint64_t bits = 0;
      for (int shift = 0; shift < 64; shift += 8) {
        bits |= uint64_t{bytes_[position_++]} << shift;
      }
      double number = std::bit_cast<double>(bits);
      if (!std::isfinite(number)) {
        fail(start, "double is not finite (NaN and infinities cannot occur in values)");
        return Value();
      }
      return Value(number);
    }
    case static_cast<uint8_t>(ValueTag::String):
      return stringValue();
    case static_cast<uint8_t>(ValueTag::Array):
      return array(start, depth);
    case static_cast<uint8_t>(ValueTag::Object):
      return object(start, depth);
    default:
      // A byte read from the file, not a switch over an enum: any value can appear.
      fail(start, fmt::format("unknown value tag {}", tag));
      return Value();
    }
  }

  Value array(uint64_t start, uint32_t depth) {
    if (depth >= kMaxConstantDepth) {
      fail(start, fmt::format("value nested deeper than {} levels", kMaxConstantDepth));
      return Value();
    }
    uint32_t elementCount = count("array length");
    Array elements;
    for (uint32_t index = 0; index < elementCount && !failed(); ++index) {
      elements.push_back(value(depth + 1));
    }
    return Value(std::move(elements));
  }

  Value object(uint64_t start, uint32_t depth) {
    if (depth >= kMaxConstantDepth) {
      fail(start, fmt::format("value nested deeper than {} levels", kMaxConstantDepth));
      return Value();
    }
    // A key takes at least 1 byte and its value 1 more.
    uint32_t entryCount = count("object size", 2);
    Object object;
    // Duplicates are found here, so entries can be appended without Object::set's scan.
    std::unordered_set<std::string_view> keys;
    for (uint32_t index = 0; index < entryCount && !failed(); ++index) {
      uint64_t keyOffset = position_;
      const std::string &key = poolString("object key");
      if (failed()) {
        break;
      }
      if (!keys.insert(key).second) {
        fail(keyOffset, fmt::format("duplicate object key \"{}\"", key));
        break;
      }
      charge(keyOffset, key.size());
      Value entry = value(depth + 1);
      object.appendNew(key, std::move(entry));
    }
    return Value(std::move(object));
  }

  // ---- Strings ---------------------------------------------------------------------------

  const std::string &poolString(std::string_view what) {
    static const std::string kEmpty;
    uint64_t start = position_;
    uint32_t index = u32(what);
    if (failed()) {
      return kEmpty;
    }
    if (index >= strings_.size()) {
      fail(start, fmt::format("{}: string index {} out of range (the pool has {} strings)", what,
                              index, strings_.size()));
      return kEmpty;
    }
    return strings_[index];
  }

  std::string copyString(std::string_view what) {
    uint64_t start = position_;
    const std::string &text = poolString(what);
    charge(start, text.size());
    return failed() ? std::string() : text;
  }

  // String values share one payload per pool entry, so repeating a long string costs a
  // reference, not a copy.
  Value stringValue() {
    uint64_t start = position_;
    uint32_t index = u32("string value");
    if (failed()) {
      return Value();
    }
    if (index >= strings_.size()) {
      fail(start, fmt::format("string value: string index {} out of range (the pool has {} "
                              "strings)",
                              index, strings_.size()));
      return Value();
    }
    std::optional<Value> &cached = stringValues_[index];
    if (!cached) {
      cached = Value(strings_[index]);
    }
    return *cached;
  }

  void charge(uint64_t offset, size_t size) {
    if (failed()) {
      return;
    }
    if (size > expansionBudget_) {
      fail(offset, fmt::format("the module expands to more than {} bytes of text ({} per byte "
                               "of file plus {}); the file is corrupt",
                               kKbcExpansionFactor * bytes_.size() + kKbcExpansionSlack,
                               kKbcExpansionFactor, kKbcExpansionSlack));
      return;
    }
    expansionBudget_ -= size;
  }

  // ---- Scalars ---------------------------------------------------------------------------

  std::optional<int64_t> optionalMilliseconds(std::string_view what) {
    uint64_t start = position_;
    uint8_t present = byte(what);
    if (failed() || present == 0) {
      return std::nullopt;
    }
    if (present != 1) {
      fail(start, fmt::format("{}: presence byte must be 0 or 1, found {}", what, present));
      return std::nullopt;
    }
    uint64_t valueOffset = position_;
    uint64_t milliseconds = varint(what);
    if (milliseconds > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail(valueOffset,
           fmt::format("{}: {} ms does not fit a signed 64-bit integer", what, milliseconds));
      return std::nullopt;
    }
    return static_cast<int64_t>(milliseconds);
  }

  // A u8 presence flag: 0 absent, 1 present, anything else an error (reported as absent).
  bool presence(std::string_view what) {
    uint64_t start = position_;
    uint8_t present = byte(what);
    if (!failed() && present > 1) {
      fail(start, fmt::format("{}: presence byte must be 0 or 1, found {}", what, present));
    }
    return !failed() && present == 1;
  }

  // A count of entries that each take at least `minimumBytes` bytes, checked against what
  // remains, so no count can make the reader allocate more than the file justifies.
  uint32_t count(std::string_view what, uint64_t minimumBytes = 1) {
    uint64_t start = position_;
    uint32_t value = u32(what);
    if (!failed() && value > remaining() / minimumBytes) {
      fail(start, fmt::format("{} {} is more than the {} bytes that remain can hold", what, value,
                              remaining()));
      return 0;
    }
    return failed() ? 0 : value;
  }

  uint32_t u32(std::string_view what) {
    uint64_t start = position_;
    uint64_t value = varint(what);
    if (value > std::numeric_limits<uint32_t>::max()) {
      fail(start, fmt::format("{}: {} does not fit 32 bits", what, value));
      return 0;
    }
    return static_cast<uint32_t>(value);
  }

  // Unsigned LEB128 in its shortest form (a longer spelling of the same number would make
  // two files decode to one module and break the bytes-identify-the-module rule).
  uint64_t varint(std::string_view what) {
    if (failed()) {
      return 0;
    }
    uint64_t start = position_;
    uint64_t value = 0;
    for (unsigned shift = 0;; shift += 7) {
      if (position_ >= bytes_.size()) {
        truncated(what);
        return 0;
      }
      uint8_t byte = bytes_[position_++];
      uint64_t payload = byte & 0x7F;
      if (shift == 63 && payload > 1) {
        fail(start, fmt::format("{}: varint overflows 64 bits", what));
        return 0;
      }
      value |= payload << shift;
      if ((byte & 0x80) == 0) {
        if (byte == 0 && shift > 0) {
          fail(start, fmt::format("{}: varint is not in its shortest form", what));
          return 0;
        }
        return value;
      }
      if (shift == 63) {
        fail(start, fmt::format("{}: varint longer than 10 bytes", what));
        return 0;
      }
    }
  }

  uint8_t byte(std::string_view what) {
    if (failed()) {
      return 0;
    }
    if (position_ >= bytes_.size()) {
      truncated(what);
      return 0;
    }
    return bytes_[position_++];
  }

  [[nodiscard]] uint64_t remaining() const { return bytes_.size() - position_; }

  void record(std::vector<uint64_t> *offsets) {
    if (offsets != nullptr) {
      offsets->push_back(position_);
    }
  }

  void truncated(std::string_view what) {
    fail(position_, fmt::format("the file ends in the middle of {}", what));
  }

  void fail(uint64_t offset, std::string message) {
    if (!error_) {
      error_ = ModuleError{offset, {}, std::move(message)};
    }
  }

  std::span<const uint8_t> bytes_;
  uint32_t version_;
  uint64_t position_;
  ModuleByteOffsets *offsets_;
  uint64_t expansionBudget_;
  std::vector<std::string> strings_;
  std::vector<std::optional<Value>> stringValues_;
  std::optional<ModuleError> error_;
};

ModuleError fileError(uint64_t offset, std::string message) {
  return ModuleError{offset, {}, std::move(message)};
}

} // namespace

ModuleResult<LoadedModule> readModule(std::span<const uint8_t> bytes, const ReadOptions &options,
                                      ModuleByteOffsets *offsets) {
  if (bytes.size() < kKbcHeaderSize) {
    return fileError(0, fmt::format("the file is {} bytes, shorter than the {}-byte .kbc header",
                                    bytes.size(), kKbcHeaderSize));
  }
  if (!std::equal(kKbcMagic.begin(), kKbcMagic.end(), bytes.begin())) {
    return fileError(0, "not a .kbc file (the magic number is wrong); compile the .kotoba "
                        "source with kotobac build");
  }
  uint32_t version = 0;
  for (int shift = 0; shift < 32; shift += 8) {
    version |= uint32_t{bytes[kKbcVersionOffset + shift / 8]} << shift;
  }
  if (version < kKbcOldestFormatVersion || version > kKbcFormatVersion) {
    return fileError(kKbcVersionOffset,
                     fmt::format("format version {} is not supported (this build reads versions "
                                 "{} to {}); rebuild the module with this kotobac",
                                 version, kKbcOldestFormatVersion, kKbcFormatVersion));
  }
  ModuleHash stored;
  std::memcpy(stored.data(), bytes.data() + kKbcHashOffset, stored.size());
  ModuleHash computed = computeContentHash(bytes);
  if (options.checkHash && stored != computed) {
    return fileError(kKbcHashOffset, fmt::format("content hash mismatch (stored {}, computed "
                                                 "{}): the file is corrupt",
                                                 hashToHex(stored), hashToHex(computed)));
  }

  BodyReader reader(bytes, version, offsets);
  Module module = reader.module();
  if (reader.failed()) {
    return reader.takeError();
  }
  return LoadedModule{std::move(module), computed};
}

ModuleResult<LoadedModule> loadModule(std::span<const uint8_t> bytes, const ReadOptions &options) {
  ModuleByteOffsets offsets;
  ModuleResult<LoadedModule> read = readModule(bytes, options, &offsets);
  if (!read) {
    return read;
  }
  std::vector<ModuleError> problems = verifyModule(read->module, &offsets);
  if (!problems.empty()) {
    return problems;
  }
  return read;
}

} // namespace kotoba::vm
