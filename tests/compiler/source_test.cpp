// Tests of the source manager: lines and columns as people count them (code points, tabs as
// one column), line text without terminators, and finding a loaded file by its path.
#include "kotoba/compiler/source.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

using namespace kotoba::compiler;

namespace {

SourceLoc at(FileId file, uint32_t offset) { return SourceLoc{file, offset}; }

} // namespace

TEST_CASE("line and column are 1-based and count lines by newline") {
  SourceManager sources;
  FileId file = sources.addBuffer("a.kotoba", "ab\ncd\n\nef");
  CHECK(sources.lineColumn(at(file, 0)).line == 1);
  CHECK(sources.lineColumn(at(file, 0)).column == 1);
  CHECK(sources.lineColumn(at(file, 1)).column == 2);
  CHECK(sources.lineColumn(at(file, 3)).line == 2);
  CHECK(sources.lineColumn(at(file, 4)).column == 2);
  CHECK(sources.lineColumn(at(file, 6)).line == 3);
  CHECK(sources.lineColumn(at(file, 7)).line == 4);
  CHECK(sources.lineColumn(at(file, 8)).column == 2);
}

TEST_CASE("a newline belongs to the line it ends") {
  SourceManager sources;
  FileId file = sources.addBuffer("a.kotoba", "ab\ncd");
  LineColumn newline = sources.lineColumn(at(file, 2));
  CHECK(newline.line == 1);
  CHECK(newline.column == 3);
}

TEST_CASE("columns count code points, not bytes, and a tab is one column") {
  SourceManager sources;
  // "é" is two bytes, "言" three, "😀" four.
  FileId file = sources.addBuffer("a.kotoba", "\té言😀x");
  CHECK(sources.lineColumn(at(file, 1)).column == 2); // é
  CHECK(sources.lineColumn(at(file, 3)).column == 3); // 言
  CHECK(sources.lineColumn(at(file, 6)).column == 4); // 😀
  CHECK(sources.lineColumn(at(file, 10)).column == 5); // x
}

TEST_CASE("an offset past the end is clamped to the end of the text") {
  SourceManager sources;
  FileId file = sources.addBuffer("a.kotoba", "ab\ncd");
  LineColumn end = sources.lineColumn(at(file, 100));
  CHECK(end.line == 2);
  CHECK(end.column == 3);
}

TEST_CASE("line text has no line terminator, for \\n and \\r\\n alike") {
  SourceManager sources;
  FileId file = sources.addBuffer("a.kotoba", "first\r\nsecond\nthird");
  CHECK(sources.lineText(at(file, 2)) == "first");
  CHECK(sources.lineText(at(file, 7)) == "second");
  CHECK(sources.lineText(at(file, 14)) == "third");
  CHECK(sources.lineText(at(file, 19)) == "third");
}

TEST_CASE("an empty file has one empty line") {
  SourceManager sources;
  FileId file = sources.addBuffer("empty.kotoba", "");
  CHECK(sources.lineText(at(file, 0)).empty());
  CHECK(sources.lineColumn(at(file, 0)).line == 1);
  CHECK(sources.lineColumn(at(file, 0)).column == 1);
}

TEST_CASE("buffers keep their path and text, and get distinct ids") {
  SourceManager sources;
  FileId first = sources.addBuffer("one.kotoba", "1");
  FileId second = sources.addBuffer("two.kotoba", "2");
  CHECK_FALSE(first == second);
  CHECK(sources.path(first) == "one.kotoba");
  CHECK(sources.text(second) == "2");
  CHECK(sources.fileCount() == 2);
}

TEST_CASE("a loaded file is found again by another spelling of its path") {
  auto directory = std::filesystem::temp_directory_path() / "kotoba_source_test";
  std::filesystem::create_directories(directory / "sub");
  auto path = directory / "main.kotoba";
  std::ofstream(path) << "{}";

  SourceManager sources;
  std::string error;
  std::optional<FileId> file = sources.loadFile(path.string(), error);
  REQUIRE(file.has_value());
  CHECK(sources.text(*file) == "{}");
  std::string detour = (directory / "sub" / ".." / "." / "main.kotoba").string();
  std::optional<FileId> again = sources.findByPath(detour);
  REQUIRE(again.has_value());
  CHECK(*again == *file);
  CHECK_FALSE(sources.findByPath((directory / "other.kotoba").string()).has_value());
  std::filesystem::remove_all(directory);
}

TEST_CASE("a missing file or a directory cannot be loaded, and the error says why") {
  SourceManager sources;
  std::string error;
  CHECK_FALSE(sources.loadFile("/nonexistent/kotoba/missing.kotoba", error).has_value());
  CHECK(error == "cannot read '/nonexistent/kotoba/missing.kotoba': No such file or directory");
  CHECK_FALSE(sources.loadFile(std::filesystem::temp_directory_path().string(), error));
  CHECK(error.find("it is a directory") != std::string::npos);
  CHECK(sources.fileCount() == 0);
}
