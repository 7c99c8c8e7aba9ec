// Composing the text of an e-mail (email_message.h).
#include "email_message.h"

#include "curl_transfer.h"
#include "implementation_fields.h"

#include "kotoba/vm/json.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>

namespace kotoba::stdlib::detail {

namespace {

// RFC 5322 section 2.1.1: lines must be at most 998 characters; 78 is the recommendation
// encoded words and base64 lines keep to.
constexpr size_t kMaxLineLength = 998;
// Bytes of text per encoded word: base64 makes 60 characters of 45 bytes, and with
// `=?UTF-8?B?` and `?=` the word stays under the 75 RFC 2047 allows.
constexpr size_t kEncodedWordBytes = 45;
constexpr size_t kBase64LineLength = 76;
// Keeps a Message-ID readable when run and step ids are long.
constexpr size_t kMessageIdPartLength = 64;

bool isPlainAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte >= 0x20 && byte < 0x7f;
  });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

// Header text: as it is when it is short printable ASCII, else RFC 2047 encoded words
// (whole UTF-8 sequences in each), folded onto continuation lines.
std::string encodeHeaderText(std::string_view text) {
  if (isPlainAscii(text) && text.size() <= kMaxLineLength - 100) {
    return std::string(text);
  }
  std::string encoded;
  while (!text.empty()) {
    size_t take = std::min(text.size(), kEncodedWordBytes);
    // Never split a UTF-8 sequence: back off while the next byte continues one.
    while (take < text.size() && take > 0 && (uint8_t(text[take]) & 0xC0) == 0x80) {
      --take;
    }
    if (!encoded.empty()) {
      encoded += "\r\n ";
    }
    encoded += "=?UTF-8?B?" + base64Encode(text.substr(0, take)) + "?=";
    text.remove_prefix(take);
  }
  return encoded;
}

// A display name as a quoted string when it holds characters that mean something in an
// address header.
std::string displayName(std::string_view name) {
  if (!isPlainAscii(name)) {
    return encodeHeaderText(name);
  }
  if (name.find_first_of("()<>[]:;@\\,.\"") == std::string_view::npos) {
    return std::string(name);
  }
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') {
      quoted += '\\';
    }
    quoted += c;
  }
  return quoted + "\"";
}

std::string addressList(const std::vector<MailAddress> &addresses) {
  std::string list;
  for (const MailAddress &address : addresses) {
    list += list.empty() ? address.header : ",\r\n " + address.header;
  }
  return list;
}

// Line ends made CRLF, whatever the text used.
std::string withCrlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n') {
        ++i;
      }
    } else if (text[i] == '\n') {
      out += "\r\n";
    } else {
      out += text[i];
    }
  }
  return out;
}

bool fitsSevenBit(std::string_view crlfText) {
  size_t lineLength = 0;
  for (char c : crlfText) {
    auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x80 || byte == 0) {
      return false;
    }
    lineLength = c == '\n' ? 0 : lineLength + 1;
    if (lineLength > kMaxLineLength) {
      return false;
    }
  }
  return true;
}

// Base64 in lines of 76 characters, each ended with CRLF (RFC 2045 section 6.8).
std::string base64Lines(std::string_view bytes) {
  std::string encoded = base64Encode(bytes);
  std::string lines;
  lines.reserve(encoded.size() + encoded.size() / kBase64LineLength * 2 + 2);
  for (size_t start = 0; start < encoded.size(); start += kBase64LineLength) {
    lines += encoded.substr(start, kBase64LineLength) + "\r\n";
  }
  return lines;
}

std::string sanitizeIdPart(std::string_view text) {
  std::string part;
  for (char c : text.substr(0, kMessageIdPartLength)) {
    part += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '-';
  }
  return part.empty() ? "-" : part;
}

uint64_t fnv1a(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : text) {
    hash ^= uint8_t(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

} // namespace

std::optional<MailAddress> parseMailAddress(std::string_view text) {
  if (breaksHeaderLine(text)) {
    return std::nullopt;
  }
  text = trim(text);
  std::string_view name;
  std::string_view address = text;
  if (size_t open = text.find('<'); open != std::string_view::npos) {
    if (text.back() != '>') {
      return std::nullopt;
    }
    name = trim(text.substr(0, open));
    address = text.substr(open + 1, text.size() - open - 2);
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
      name = name.substr(1, name.size() - 2);
    }
  }
  size_t at = address.find('@');
  bool wellFormed = at != std::string_view::npos && at > 0 && at + 1 < address.size() &&
                    address.find('@', at + 1) == std::string_view::npos && isPlainAscii(address) &&
                    address.find_first_of(" <>,;\"()[]\\") == std::string_view::npos;
  if (!wellFormed) {
    return std::nullopt;
  }
  MailAddress parsed;
  parsed.address = std::string(address);
  parsed.header = name.empty() ? parsed.address : displayName(name) + " <" + parsed.address + ">";
  return parsed;
}

namespace {

// A text part's headers and body: 7bit when it fits, else base64.
std::string textPart(std::string_view mediaType, std::string_view text) {
  std::string body = withCrlf(text);
  bool sevenBit = fitsSevenBit(body);
  std::string part = fmt::format("Content-Type: {}; charset=utf-8\r\n", mediaType);
  part += std::string("Content-Transfer-Encoding: ") + (sevenBit ? "7bit" : "base64") + "\r\n";
  part += "\r\n";
  if (sevenBit) {
    part += body;
    if (!body.empty() && !body.ends_with("\r\n")) {
      part += "\r\n";
    }
    return part;
  }
  return part + base64Lines(body);
}

// A filename parameter: quoted when it is plain ASCII, else RFC 2231's `filename*` with the
// UTF-8 bytes percent-encoded, so nothing in it can close the quotes or the header.
std::string filenameParameter(std::string_view name) {
  bool plain = isPlainAscii(name) && name.find_first_of("\"\\") == std::string_view::npos &&
               name.size() < 200;
  if (plain) {
    return fmt::format("filename=\"{}\"", name);
  }
  std::string encoded = "filename*=UTF-8''";
  for (char c : name) {
    auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || std::string_view("!#$&+-.^_`|~").find(c) != std::string_view::npos) {
      encoded += c;
    } else {
      encoded += fmt::format("%{:02X}", byte);
    }
  }
  return encoded;
}

std::string attachmentPart(const MailAttachment &attachment) {
  std::string part = "Content-Type: " + attachment.contentType + "\r\n";
  part += "Content-Transfer-Encoding: base64\r\n";
  part += "Content-Disposition: attachment; " + filenameParameter(attachment.filename) + "\r\n";
  part += "\r\n";
  return part + base64Lines(attachment.content);
}

// A boundary that none of `parts` holds: parts are base64 or 7bit text, and base64 never
// has "=_", but a text part might, so the candidate is checked and changed until it fits.
std::string boundaryFor(const MailMessage &message, const std::vector<std::string> &parts,
                        std::string_view kind) {
  for (uint64_t salt = 0;; ++salt) {
    std::string boundary = fmt::format("=_kotoba_{}_{:016x}", kind,
                                       fnv1a(fmt::format("{}/{}", message.messageId, salt)));
    bool clash = std::any_of(parts.begin(), parts.end(), [&](const std::string &part) {
      return part.find(boundary) != std::string::npos;
    });
    if (!clash) {
      return boundary;
    }
  }
}

// A multipart entity of `parts` (each headers, blank line, body): its Content-Type line and
// body, as a part of its own.
std::string multipart(const MailMessage &message, std::string_view subtype,
                      const std::vector<std::string> &parts) {
  std::string boundary = boundaryFor(message, parts, subtype);
  std::string entity =
      fmt::format("Content-Type: multipart/{}; boundary=\"{}\"\r\n\r\n", subtype, boundary);
  for (const std::string &part : parts) {
    entity += "--" + boundary + "\r\n" + part;
  }
  entity += "--" + boundary + "--\r\n";
  return entity;
}

} // namespace

bool isSafeAttachmentName(std::string_view name) {
  return !name.empty() && isValidUtf8(name) && std::none_of(name.begin(), name.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f || c == '/' || c == '\\';
  });
}

bool isMediaType(std::string_view text) {
  auto isToken = [](std::string_view token) {
    return !token.empty() && std::all_of(token.begin(), token.end(), [](char c) {
      auto byte = static_cast<unsigned char>(c);
      return std::isalnum(byte) || std::string_view("!#$&+-.^_`|~").find(c) != std::string::npos;
    });
  };
  size_t slash = text.find('/');
  return slash != std::string_view::npos && isToken(text.substr(0, slash)) &&
         isToken(text.substr(slash + 1));
}

std::string composeMessage(const MailMessage &message) {
  std::string text;
  text += "Date: " + message.date + "\r\n";
  text += "From: " + message.from.header + "\r\n";
  if (!message.to.empty()) {
    text += "To: " + addressList(message.to) + "\r\n";
  }
  if (!message.cc.empty()) {
    text += "Cc: " + addressList(message.cc) + "\r\n";
  }
  text += "Subject: " + encodeHeaderText(message.subject) + "\r\n";
  text += "Message-ID: " + message.messageId + "\r\n";
  text += "MIME-Version: 1.0\r\n";
  std::string body =
      message.html
          ? multipart(message, "alternative",
                      {textPart("text/plain", message.text), textPart("text/html", *message.html)})
          : textPart("text/plain", message.text);
  if (!message.attachments.empty()) {
    std::vector<std::string> parts = {std::move(body)};
    for (const MailAttachment &attachment : message.attachments) {
      parts.push_back(attachmentPart(attachment));
    }
    body = multipart(message, "mixed", parts);
  }
  return text + body;
}

std::string makeMessageId(std::string_view runId, std::string_view stepId, uint64_t commandId,
                          std::string_view fromAddress) {
  std::string key = fmt::format("{}/{}/c{}", runId, stepId, commandId);
  std::string_view domain = fromAddress.substr(fromAddress.find('@') + 1);
  bool plainDomain = !domain.empty() && std::all_of(domain.begin(), domain.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  });
  return fmt::format("<kotoba.{}.{}.c{}.{:016x}@{}>", sanitizeIdPart(runId), sanitizeIdPart(stepId),
                     commandId, fnv1a(key),
                     plainDomain ? domain : std::string_view("kotoba.invalid"));
}

std::string currentMailDate() {
  static constexpr std::array<const char *, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                        "Thu", "Fri", "Sat"};
  static constexpr std::array<const char *, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  // Written by hand rather than with strftime, whose day and month names follow the locale.
  return fmt::format("{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} +0000", kDays[size_t(utc.tm_wday)],
                     utc.tm_mday, kMonths[size_t(utc.tm_mon)], utc.tm_year + 1900, utc.tm_hour,
                     utc.tm_min, utc.tm_sec);
}

} // namespace kotoba::stdlib::detail
