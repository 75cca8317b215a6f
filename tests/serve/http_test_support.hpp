#pragma once
// For the serve unit tests that put a real HttpApi on loopback and play the scheduler themselves:
// a raw HTTP/1.1 client (what a client sends and receives byte for byte, with a read timeout so that
// a server that never answers fails the test instead of hanging it), and the wait for a queued job.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "serve/http_api.hpp"
#include "serve/job.hpp"

namespace tori::serve::test {

// A connected socket to 127.0.0.1:port whose reads give up after `patience_s` (-1 on failure).
// rcvbuf > 0 sets SO_RCVBUF (before connecting, so the window is small from the start).
inline int connect_loopback(int port, int patience_s = 10, int rcvbuf = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  const timeval patience{patience_s, 0};
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(port));
  if ((rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) != 0) ||
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof(patience)) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends POST `path` with a JSON body; true when all of it was written.
inline bool send_post(int fd, const std::string& path, const std::string& body) {
  const std::string msg = "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  return write(fd, msg.data(), msg.size()) == ssize_t(msg.size());
}

// Everything the server sends until it closes the connection or a read times out.
inline std::string read_all(int fd) {
  std::string got;
  char buf[1 << 16];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) got.append(buf, size_t(n));
  return got;
}

// An HttpApi on a free loopback port for model "m" (vocab 100, context 64), started, with the queue
// and metrics the test's scheduler side uses.
struct LoopbackServer {
  explicit LoopbackServer(int slots) : metrics(slots), http(options(), model(), queue, metrics, draining) { http.start(); }
  static HttpOptions options() {
    HttpOptions o;
    o.port = 0;
    return o;
  }
  static const ModelInfo& model() {
    static const ModelInfo info = [] {
      ModelInfo i;
      i.id = "m";
      i.vocab = 100;
      i.context = 64;
      return i;
    }();
    return info;
  }
  JobQueue queue;
  Metrics metrics;
  std::atomic<bool> draining{false};
  HttpApi http;
};

// The next job the HTTP side queues, waiting at most 10 s (null if none came).
inline std::shared_ptr<Job> next_job(JobQueue& queue) {
  std::shared_ptr<Job> job;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       !job && std::chrono::steady_clock::now() < until;)
    if (!(job = queue.pop())) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return job;
}

}  // namespace tori::serve::test
