// Parsing `--bind NAME=SPEC` into an implementation object.
#include "kotoba/runtime/activity_binding.h"

#include <fmt/format.h>

namespace kotoba::runtime {

namespace {

WorkflowError invalidBinding(std::string_view option, std::string problem) {
  Object details;
  details.set("option", std::string(option));
  return makeError(kInvalidBinding, fmt::format("--bind {}: {}", option, problem),
                   Value(std::move(details)));
}

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

} // namespace

Result<std::vector<std::string>> splitCommandLine(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool inWord = false;
  size_t pos = 0;
  while (pos < text.size()) {
    char c = text[pos];
    if (isSpace(c)) {
      if (inWord) {
        words.push_back(std::move(word));
        word.clear();
        inWord = false;
      }
      ++pos;
      continue;
    }
    inWord = true;
    if (c == '\'') {
      size_t close = text.find('\'', pos + 1);
      if (close == std::string_view::npos) {
        return makeError(kInvalidBinding, fmt::format("unterminated ' quote at offset {}", pos));
      }
      word.append(text.substr(pos + 1, close - pos - 1));
      pos = close + 1;
      continue;
    }
    if (c == '"') {
      size_t start = pos;
      ++pos;
      while (pos < text.size() && text[pos] != '"') {
        if (text[pos] == '\\' && pos + 1 < text.size() &&
            (text[pos + 1] == '"' || text[pos + 1] == '\\')) {
          ++pos;
        }
        word.push_back(text[pos++]);
      }
      if (pos >= text.size()) {
        return makeError(kInvalidBinding, fmt::format("unterminated \" quote at offset {}", start));
      }
      ++pos; // closing quote
      continue;
    }
    if (c == '\\') {
      if (pos + 1 >= text.size()) {
        return makeError(kInvalidBinding, "a backslash at the end has nothing to escape");
      }
      word.push_back(text[pos + 1]);
      pos += 2;
      continue;
    }
    word.push_back(c);
    ++pos;
  }
  if (inWord) {
    words.push_back(std::move(word));
  }
  return words;
}

Result<ActivityBinding> parseBinding(std::string_view option) {
  size_t equals = option.find('=');
  if (equals == std::string_view::npos) {
    return invalidBinding(option, "expected NAME=SPEC, such as --bind "
                                  "charge=process:./charge.sh or --bind "
                                  "charge=http://127.0.0.1:8080/charge");
  }
  std::string_view name = option.substr(0, equals);
  std::string_view spec = option.substr(equals + 1);
  if (name.empty()) {
    return invalidBinding(option, "the activity name before '=' is empty");
  }
  for (char c : name) {
    if (isSpace(c) || static_cast<unsigned char>(c) < 0x20) {
      return invalidBinding(option, fmt::format("the activity name '{}' contains whitespace "
                                                "or a control character",
                                                name));
    }
  }
  ActivityBinding binding;
  binding.name = std::string(name);
  Object implementation;

  if (startsWith(spec, "process:")) {
    Result<std::vector<std::string>> words = splitCommandLine(spec.substr(8));
    if (!words.ok()) {
      return invalidBinding(option, words.error().message);
    }
    if (words->empty()) {
      return invalidBinding(option, "'process:' needs a program, as process:./charge.sh");
    }
    implementation.set("type", "process");
    implementation.set("command", words.value()[0]);
    Array args;
    for (size_t i = 1; i < words->size(); ++i) {
      args.emplace_back(words.value()[i]);
    }
    implementation.set("args", Value(std::move(args)));
    binding.implementation = Value(std::move(implementation));
    return binding;
  }

  // `http:URL`, where URL may itself start with http:// (so `http://host/x` alone works).
  std::string_view url;
  if (startsWith(spec, "http://") || startsWith(spec, "https://")) {
    url = spec;
  } else if (startsWith(spec, "http:")) {
    url = spec.substr(5);
  }
  if (!url.empty() || spec == "http:") {
    if (!startsWith(url, "http://") && !startsWith(url, "https://")) {
      return invalidBinding(option, "'http:' needs a URL starting with http:// or https://, "
                                    "as http:http://127.0.0.1:8080/charge");
    }
    if (url.size() <= url.find("//") + 2) {
      return invalidBinding(option, fmt::format("the URL '{}' has no host", url));
    }
    implementation.set("type", "http");
    implementation.set("method", "POST");
    implementation.set("url", std::string(url));
    // runtime.md section 9: the result of an http binding is the response body.
    implementation.set("result", "body");
    binding.implementation = Value(std::move(implementation));
    return binding;
  }

  std::string hint;
  if (spec.find(':') == std::string_view::npos) {
    hint = fmt::format("; to run a program write {}=process:{}", name, spec);
  } else if (startsWith(spec, "proc") || startsWith(spec, "exec:") || startsWith(spec, "cmd:")) {
    hint = "; did you mean 'process:'?";
  }
  return invalidBinding(option, fmt::format("unknown binding '{}'; expected process:PATH "
                                            "[ARGS...] or http:URL{}",
                                            spec, hint));
}

Value runHostToValue(const RunHost &host) {
  Array bindings;
  for (const RunBinding &binding : host.bindings) {
    Object entry;
    entry.set("name", Value(binding.name));
    entry.set("implementation", binding.implementation);
    entry.set("base_directory", Value(binding.baseDirectory));
    bindings.push_back(Value(std::move(entry)));
  }
  Object object;
  object.set("base_directory", Value(host.baseDirectory));
  object.set("bindings", Value(std::move(bindings)));
  return Value(std::move(object));
}

Result<RunHost> runHostFromValue(const Value &value) {
  auto malformed = [&](std::string_view what) {
    return makeError(kInvalidBinding,
                     fmt::format("the run's stored activity host is malformed: {}", what));
  };
  if (!value.isObject()) {
    return malformed("expected an object, found " + describeValue(value));
  }
  RunHost host;
  const Object &object = value.asObject();
  if (const Value *base = object.find("base_directory"); base != nullptr) {
    if (!base->isString()) {
      return malformed("'base_directory' must be a string");
    }
    host.baseDirectory = base->asString();
  }
  const Value *bindings = object.find("bindings");
  if (bindings == nullptr) {
    return host;
  }
  if (!bindings->isArray()) {
    return malformed("'bindings' must be an array");
  }
  for (const Value &entry : bindings->asArray()) {
    const Value *name = entry.isObject() ? entry.asObject().find("name") : nullptr;
    const Value *implementation =
        entry.isObject() ? entry.asObject().find("implementation") : nullptr;
    const Value *base = entry.isObject() ? entry.asObject().find("base_directory") : nullptr;
    if (name == nullptr || !name->isString() || implementation == nullptr ||
        (base != nullptr && !base->isString())) {
      return malformed("each binding needs a string 'name', an 'implementation' and a string "
                       "'base_directory'");
    }
    host.bindings.push_back(
        RunBinding{name->asString(), *implementation, base != nullptr ? base->asString() : ""});
  }
  return host;
}

} // namespace kotoba::runtime
