// A model step that throws in `tori serve` (serve/scheduler.hpp: a rank lost, a collective timed
// out): every request then gets an answer — a 500 JSON error, or an error event ending its stream —
// and the server stops, instead of HTTP threads waiting forever for jobs no scheduler will run
// (the exception could not leave `tori serve` while HttpApi::stop joined them). This test plays the
// failing scheduler: a job in a slot fails (Job::fail), the queue closes with the rest in it
// (JobQueue::close), and a request that arrives after that fails at once.
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "tests/serve/http_test_support.hpp"

using namespace tori::serve;
using namespace std::chrono_literals;

TEST_CASE("HttpApi: when the model fails, every request is answered with the error and the server stops") {
  test::LoopbackServer server(2);
  JobQueue& queue = server.queue;
  HttpApi& http = server.http;
  const std::string whole = R"({"model": "m", "prompt": [1, 2, 3], "max_tokens": 4})";
  const std::string stream = R"({"model": "m", "prompt": [1, 2, 3], "max_tokens": 4, "stream": true})";
  const std::string error = "the model failed: rank 3 lost";

  // A whole answer whose job is in a slot when the model fails.
  const int in_slot = test::connect_loopback(http.port());
  REQUIRE(in_slot >= 0);
  REQUIRE(test::send_post(in_slot, "/v1/completions", whole));
  std::shared_ptr<Job> job = test::next_job(queue);
  REQUIRE(job);
  job->append("partial", 1);
  // A stream still queued.
  const int queued = test::connect_loopback(http.port());
  REQUIRE(queued >= 0);
  REQUIRE(test::send_post(queued, "/v1/completions", stream));
  for (auto until = std::chrono::steady_clock::now() + 10s; queue.size() == 0 && std::chrono::steady_clock::now() < until;)
    std::this_thread::sleep_for(1ms);
  REQUIRE(queue.size() == 1);

  job->fail(error);
  queue.close(error);
  const std::string a = test::read_all(in_slot), b = test::read_all(queued);
  // A request after the failure: nothing will run it.
  const int late = test::connect_loopback(http.port());
  REQUIRE(late >= 0);
  REQUIRE(test::send_post(late, "/v1/completions", whole));
  const std::string c = test::read_all(late);
  for (int fd : {in_slot, queued, late}) close(fd);

  INFO("in a slot:\n" << a << "\nqueued stream:\n" << b << "\nlate:\n" << c);
  CHECK(a.find("HTTP/1.1 500") == 0);
  CHECK(a.find("\"message\":\"" + error + "\"") != std::string::npos);
  CHECK(a.find("partial") == std::string::npos);  // no partial text passed off as an answer
  CHECK(b.find("HTTP/1.1 200") == 0);  // (a stream's status is sent before any token)
  CHECK(b.find("data: {\"error\":{\"code\":null,\"message\":\"" + error + "\"") != std::string::npos);
  CHECK(b.find("finish_reason\":\"") == std::string::npos);
  CHECK(b.find("data: [DONE]\n\n") != std::string::npos);
  CHECK(c.find("HTTP/1.1 500") == 0);
  CHECK(c.find(error) != std::string::npos);

  const auto t0 = std::chrono::steady_clock::now();
  http.stop();
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);  // nothing left waiting (the bound is 10 s)
}
