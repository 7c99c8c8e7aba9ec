// Composing an e-mail (RFC 5322 with MIME, RFC 2045, 2046, 2047 and 2231) for the email
// activity: address parsing, header encoding, the body's transfer encoding, and the MIME
// tree of a message with an HTML body (multipart/alternative) or attachments
// (multipart/mixed). Nothing a workflow supplies can add a header: a line break in an
// address, a subject or an attachment's name is refused, and non-ASCII text is encoded
// rather than written raw.
#pragma once

#include "kotoba/vm/error.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kotoba::stdlib::detail {

struct MailAddress {
  // As the header shows it: `Ann Lee <ann@example.com>`, with a non-ASCII name encoded.
  std::string header;
  // The bare address for the SMTP envelope: `ann@example.com`.
  std::string address;
};

// Parses `ann@example.com` or `Ann Lee <ann@example.com>`. nullopt when it is not one
// address (no '@', spaces or commas in the address, line breaks anywhere).
[[nodiscard]] std::optional<MailAddress> parseMailAddress(std::string_view text);

struct MailAttachment {
  // Any UTF-8 without control characters (checked by isSafeAttachmentName).
  std::string filename;
  // `type/subtype`, checked by isMediaType.
  std::string contentType;
  std::string content; // bytes
};

struct MailMessage {
  MailAddress from;
  std::vector<MailAddress> to;
  std::vector<MailAddress> cc;
  std::string subject;
  std::string text;
  // An HTML body: sent with `text` as multipart/alternative (the text first, as RFC 2046
  // section 5.1.4 orders the plainest first).
  std::optional<std::string> html;
  std::vector<MailAttachment> attachments;
  std::string messageId; // with the angle brackets
  std::string date;      // RFC 5322 date-time
};

// Whether `name` can name an attachment: not empty, valid UTF-8, no control characters (a
// line break would end the header it is written in), no '/' or '\\'.
[[nodiscard]] bool isSafeAttachmentName(std::string_view name);
// Whether `text` is a bare media type `type/subtype` of RFC 2045 token characters.
[[nodiscard]] bool isMediaType(std::string_view text);

// The message as sent after DATA: headers, a blank line, the body; CRLF line ends. Bcc
// recipients are only in the envelope, never in the text. A message with only a text body
// is a single text/plain part; one with HTML or attachments is multipart.
[[nodiscard]] std::string composeMessage(const MailMessage &message);

// `<kotoba.RUN.STEP.cN.HASH@DOMAIN>`: the same for every attempt of one call, so a receiver
// can drop a duplicate a retry delivered after a lost acknowledgement.
[[nodiscard]] std::string makeMessageId(std::string_view runId, std::string_view stepId,
                                        uint64_t commandId, std::string_view fromAddress);

// The current time as an RFC 5322 date in UTC: `Tue, 04 Mar 2025 17:03:11 +0000`.
[[nodiscard]] std::string currentMailDate();

} // namespace kotoba::stdlib::detail
