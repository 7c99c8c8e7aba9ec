// Path evaluation and the wording of PathErrors. Messages quote the path as the user wrote
// it: the descriptor's text is split into the base (`$.inputs`) and one piece of text per
// segment, so the place where a path broke can be named with the user's own spelling.
#include "kotoba/vm/path.h"

#include <llvm/ADT/StringRef.h>

#include <fmt/format.h>

#include <cassert>
#include <optional>
#include <string>
#include <vector>

namespace kotoba {

namespace {

using vm::PathDescriptor;
using vm::PathSegment;

// Objects with at most this many keys are listed in a "has no member" message.
constexpr size_t kMaxListedKeys = 8;

// Where each segment starts in the text: the '.' or '[' of each accessor at the top level
// of the text (outside brackets, parentheses and quotes). The last `count` of them are the
// segments; everything before is the base. nullopt if the text has fewer accessors, which
// only a hand-made descriptor can cause.
std::optional<std::vector<size_t>> segmentStarts(std::string_view text, size_t count) {
  std::vector<size_t> starts;
  int brackets = 0;
  int parentheses = 0;
  char quote = 0;
  for (size_t pos = 0; pos < text.size(); ++pos) {
    char c = text[pos];
    if (quote != 0) {
      if (c == '\\') {
        ++pos;
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    bool topLevel = brackets == 0 && parentheses == 0;
    switch (c) {
    case '"':
    case '\'':
      quote = c;
      break;
    case '(':
      ++parentheses;
      break;
    case ')':
      --parentheses;
      break;
    case '[':
      if (topLevel) {
        starts.push_back(pos);
      }
      ++brackets;
      break;
    case ']':
      --brackets;
      break;
    case '.':
      if (topLevel) {
        starts.push_back(pos);
      }
      break;
    default:
      break;
    }
  }
  if (starts.size() < count) {
    return std::nullopt;
  }
  starts.erase(starts.begin(), starts.end() - static_cast<std::ptrdiff_t>(count));
  return starts;
}

bool isIdentifier(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) {
    return false;
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

// The canonical spelling of a segment, for descriptors whose text cannot be split.
std::string canonicalSegmentText(const PathSegment &segment) {
  switch (segment.kind) {
  case PathSegment::Kind::Member:
    if (isIdentifier(segment.member)) {
      return "." + segment.member;
    }
    return fmt::format("['{}']", segment.member);
  case PathSegment::Kind::Index:
    return fmt::format("[{}]", segment.index);
  case PathSegment::Kind::Project:
    return "[*]";
  case PathSegment::Kind::Dynamic:
    return "[...]";
  }
  return "";
}

std::string joinKeys(const Object &object) {
  std::string listed;
  size_t index = 0;
  for (const ObjectEntry &entry : object) {
    if (index > 0) {
      listed += index + 1 == object.size() ? " and " : ", ";
    }
    listed += fmt::format("'{}'", entry.key);
    ++index;
  }
  return listed;
}

// "; did you mean 'ids'?", "; its members are 'a' and 'b'", "; the object is empty" or "".
std::string missingMemberHint(std::string_view name, const Object &object) {
  if (object.empty()) {
    return "; the object is empty";
  }
  const ObjectEntry *closest = nullptr;
  unsigned closestDistance = 0;
  for (const ObjectEntry &entry : object) {
    unsigned distance = llvm::StringRef(entry.key).edit_distance(
        llvm::StringRef(name.data(), name.size()), /*AllowReplacements=*/true);
    if (closest == nullptr || distance < closestDistance) {
      closest = &entry;
      closestDistance = distance;
    }
  }
  unsigned allowed = std::min<unsigned>(2, std::max<unsigned>(1, name.size() / 3));
  if (closestDistance <= allowed) {
    return fmt::format("; did you mean '{}'?", closest->key);
  }
  if (object.size() <= kMaxListedKeys) {
    return fmt::format("; its members are {}", joinKeys(object));
  }
  return "";
}

const char *kNullHint = "; use ?? to supply a default for absent data";

class PathWalker {
public:
  PathWalker(const PathDescriptor &path, llvm::ArrayRef<Value> dynamicValues, PathMode mode)
      : path_(path), dynamicValues_(dynamicValues), mode_(mode) {
    assert(dynamicValues.size() == path.dynamicCount() &&
           "one dynamic value per dynamic segment; the verifier checks the register range");
    std::optional<std::vector<size_t>> starts =
        segmentStarts(path.text, path.segments.size());
    fullText_ = path.text;
    if (!starts) {
      base_ = path.text.empty() ? "$" : path.text;
      fullText_ = base_;
      for (const PathSegment &segment : path.segments) {
        segmentTexts_.push_back(canonicalSegmentText(segment));
        fullText_ += segmentTexts_.back();
      }
      return;
    }
    std::string_view text = path.text;
    size_t baseEnd = starts->empty() ? text.size() : starts->front();
    base_ = std::string(text.substr(0, baseEnd));
    for (size_t index = 0; index < starts->size(); ++index) {
      size_t end = index + 1 < starts->size() ? (*starts)[index + 1] : text.size();
      segmentTexts_.emplace_back(text.substr((*starts)[index], end - (*starts)[index]));
    }
  }

  Result<Value> walk(const Value &base) { return walkFrom(base, 0, base_); }

private:
  const PathDescriptor &path_;
  llvm::ArrayRef<Value> dynamicValues_;
  PathMode mode_;
  // The path as written, or as rebuilt from the segments when the text does not match them.
  std::string fullText_;
  std::string base_;
  std::vector<std::string> segmentTexts_;

  bool optional() const { return mode_ == PathMode::Optional; }

  WorkflowError fail(std::string problem) const {
    return pathError(fmt::format("{}: {}", fullText_, problem));
  }

  // Follows segments [index, end) from `current`, whose spelling so far is `place`.
  Result<Value> walkFrom(Value current, size_t index, std::string place) {
    size_t dynamicIndex = 0;
    for (size_t before = 0; before < index; ++before) {
      if (path_.segments[before].kind == PathSegment::Kind::Dynamic) {
        ++dynamicIndex;
      }
    }
    for (; index < path_.segments.size(); ++index) {
      const PathSegment &segment = path_.segments[index];
      Result<Value> next = Value(nullptr);
      switch (segment.kind) {
      case PathSegment::Kind::Member:
        next = member(current, segment.member, place);
        break;
      case PathSegment::Kind::Index:
        next = element(current, segment.index, place);
        break;
      case PathSegment::Kind::Dynamic: {
        const Value &key = dynamicValues_[dynamicIndex++];
        if (key.isInt()) {
          next = element(current, key.asInt(), place);
        } else if (key.isString()) {
          next = member(current, key.asString(), place);
        } else {
          return fail(fmt::format("the index {} is {}; an index must be an integer (for an "
                                  "array) or a string key (for an object)",
                                  segmentTexts_[index], describeValue(key)));
        }
        break;
      }
      case PathSegment::Kind::Project:
        return project(current, index, place);
      }
      if (!next.ok() || next->isMissing()) {
        return next;
      }
      current = std::move(next).value();
      place += segmentTexts_[index];
    }
    return current;
  }

  Result<Value> member(const Value &container, const std::string &name,
                       const std::string &place) {
    if (container.isObject()) {
      if (const Value *found = container.asObject().find(name)) {
        return *found;
      }
      if (optional()) {
        return Value::missing();
      }
      return fail(fmt::format("{} has no member '{}'{}", place, name,
                              missingMemberHint(name, container.asObject())));
    }
    if (container.isNull()) {
      if (optional()) {
        return Value::missing();
      }
      return fail(fmt::format("{} is null, so it has no member '{}'{}", place, name, kNullHint));
    }
    return fail(fmt::format("{} is {}, not an object, so it has no member '{}'", place,
                            describeValue(container), name));
  }

  Result<Value> element(const Value &container, int64_t index, const std::string &place) {
    if (container.isArray()) {
      const Array &array = container.asArray();
      auto size = static_cast<int64_t>(array.size());
      int64_t position = index < 0 ? index + size : index;
      if (position >= 0 && position < size) {
        return array[static_cast<size_t>(position)];
      }
      if (optional()) {
        return Value::missing();
      }
      if (size == 0) {
        return fail(fmt::format("index {} is out of range for {}, which is empty", index, place));
      }
      return fail(fmt::format("index {} is out of range for {}, which has {} element{} (valid: "
                              "0 to {}, or -{} to -1)",
                              index, place, size, size == 1 ? "" : "s", size - 1, size));
    }
    if (container.isNull()) {
      if (optional()) {
        return Value::missing();
      }
      return fail(fmt::format("{} is null, so it has no element [{}]{}", place, index,
                              kNullHint));
    }
    return fail(fmt::format("{} is {}, not an array, so it cannot be indexed with [{}]", place,
                            describeValue(container), index));
  }

  Result<Value> project(const Value &container, size_t index, const std::string &place) {
    if (container.isNull()) {
      if (optional()) {
        return Value::missing();
      }
      return fail(fmt::format("{} is null, so [*] has nothing to project over{}", place,
                              kNullHint));
    }
    if (!container.isArray()) {
      return fail(fmt::format("{} is {}, not an array, so [*] cannot project over it", place,
                              describeValue(container)));
    }
    const Array &elements = container.asArray();
    Array projected;
    projected.reserve(elements.size());
    for (size_t position = 0; position < elements.size(); ++position) {
      Result<Value> mapped =
          walkFrom(elements[position], index + 1, fmt::format("{}[{}]", place, position));
      if (!mapped.ok() || mapped->isMissing()) {
        return mapped;
      }
      projected.push_back(std::move(mapped).value());
    }
    return Value(std::move(projected));
  }
};

} // namespace

namespace {

// The walk of a path that resolves, without the spelling PathWalker prepares for its
// messages: most reads in a run succeed, and building the text of the path for each of them
// took a third of the time of an expression-heavy loop (bench/, perf). nullopt whenever
// anything is unusual (a member or element that is not there, a projection, a key of the
// wrong type): PathWalker then walks again and gives the answer or the message.
std::optional<Value> walkResolving(const Value &base, const PathDescriptor &path,
                                   llvm::ArrayRef<Value> dynamicValues) {
  const Value *current = &base;
  size_t dynamicIndex = 0;
  auto member = [&current](const std::string &name) {
    current = current->isObject() ? current->asObject().find(name) : nullptr;
  };
  auto element = [&current](int64_t index) {
    if (!current->isArray()) {
      current = nullptr;
      return;
    }
    const Array &array = current->asArray();
    auto size = static_cast<int64_t>(array.size());
    int64_t position = index < 0 ? index + size : index;
    current = position >= 0 && position < size ? &array[static_cast<size_t>(position)] : nullptr;
  };
  for (const PathSegment &segment : path.segments) {
    switch (segment.kind) {
    case PathSegment::Kind::Member:
      member(segment.member);
      break;
    case PathSegment::Kind::Index:
      element(segment.index);
      break;
    case PathSegment::Kind::Dynamic: {
      if (dynamicIndex >= dynamicValues.size()) {
        return std::nullopt;
      }
      const Value &key = dynamicValues[dynamicIndex++];
      if (key.isInt()) {
        element(key.asInt());
      } else if (key.isString()) {
        member(key.asString());
      } else {
        return std::nullopt;
      }
      break;
    }
    case PathSegment::Kind::Project:
      return std::nullopt;
    }
    if (current == nullptr) {
      return std::nullopt;
    }
  }
  return *current;
}

} // namespace

Result<Value> evaluatePath(const Value &base, const vm::PathDescriptor &path,
                           llvm::ArrayRef<Value> dynamicValues, PathMode mode) {
  if (std::optional<Value> resolved = walkResolving(base, path, dynamicValues)) {
    return std::move(*resolved);
  }
  return PathWalker(path, dynamicValues, mode).walk(base);
}

Result<bool> pathExists(const Value &base, const vm::PathDescriptor &path,
                        llvm::ArrayRef<Value> dynamicValues) {
  Result<Value> found = evaluatePath(base, path, dynamicValues, PathMode::Optional);
  if (!found) {
    return std::move(found).error();
  }
  return !found->isMissing();
}

} // namespace kotoba
