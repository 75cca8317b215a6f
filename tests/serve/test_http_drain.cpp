// HttpApi::stop() after the scheduler finished the last job (serve/http_api.hpp), with a real
// HTTP client on loopback and this test in the scheduler's place: a streamed response still being
// written when the server is stopped is written to its end ([DONE] and the terminating chunk).
// httplib's own stop ends a stream's write loop as soon as the server is not running, so stopping
// at once cut a stream whose last events were not written yet: serve:errors' SIGTERM drain failed
// now and then ("incomplete chunked read") when its HTTP thread lagged the scheduler. Made
// deterministic here by a client that reads nothing until stop() was called, so the server is
// blocked writing a large piece of text when the job finishes and stop() is asked.
#include <poll.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "tests/serve/http_test_support.hpp"

using namespace tori::serve;
using namespace std::chrono_literals;

TEST_CASE("HttpApi::stop: a stream being written when the last job finishes is written to its end") {
  test::LoopbackServer server(1);
  JobQueue& queue = server.queue;
  HttpApi& http = server.http;

  const int client = test::connect_loopback(http.port(), 10, 4096);  // a small window: the write below blocks at once
  REQUIRE(client >= 0);
  REQUIRE(test::send_post(client, "/v1/completions", R"({"model": "m", "prompt": [1, 2, 3], "max_tokens": 2, "stream": true})"));

  std::shared_ptr<Job> job = test::next_job(queue);
  REQUIRE(job);
  // The scheduler's side: a first token's text too large for the socket buffers, then (once the
  // server is writing it: its first bytes have arrived) the last token, the end of the job and,
  // as `tori serve` does when its scheduler returns, stop().
  job->append(std::string(8 << 20, 'x'), 1);
  pollfd p{client, POLLIN, 0};
  REQUIRE(poll(&p, 1, 10000) == 1);
  job->append("y", 2);
  job->finish("length");
  server.draining = true;
  std::thread stopper([&] { http.stop(); });
  std::this_thread::sleep_for(200ms);  // (the old stop() has stopped the server by now)

  std::string got;
  char buf[1 << 16];
  for (ssize_t n; (n = read(client, buf, sizeof(buf))) > 0;) {
    got.append(buf, size_t(n));
    if (got.size() > 6 && got.compare(got.size() - 5, 5, "0\r\n\r\n") == 0) break;  // the last chunk
  }
  close(client);
  stopper.join();
  REQUIRE(got.find("HTTP/1.1 200") == 0);
  CHECK(got.find("\"finish_reason\":\"length\"") != std::string::npos);
  CHECK(got.find("data: [DONE]\n\n") != std::string::npos);
  CHECK(got.compare(got.size() - 5, 5, "0\r\n\r\n") == 0);
}
