#pragma once
// The HTTP side of `tori serve` on rank 0 (cpp-httplib, its own thread pool): the OpenAI endpoints
// POST /v1/completions and /v1/chat/completions (JSON, or server-sent events with stream: true),
// GET /v1/models, /health and /metrics. A request is parsed and validated on its connection's
// thread (request.hpp), queued as a Job for the scheduler, and answered from the job's text.
// Every error is OpenAI-shaped JSON ({"error": {...}}) with its 4xx/5xx status; once draining,
// new completions get 503.
#include <atomic>
#include <memory>
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
  void stop();  // stops accepting and joins the thread

 private:
  void routes();
  HttpOptions opt_;
  const ModelInfo& info_;
  JobQueue& queue_;
  Metrics& metrics_;
  const std::atomic<bool>& draining_;
  std::unique_ptr<httplib::Server> svr_;
  std::thread thread_;
  std::atomic<int64_t> next_id_{0};
};

}  // namespace tori::serve
