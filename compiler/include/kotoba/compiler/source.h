// Source files and locations: every file the compiler reads is owned here, and a location is
// a (file, byte offset) pair that turns into line and column only when a person must see it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kotoba::compiler {

struct FileId {
  uint32_t index = UINT32_MAX;
  [[nodiscard]] bool valid() const { return index != UINT32_MAX; }
  friend bool operator==(FileId, FileId) = default;
};

struct SourceLoc {
  FileId file;
  uint32_t offset = 0;
  [[nodiscard]] bool valid() const { return file.valid(); }
};

// A half-open byte range [begin, end) in one file.
struct SourceRange {
  SourceLoc begin;
  uint32_t end = 0;
  [[nodiscard]] bool valid() const { return begin.valid(); }
  [[nodiscard]] uint32_t length() const { return end > begin.offset ? end - begin.offset : 0; }
};

struct LineColumn {
  uint32_t line = 0;   // 1-based
  uint32_t column = 0; // 1-based, counted in code points; a tab counts as one column
};

class SourceManager {
public:
  // Reads a file from disk; nullopt (with errorMessage set) when it cannot be read.
  std::optional<FileId> loadFile(const std::string &path, std::string &errorMessage);
  // Registers text that did not come from disk (tests, fuzzing, stdin).
  FileId addBuffer(std::string path, std::string text);

  [[nodiscard]] std::string_view text(FileId file) const;
  [[nodiscard]] const std::string &path(FileId file) const;
  [[nodiscard]] LineColumn lineColumn(SourceLoc loc) const;
  // The text of the line holding loc, without its line terminator.
  [[nodiscard]] std::string_view lineText(SourceLoc loc) const;
  // Files already loaded are found by their normalized absolute path (imports load once).
  [[nodiscard]] std::optional<FileId> findByPath(const std::string &path) const;
  [[nodiscard]] size_t fileCount() const { return files_.size(); }

private:
  struct File {
    std::string path;
    std::string absolutePath;
    std::string text;
    std::vector<uint32_t> lineStarts;
  };
  FileId add(std::string path, std::string absolutePath, std::string text);

  std::vector<std::unique_ptr<File>> files_;
};

} // namespace kotoba::compiler
