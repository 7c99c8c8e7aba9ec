// libcurl setup and cancellable transfers for the http, webhook and email activities.
#include "curl_transfer.h"

#include <cassert>
#include <mutex>

namespace kotoba::stdlib::detail {

namespace {

// How long one curl_multi_poll may sleep when nothing happens. The attempt's stop request
// wakes it early, and libcurl shortens it to its own timers, so this only bounds how long a
// lost wake-up could delay a stop.
constexpr int kPollSliceMs = 1000;

} // namespace

void initCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
    assert(code == CURLE_OK && "curl_global_init failed; libcurl cannot be used at all");
    (void)code;
  });
}

EasyHandle makeEasyHandle(const char *protocols, char *errorBuffer) {
  initCurlOnce();
  EasyHandle easy(curl_easy_init());
  if (!easy) {
    return easy;
  }
  errorBuffer[0] = '\0';
  curl_easy_setopt(easy.get(), CURLOPT_ERRORBUFFER, errorBuffer);
  // Without it, libcurl uses signals for DNS timeouts, which is unsafe with threads.
  curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy.get(), CURLOPT_PROTOCOLS_STR, protocols);
  curl_easy_setopt(easy.get(), CURLOPT_REDIR_PROTOCOLS_STR, protocols);
  return easy;
}

TransferOutcome performTransfer(CURL *easy, runtime::ActivityContext &context) {
  TransferOutcome outcome;
  CURLM *multi = curl_multi_init();
  if (multi == nullptr) {
    outcome.code = CURLE_OUT_OF_MEMORY;
    return outcome;
  }
  curl_multi_add_handle(multi, easy);
  // curl_multi_wakeup is the one multi call that is safe from another thread; the callback
  // runs under the signal's locks, and it only writes to libcurl's wake-up pipe.
  runtime::CancellationSignal::CallbackId wakeUp =
      context.cancellation().onStop([multi] { curl_multi_wakeup(multi); });
  int running = 1;
  CURLMcode status = CURLM_OK;
  while (true) {
    status = curl_multi_perform(multi, &running);
    if (status != CURLM_OK || running == 0) {
      break;
    }
    if (context.cancelled()) {
      outcome.stopped = true;
      break;
    }
    status = curl_multi_poll(multi, nullptr, 0, kPollSliceMs, nullptr);
    if (status != CURLM_OK) {
      break;
    }
    if (context.cancelled()) {
      outcome.stopped = true;
      break;
    }
  }
  context.cancellation().removeCallback(wakeUp);
  if (!outcome.stopped) {
    if (status != CURLM_OK) {
      outcome.code = status == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
    } else {
      int queued = 0;
      outcome.code = CURLE_GOT_NOTHING;
      while (CURLMsg *message = curl_multi_info_read(multi, &queued)) {
        if (message->msg == CURLMSG_DONE && message->easy_handle == easy) {
          outcome.code = message->data.result;
        }
      }
    }
  }
  curl_multi_remove_handle(multi, easy);
  curl_multi_cleanup(multi);
  return outcome;
}

std::string curlErrorText(CURLcode code, const char *errorBuffer) {
  if (errorBuffer != nullptr && errorBuffer[0] != '\0') {
    return errorBuffer;
  }
  return curl_easy_strerror(code);
}

bool breaksHeaderLine(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

} // namespace kotoba::stdlib::detail
