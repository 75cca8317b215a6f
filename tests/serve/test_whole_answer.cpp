// A not-streamed response's wait for its job (serve/whole_answer.hpp) and the client check it uses
// (serve/client_socket.hpp), on real loopback TCP connections and a thread in the scheduler's
// place, without a model: a client that goes away while text keeps coming is noticed (the wait
// used to look at the connection only after `check` passed with no text, so a request whose
// tokens came faster than that ran to its end: the serve:errors failure of issue 25); one that
// stays gets the whole answer; what counts as gone.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "serve/whole_answer.hpp"

using namespace tori::serve;
using namespace std::chrono_literals;

namespace {

int port_of(int fd, bool peer) {
  sockaddr_in a{};
  socklen_t n = sizeof(a);
  REQUIRE((peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&a), &n) : getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n)) == 0);
  return ntohs(a.sin_port);
}

// One accepted loopback connection: `server` is this process's end as httplib's would be, `client`
// the other end; socket() finds `server` by its 4-tuple as a handler does.
struct Connection {
  int server = -1, client = -1;
  Connection() {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(listen(listener, 1) == 0);
    a.sin_port = htons(uint16_t(port_of(listener, false)));
    client = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(connect(client, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    server = accept(listener, nullptr, nullptr);
    REQUIRE(server >= 0);
    close(listener);
  }
  ~Connection() {
    if (server >= 0) close(server);
    close_client();
  }
  ClientSocket socket() const { return {"127.0.0.1", port_of(server, false), "127.0.0.1", port_of(server, true)}; }
  void close_client() {
    if (client >= 0) close(client);
    client = -1;
  }
};

// In the scheduler's place: appends one piece of text every `every` (token k's text is "k "),
// `pieces` in all, then finishes the job with "length"; a job found cancelled is finished with
// "abort" at once, as the scheduler does at its next step. Returns the pieces appended.
int run_scheduler(Job& job, int pieces, std::chrono::microseconds every) {
  for (int k = 0; k < pieces; ++k) {
    if (job.cancelled) {
      job.finish("abort");
      return k;
    }
    job.append(std::to_string(k) + " ", k + 1);
    std::this_thread::sleep_for(every);
  }
  job.finish("length");
  return pieces;
}

// The kernel's view of a loopback peer's close or bytes follows at once; waits up to 5 s for it.
bool gone_within_5s(const ClientSocket& client) {
  for (auto until = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < until;
       std::this_thread::sleep_for(1ms))
    if (client.gone()) return true;
  return false;
}

CompletionRequest request() {
  CompletionRequest r;
  r.prompt = {1, 2, 3};
  return r;
}

}  // namespace

TEST_CASE("whole_answer: a client that closes while tokens come faster than the check is cancelled") {
  // A piece every 1 ms for up to 5 s, and a check interval (10 s) that never passes without text:
  // only looking after each piece notices the close. Looking only after `check` with no text (the
  // old wait) never looks, and the job runs to "length" with all 5000 pieces.
  Connection c;
  const ClientSocket client = c.socket();
  REQUIRE(client.found());
  Job job(request());
  std::atomic<int> appended{-1};
  std::thread scheduler([&] { appended = run_scheduler(job, 5000, 1ms); });
  while (job.wait_update_for(5s).value().tokens < 20) {  // (a client reading nothing: just wait for some tokens)
  }
  c.close_client();
  const WholeAnswer a = whole_answer(job, client, 10s);
  scheduler.join();
  CHECK(a.cancelled);
  CHECK(a.last.finished);
  CHECK(a.last.reason == "abort");
  CHECK(appended < 5000);
}

TEST_CASE("whole_answer: a client that closes while no text comes is cancelled after the check interval") {
  // The prefill of a long prompt, or a wait in the queue: nothing appended until cancelled.
  Connection c;
  const ClientSocket client = c.socket();
  Job job(request());
  std::thread scheduler([&] {
    while (!job.cancelled) std::this_thread::sleep_for(1ms);
    job.finish("abort");
  });
  c.close_client();
  const WholeAnswer a = whole_answer(job, client, 20ms);
  scheduler.join();
  CHECK(a.cancelled);
  CHECK(a.text.empty());
  CHECK(a.last.reason == "abort");
}

TEST_CASE("whole_answer: a client that stays gets the whole text, not cancelled") {
  Connection c;
  const ClientSocket client = c.socket();
  Job job(request());
  std::thread scheduler([&] { run_scheduler(job, 200, 100us); });
  const WholeAnswer a = whole_answer(job, client, 5ms);
  scheduler.join();
  std::string want;
  for (int k = 0; k < 200; ++k) want += std::to_string(k) + " ";
  CHECK_FALSE(a.cancelled);
  CHECK(a.text == want);
  CHECK(a.last.reason == "length");
  CHECK(a.last.tokens == 200);
}

TEST_CASE("ClientSocket: what counts as gone") {
  Connection c;
  const ClientSocket client = c.socket();
  REQUIRE(client.found());
  CHECK_FALSE(client.gone());
  SECTION("bytes waiting (a pipelined request) are not a close, and are not read") {
    REQUIRE(write(c.client, "GET / HTTP/1.1\r\n", 16) == 16);
    pollfd p{c.server, POLLIN, 0};
    REQUIRE(poll(&p, 1, 5000) == 1);
    CHECK_FALSE(client.gone());
    char buf[32];
    CHECK(recv(c.server, buf, sizeof(buf), MSG_DONTWAIT) == 16);
  }
  SECTION("a half-close (shutdown of the client's sending side) is gone") {
    REQUIRE(shutdown(c.client, SHUT_WR) == 0);
    CHECK(gone_within_5s(client));
  }
  SECTION("a reset is gone") {
    const linger l{1, 0};  // close with RST
    REQUIRE(setsockopt(c.client, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) == 0);
    c.close_client();
    CHECK(gone_within_5s(client));
  }
  SECTION("another connection's 4-tuple finds nothing, which is never gone") {
    const ClientSocket none("127.0.0.1", port_of(c.server, false), "127.0.0.1", 1);
    CHECK_FALSE(none.found());
    c.close_client();
    CHECK(gone_within_5s(client));
    CHECK_FALSE(none.gone());
  }
}
