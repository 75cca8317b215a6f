#include "serve/step.hpp"

#include <chrono>
#include <thread>

#include "kernels/error.hpp"

namespace tori::serve {

std::vector<int32_t> encode(const Step& s) {
  std::vector<int32_t> w{int32_t(s.kind), int32_t(s.resets.size())};
  w.insert(w.end(), s.resets.begin(), s.resets.end());
  for (const auto& t : s.tokens) {
    w.push_back(int32_t(t.size()));
    w.insert(w.end(), t.begin(), t.end());
  }
  return w;
}

Step decode_step(const std::vector<int32_t>& w) {
  size_t i = 0;
  auto next = [&] {
    if (i >= w.size()) throw Error("step protocol: truncated step of " + std::to_string(w.size()) + " words");
    return w[i++];
  };
  Step s;
  const int32_t kind = next();
  if (kind < 1 || kind > 3) throw Error("step protocol: unknown step kind " + std::to_string(kind));
  s.kind = Step::Kind(kind);
  for (int32_t n = next(); n > 0; --n) s.resets.push_back(next());
  while (i < w.size()) {
    const int32_t n = next();
    if (n < 0) throw Error("step protocol: negative piece length");
    models::TokenIds t;
    for (int32_t k = 0; k < n; ++k) t.push_back(next());
    s.tokens.push_back(std::move(t));
  }
  return s;
}

StepChannel::StepChannel() {
  MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
  MPI_Comm_rank(comm_, &rank_);
}

StepChannel::~StepChannel() {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void StepChannel::send(const Step& s) {
  std::vector<int32_t> w = encode(s);
  int32_t n = int32_t(w.size());
  MPI_Request req;  // non-blocking like receive()'s: blocking and non-blocking collectives do not match
  MPI_Ibcast(&n, 1, MPI_INT32_T, 0, comm_, &req);
  MPI_Wait(&req, MPI_STATUS_IGNORE);
  MPI_Bcast(w.data(), n, MPI_INT32_T, 0, comm_);
}

Step StepChannel::receive() {
  // The length may be a long time coming (no requests): poll, sleeping 1 ms between polls, rather
  // than MPI_Bcast's busy wait on a core the other ranks' compute shares.
  int32_t n = 0;
  MPI_Request req;
  MPI_Ibcast(&n, 1, MPI_INT32_T, 0, comm_, &req);
  for (int done = 0;;) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) break;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  std::vector<int32_t> w(static_cast<size_t>(n));
  MPI_Bcast(w.data(), n, MPI_INT32_T, 0, comm_);
  return decode_step(w);
}

}  // namespace tori::serve
