// The .kbc file: a module as bytes, byte for byte described in docs/kbc-format.md.
//
//   header  magic (8) | format version (u32 LE) | SHA-256 of everything after it (32)
//   body    string pool | source files | constants | activities | host activities |
//           workflows (params, policies, blocks with code and line table)
//
// Integers in the body are unsigned LEB128 varints in their shortest form (signed constants
// zigzag-encoded first), doubles are 8 bytes of IEEE 754 little-endian, and every string is
// an index into the string pool, so each distinct string is stored once.
//
// Writing is deterministic: the same module always gives the same bytes, hence the same
// hash, which is the module's identity in the store (runtime.md section 4). Reading never
// trusts a length: every count is checked against the bytes that remain before anything is
// allocated for it, nesting is bounded, and the total text the module expands to is bounded
// by a multiple of the file size. A problem is a ModuleError naming its byte offset.
//
// Version history:
//   1  the first format.
//   2  each activity declaration ends with the source file it was declared in. The writer
//      uses version 1 for a module none of whose declarations names a file, so such a
//      module keeps its bytes and hash; the reader accepts both.
#pragma once

#include "kotoba/vm/module.h"
#include "kotoba/vm/verifier.h"

#include <array>
#include <cassert>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace kotoba::vm {

inline constexpr std::array<uint8_t, 8> kKbcMagic = {0x7F, 'K', 'B', 'C', '\r', '\n', 0x1A, '\n'};
inline constexpr uint32_t kKbcFormatVersion = 2;
// The oldest version the reader still accepts.
inline constexpr uint32_t kKbcOldestFormatVersion = 1;
inline constexpr size_t kKbcVersionOffset = 8;
inline constexpr size_t kKbcHashOffset = 12;
inline constexpr size_t kKbcHeaderSize = 44;
// A module may expand to at most this many bytes of copied text (names and object keys) per
// byte of file, plus kKbcExpansionSlack: a few bytes of references to one long string must
// not turn into gigabytes of copies.
inline constexpr uint64_t kKbcExpansionFactor = 64;
inline constexpr uint64_t kKbcExpansionSlack = 16 * 1024 * 1024;

// The first byte of each encoded value (constants, defaults, policies, metadata); persisted.
enum class ValueTag : uint8_t {
  Null = 0,
  False = 1,
  True = 2,
  Int = 3,    // zigzag varint
  Double = 4, // 8 bytes, IEEE 754 little-endian; finite
  String = 5, // string pool index
  Array = 6,  // count, then the elements
  Object = 7, // count, then (key string pool index, value) pairs; keys distinct
};

using ModuleHash = std::array<uint8_t, 32>;
// Lowercase hex, 64 characters.
[[nodiscard]] std::string hashToHex(const ModuleHash &hash);

// A value, or the problems that prevented it.
template <typename T> class [[nodiscard]] ModuleResult {
public:
  ModuleResult(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  ModuleResult(std::vector<ModuleError> errors)
      : state_(std::in_place_index<1>, std::move(errors)) {
    assert(!std::get<1>(state_).empty() && "a failed ModuleResult needs at least one error");
  }
  ModuleResult(ModuleError error) : ModuleResult(std::vector<ModuleError>{std::move(error)}) {}

  [[nodiscard]] bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  [[nodiscard]] const T &value() const & {
    assert(ok() && "value() of a failed ModuleResult; check ok() first");
    return std::get<0>(state_);
  }
  [[nodiscard]] T &&value() && {
    assert(ok() && "value() of a failed ModuleResult; check ok() first");
    return std::get<0>(std::move(state_));
  }
  [[nodiscard]] const T *operator->() const { return &value(); }
  [[nodiscard]] const std::vector<ModuleError> &errors() const {
    assert(!ok() && "errors() of a successful ModuleResult");
    return std::get<1>(state_);
  }

private:
  std::variant<T, std::vector<ModuleError>> state_;
};

struct LoadedModule {
  Module module;
  ModuleHash hash;
};

// The .kbc bytes of a module that passes verifyModule (the writer asserts what it relies on;
// it does not re-verify).
[[nodiscard]] std::vector<uint8_t> writeModule(const Module &module);

// SHA-256 of bytes[kKbcHeaderSize..]: what the header's hash field must hold. `bytes` must be
// at least a header long.
[[nodiscard]] ModuleHash computeContentHash(std::span<const uint8_t> bytes);

struct ReadOptions {
  // Compare the stored hash with the content. Only tools that must look past corruption
  // (fuzzing, a repair tool) turn this off.
  bool checkHash = true;
};

// Decodes a .kbc file without verifying the module. With `offsets`, records where each
// constant, activity, workflow and instruction starts. Most callers want loadModule.
[[nodiscard]] ModuleResult<LoadedModule> readModule(std::span<const uint8_t> bytes,
                                                    const ReadOptions &options = {},
                                                    ModuleByteOffsets *offsets = nullptr);

// readModule and then verifyModule: the one way to turn untrusted bytes into a module the VM
// may run. Verifier errors carry byte offsets.
[[nodiscard]] ModuleResult<LoadedModule> loadModule(std::span<const uint8_t> bytes,
                                                    const ReadOptions &options = {});

} // namespace kotoba::vm
