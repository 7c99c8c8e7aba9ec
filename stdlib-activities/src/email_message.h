// Composing a plain-text e-mail (RFC 5322 with MIME, RFC 2045 and 2047) for the email
// activity: address parsing, header encoding and the body's transfer encoding. Nothing a
// workflow supplies can add a header: a line break in an address or a subject is refused,
// and non-ASCII text is encoded rather than written raw.
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

struct MailMessage {
  MailAddress from;
  std::vector<MailAddress> to;
  std::vector<MailAddress> cc;
  std::string subject;
  std::string text;
  std::string messageId; // with the angle brackets
  std::string date;      // RFC 5322 date-time
};

// The message as sent after DATA: headers, a blank line, the body; CRLF line ends. Bcc
// recipients are only in the envelope, never in the text.
[[nodiscard]] std::string composeMessage(const MailMessage &message);

// `<kotoba.RUN.STEP.cN.HASH@DOMAIN>`: the same for every attempt of one call, so a receiver
// can drop a duplicate a retry delivered after a lost acknowledgement.
[[nodiscard]] std::string makeMessageId(std::string_view runId, std::string_view stepId,
                                        uint64_t commandId, std::string_view fromAddress);

// The current time as an RFC 5322 date in UTC: `Tue, 04 Mar 2025 17:03:11 +0000`.
[[nodiscard]] std::string currentMailDate();

} // namespace kotoba::stdlib::detail
