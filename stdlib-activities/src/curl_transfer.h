// What the libcurl activities (http, webhook, email) share: initialising libcurl once,
// owning handles, and running one transfer so that the attempt's stop request aborts it at
// once. The transfer runs on a multi handle: curl_multi_poll sleeps until the socket is
// ready, and the attempt's cancellation callback calls curl_multi_wakeup, so a cancel or a
// timeout does not wait for libcurl's next progress tick (about once a second).
#pragma once

#include "kotoba/runtime/activity.h"

#include <curl/curl.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kotoba::stdlib::detail {

// curl_global_init, once per process (it is not thread-safe, so every user goes through
// this before making a handle).
void initCurlOnce();

struct EasyCleanup {
  void operator()(CURL *easy) const { curl_easy_cleanup(easy); }
};
using EasyHandle = std::unique_ptr<CURL, EasyCleanup>;

// A curl_slist that frees itself.
class CurlList {
public:
  CurlList() = default;
  CurlList(const CurlList &) = delete;
  CurlList &operator=(const CurlList &) = delete;
  ~CurlList() { curl_slist_free_all(list_); }

  void append(const std::string &item) { list_ = curl_slist_append(list_, item.c_str()); }
  [[nodiscard]] curl_slist *get() const { return list_; }

private:
  curl_slist *list_ = nullptr;
};

// A new easy handle with what every transfer of the engine needs: no signals (threads),
// an error buffer, and the protocols allowed (`protocols`, as CURLOPT_PROTOCOLS_STR).
// nullptr when libcurl is out of memory.
[[nodiscard]] EasyHandle makeEasyHandle(const char *protocols, char *errorBuffer);

struct TransferOutcome {
  CURLcode code = CURLE_OK;
  // The attempt was asked to stop and the transfer was abandoned.
  bool stopped = false;
};

// Runs `easy` until it finishes or the attempt is asked to stop.
[[nodiscard]] TransferOutcome performTransfer(CURL *easy, runtime::ActivityContext &context);

// The text of a libcurl failure: the error buffer when libcurl filled it, else
// curl_easy_strerror.
[[nodiscard]] std::string curlErrorText(CURLcode code, const char *errorBuffer);

// Whether `text` holds a CR, LF or NUL: such a value cannot go into a header line without
// starting another one.
[[nodiscard]] bool breaksHeaderLine(std::string_view text);

} // namespace kotoba::stdlib::detail
