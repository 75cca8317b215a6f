#pragma once
// The HTTP side of `tori serve` on rank 0 (cpp-httplib, its own thread pool): the OpenAI endpoints
// POST /v1/completions and /v1/chat/completions (JSON, or server-sent events with stream: true),
// GET /v1/models, /health and /metrics. A request is parsed and validated on its connection's
// thread (request.hpp), queued as a Job for the scheduler, and answered from the job's text.
// Every error is OpenAI-shaped JSON ({"error": {...}}) with its 4xx/5xx status; once draining,
// new completions get 503.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "serve/job.hpp"
#include "serve/metrics.hpp"
#include "serve/request.hpp"

namespace httplib {
class Server;
}

namespace tori::serve {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;                   // empty: no authentication
  size_t max_body = 1 << 20;             // bytes; larger bodies get 413
  int threads = 64;                      // connections served at once
};

class HttpApi {
 public:
  HttpApi(const HttpOptions& opt, const ModelInfo& info, JobQueue& queue, Metrics& metrics,
          const std::atomic<bool>& draining);
  ~HttpApi();
  // Binds (throws InputError naming --host/--port when it cannot) and serves on a thread of its own.
  void start();
  int port() const { return opt_.port; }  // after start(): the port listened on (--port 0: the one chosen)
  // Stops accepting and joins the thread, once the completions being answered have written their
  // responses (waiting at most kFinishWrites): httplib's stop ends a streamed response's write
  // loop where it is (its last events and terminating chunk unsent) as soon as the server is
  // not running, so stopping right after the scheduler finished the last job cut its stream.
  void stop();

 private:
  void routes();
  // A completion being answered: counted until the returned token is dropped (a non-streamed
  // response: when its handler returns, as httplib then writes it whatever stop() does; a streamed
  // one: the token is in its content provider, which httplib drops once the stream is written).
  std::shared_ptr<void> answering();
  HttpOptions opt_;
  const ModelInfo& info_;
  JobQueue& queue_;
  Metrics& metrics_;
  const std::atomic<bool>& draining_;
  std::unique_ptr<httplib::Server> svr_;
  std::thread thread_;
  std::atomic<int64_t> next_id_{0};
  std::mutex answering_m_;
  std::condition_variable answering_cv_;
  int64_t answering_ = 0;
};

}  // namespace tori::serve
