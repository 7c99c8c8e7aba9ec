// The source manager: owns the text of every file in a compilation and turns byte offsets
// into the line and column a person reads. Line starts are found once, when a file is
// added, so each lookup is a binary search plus a walk over one line.
#include "kotoba/compiler/source.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace kotoba::compiler {
namespace {

// The key under which a path is remembered: absolute and without `.` or `..`, so that two
// spellings of one import load it once. Symlinks are not resolved, which keeps paths that
// do not exist yet (buffers named by a test) comparable too.
std::string normalizePath(const std::string &path) {
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(path, error);
  if (error) {
    return std::filesystem::path(path).lexically_normal().string();
  }
  return absolute.lexically_normal().string();
}

// A continuation byte (10xxxxxx) never starts a code point; counting the other bytes counts
// code points in valid UTF-8 and gives a stable, reasonable answer in invalid UTF-8.
bool isContinuationByte(char byte) {
  return (static_cast<unsigned char>(byte) & 0xC0) == 0x80;
}

} // namespace

std::optional<FileId> SourceManager::loadFile(const std::string &path,
                                              std::string &errorMessage) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    errorMessage = "cannot read '" + path + "': it is a directory";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errorMessage = "cannot read '" + path + "': " + std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    errorMessage = "cannot read '" + path + "': read error";
    return std::nullopt;
  }
  std::string text = std::move(contents).str();
  if (text.size() >= UINT32_MAX) {
    errorMessage = "cannot read '" + path + "': files of 4 GiB or more are not supported";
    return std::nullopt;
  }
  return add(path, normalizePath(path), std::move(text));
}

FileId SourceManager::addBuffer(std::string path, std::string text) {
  std::string absolutePath = normalizePath(path);
  return add(std::move(path), std::move(absolutePath), std::move(text));
}

FileId SourceManager::add(std::string path, std::string absolutePath, std::string text) {
  // Offsets are 32-bit; loadFile refuses larger files, so only a test could pass one.
  assert(text.size() < UINT32_MAX && "source files are limited to 4 GiB by 32-bit offsets");
  auto file = std::make_unique<File>();
  file->path = std::move(path);
  file->absolutePath = std::move(absolutePath);
  file->text = std::move(text);
  file->lineStarts.push_back(0);
  const std::string &body = file->text;
  for (size_t at = body.find('\n'); at != std::string::npos; at = body.find('\n', at + 1)) {
    file->lineStarts.push_back(static_cast<uint32_t>(at + 1));
  }
  FileId id{static_cast<uint32_t>(files_.size())};
  files_.push_back(std::move(file));
  return id;
}

std::string_view SourceManager::text(FileId file) const {
  assert(file.index < files_.size() && "FileId from another SourceManager");
  return files_[file.index]->text;
}

const std::string &SourceManager::path(FileId file) const {
  assert(file.index < files_.size() && "FileId from another SourceManager");
  return files_[file.index]->path;
}

LineColumn SourceManager::lineColumn(SourceLoc loc) const {
  assert(loc.file.index < files_.size() && "SourceLoc from another SourceManager");
  const File &file = *files_[loc.file.index];
  uint32_t offset = std::min<uint32_t>(loc.offset, static_cast<uint32_t>(file.text.size()));
  auto next = std::upper_bound(file.lineStarts.begin(), file.lineStarts.end(), offset);
  uint32_t lineIndex = static_cast<uint32_t>(next - file.lineStarts.begin()) - 1;
  uint32_t column = 1;
  for (uint32_t at = file.lineStarts[lineIndex]; at < offset; ++at) {
    if (!isContinuationByte(file.text[at])) {
      ++column;
    }
  }
  return {lineIndex + 1, column};
}

std::string_view SourceManager::lineText(SourceLoc loc) const {
  assert(loc.file.index < files_.size() && "SourceLoc from another SourceManager");
  const File &file = *files_[loc.file.index];
  uint32_t offset = std::min<uint32_t>(loc.offset, static_cast<uint32_t>(file.text.size()));
  auto next = std::upper_bound(file.lineStarts.begin(), file.lineStarts.end(), offset);
  uint32_t begin = *(next - 1);
  uint32_t end = next == file.lineStarts.end() ? static_cast<uint32_t>(file.text.size())
                                               : *next - 1; // drop the '\n'
  std::string_view line(file.text.data() + begin, end - begin);
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  return line;
}

std::optional<FileId> SourceManager::findByPath(const std::string &path) const {
  std::string key = normalizePath(path);
  for (size_t index = 0; index < files_.size(); ++index) {
    if (files_[index]->absolutePath == key) {
      return FileId{static_cast<uint32_t>(index)};
    }
  }
  return std::nullopt;
}

} // namespace kotoba::compiler
