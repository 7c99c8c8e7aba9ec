// Serializes a module to .kbc bytes (layout in module_format.h and docs/kbc-format.md).
//
// The body is written first into its own buffer while strings are interned in order of
// first use; the string pool, which precedes the body in the file, is then emitted from
// that table. Every traversal is in module order, so the output depends on nothing but the
// module.
#include "kotoba/vm/module_format.h"

#include <llvm/ADT/ArrayRef.h>
#include <llvm/ADT/StringMap.h>
#include <llvm/Support/SHA256.h>

#include <bit>
#include <cmath>
#include <cstring>

namespace kotoba::vm {
namespace {

class BodyWriter {
public:
  explicit BodyWriter(uint32_t version) : version_(version) {}

  void module(const Module &module) {
    count(module.sourceFiles.size());
    for (const std::string &file : module.sourceFiles) {
      string(file);
    }
    count(module.constants.size());
    for (const Value &constant : module.constants) {
      value(constant);
    }
    count(module.activities.size());
    for (const ActivityDecl &activity : module.activities) {
      string(activity.name);
      string(activity.description);
      optionalMilliseconds(activity.timeoutMs);
      value(activity.retryPolicy);
      value(activity.implementation);
      if (version_ >= 2) {
        byte(activity.declaredIn ? 1 : 0);
        if (activity.declaredIn) {
          varint(activity.declaredIn->index);
        }
      }
    }
    count(module.hostActivities.size());
    for (const std::string &name : module.hostActivities) {
      string(name);
    }
    count(module.workflows.size());
    for (const Workflow &workflow : module.workflows) {
      this->workflow(workflow);
    }
  }

  // The string pool section: count, then each string's length and bytes.
  [[nodiscard]] std::vector<uint8_t> stringPool() const {
    BodyWriter pool(version_);
    pool.count(strings_.size());
    for (llvm::StringRef text : strings_) {
      pool.count(text.size());
      pool.bytes_.insert(pool.bytes_.end(), text.bytes_begin(), text.bytes_end());
    }
    return std::move(pool.bytes_);
  }

  [[nodiscard]] const std::vector<uint8_t> &bytes() const { return bytes_; }

private:
  void workflow(const Workflow &workflow) {
    string(workflow.id);
    string(workflow.name);
    string(workflow.version);
    string(workflow.description);
    value(workflow.metadata);
    params(workflow.inputs);
    params(workflow.outputs);
    optionalMilliseconds(workflow.timeoutMs);
    value(workflow.retryPolicy);
    count(workflow.hostPredicates.size());
    for (const std::string &name : workflow.hostPredicates) {
      string(name);
    }
    varint(workflow.registerCount);
    count(workflow.blocks.size());
    for (const Block &block : workflow.blocks) {
      this->block(block);
    }
  }

  void params(const std::vector<Param> &params) {
    count(params.size());
    for (const Param &param : params) {
      string(param.name);
      string(param.type);
      uint8_t flags = (param.required ? 1 : 0) | (param.defaultValue ? 2 : 0);
      byte(flags);
      if (param.defaultValue) {
        value(*param.defaultValue);
      }
    }
  }

  void block(const Block &block) {
    assert(block.code.size() == block.locations.size() && "line table out of step with code");
    byte(static_cast<uint8_t>(block.kind));
    count(block.code.size());
    for (const Instruction &instruction : block.code) {
      byte(static_cast<uint8_t>(instruction.opcode));
      const OpcodeInfo &info = opcodeInfo(instruction.opcode);
      for (size_t slot = 0; slot < kOperandsPerInstruction; ++slot) {
        if (info.operands[slot] != OperandKind::None) {
          varint(instruction.operands[slot]);
        } else {
          assert(instruction.operands[slot] == 0 && "unused operand not 0; verify first");
        }
      }
    }
    for (const SourceLocation &location : block.locations) {
      varint(location.file.index);
      varint(location.line);
      varint(location.column);
    }
  }

  void value(const Value &value) {
    switch (value.kind()) {
    case ValueKind::Null:
      tag(ValueTag::Null);
      return;
    case ValueKind::Bool:
      tag(value.asBool() ? ValueTag::True : ValueTag::False);
      return;
    case ValueKind::Int: {
      // Zigzag: small magnitudes of either sign get short varints.
      auto bits = static_cast<uint64_t>(value.asInt());
      tag(ValueTag::Int);
      varint((bits << 1) ^ (value.asInt() < 0 ? ~uint64_t{0} : 0));
      return;
    }
    case ValueKind::Double: {
      assert(std::isfinite(value.asDouble()) && "no operation produces NaN or infinity");
      tag(ValueTag::Double);
      auto bits = std::bit_cast<uint64_t>(value.asDouble());
      for (int shift = 0; shift < 64; shift += 8) {
        byte(static_cast<uint8_t>(bits >> shift));
      }
      return;
    }
    case ValueKind::String:
      tag(ValueTag::String);
      string(value.asString());
      return;
    case ValueKind::Array:
      tag(ValueTag::Array);
      count(value.asArray().size());
      for (const Value &element : value.asArray()) {
        this->value(element);
      }
      return;
    case ValueKind::Object:
      tag(ValueTag::Object);
      count(value.asObject().size());
      for (const ObjectEntry &entry : value.asObject()) {
        string(entry.key);
        this->value(entry.value);
      }
      return;
    }
  }

  void optionalMilliseconds(const std::optional<int64_t> &milliseconds) {
    byte(milliseconds ? 1 : 0);
    if (milliseconds) {
      assert(*milliseconds >= 0 && "negative duration; the checker rejects them");
      varint(static_cast<uint64_t>(*milliseconds));
    }
  }

  void string(llvm::StringRef text) {
    auto [entry, inserted] = poolIndex_.try_emplace(text, static_cast<uint32_t>(strings_.size()));
    if (inserted) {
      // StringMap entries never move, so the key can be referenced for the writer's life.
      strings_.push_back(entry->first());
    }
    varint(entry->second);
  }

  void count(size_t count) {
    assert(count <= UINT32_MAX && "more than 2^32 entries in one table");
    varint(count);
  }
  void tag(ValueTag tag) { byte(static_cast<uint8_t>(tag)); }
  void byte(uint8_t value) { bytes_.push_back(value); }
  void varint(uint64_t value) {
    while (value >= 0x80) {
      bytes_.push_back(static_cast<uint8_t>(value | 0x80));
      value >>= 7;
    }
    bytes_.push_back(static_cast<uint8_t>(value));
  }

  uint32_t version_;
  std::vector<uint8_t> bytes_;
  llvm::StringMap<uint32_t> poolIndex_;
  std::vector<llvm::StringRef> strings_;
};

// The lowest version that holds everything in the module: one whose declarations name no
// source file keeps the version 1 bytes, and so the hash, it always had.
uint32_t formatVersionFor(const Module &module) {
  for (const ActivityDecl &activity : module.activities) {
    if (activity.declaredIn) {
      return kKbcFormatVersion;
    }
  }
  return kKbcOldestFormatVersion;
}

} // namespace

std::string hashToHex(const ModuleHash &hash) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(hash.size() * 2);
  for (uint8_t byte : hash) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 0xF]);
  }
  return hex;
}

ModuleHash computeContentHash(std::span<const uint8_t> bytes) {
  assert(bytes.size() >= kKbcHeaderSize && "computeContentHash needs at least a header");
  auto content = bytes.subspan(kKbcHeaderSize);
  return llvm::SHA256::hash(llvm::ArrayRef<uint8_t>(content.data(), content.size()));
}

std::vector<uint8_t> writeModule(const Module &module) {
  uint32_t version = formatVersionFor(module);
  BodyWriter writer(version);
  writer.module(module);
  std::vector<uint8_t> pool = writer.stringPool();

  std::vector<uint8_t> file;
  file.reserve(kKbcHeaderSize + pool.size() + writer.bytes().size());
  file.insert(file.end(), kKbcMagic.begin(), kKbcMagic.end());
  for (int shift = 0; shift < 32; shift += 8) {
    file.push_back(static_cast<uint8_t>(version >> shift));
  }
  file.resize(kKbcHeaderSize); // the hash, filled in below
  file.insert(file.end(), pool.begin(), pool.end());
  file.insert(file.end(), writer.bytes().begin(), writer.bytes().end());

  ModuleHash hash = computeContentHash(file);
  std::memcpy(file.data() + kKbcHashOffset, hash.data(), hash.size());
  return file;
}

} // namespace kotoba::vm
