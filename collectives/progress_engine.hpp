#pragma once
// ProgressEngine and Pending: how a collective runs while the caller computes.
//
// Open MPI 4.1 (Debian) has no asynchronous progress: a nonblocking MPI operation advances only
// while some thread is inside an MPI call. So every Collectives object owns one progress thread
// (MPI is initialised with MPI_THREAD_MULTIPLE) that executes queued collectives one at a time, in
// the order they were started; while it runs one it is inside MPI (Waitall / Wait), so that
// collective makes progress whatever the caller is doing. start_*() queues a job and returns a
// Pending at once; the caller computes, then wait()s (or polls ready()). A blocking collective
// runs on the caller's own thread when nothing is queued or running (no hand-off latency), and
// otherwise queues behind the in-flight ones and waits, so collectives always execute in start
// order on every rank: this is what keeps the ranks' messages matched. Call a Collectives object
// from one thread.
//
// Later layers build on the same queue: a looped collective einsum starts ppermute k+1 before it
// multiplies chunk k. An ICI link model (link_model.hpp) delays a result without occupying the
// thread: the job records when its modelled transfer ends (hold_until) and wait() sleeps until
// then, so the progress thread goes straight on to the next queued collective.
//
// Without MPI_THREAD_MULTIPLE the engine has no thread: start_*() runs the collective to the end
// before returning (correct, no overlap).
//
// Failure: when the owner is destroyed while an exception unwinds (this rank failed, the others
// may not have), queued jobs are dropped rather than run, and a job stuck in MPI is abandoned
// after a grace period, so the rank reaches the ExitGuard (which aborts the job) instead of
// hanging in the destructor.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "collectives/comm_timeline.hpp"
#include "kernels/tensor.hpp"

namespace tori::collectives {

class Pending {
 public:
  // An operation the waiting thread completes itself, with no progress thread (shm_ring.hpp):
  // poll() says whether its data is there (cheap, never blocks); block() returns once it is;
  // finish() takes it, once, after that.
  struct Direct {
    virtual ~Direct() = default;
    virtual bool poll() = 0;
    virtual void block() = 0;
    virtual kernels::Tensor finish() = 0;
  };

  Pending() = default;
  // An already finished operation (a collective over a one-rank group).
  static Pending ready_value(kernels::Tensor t);
  static Pending direct(std::unique_ptr<Direct> op);
  bool valid() const { return future_.valid() || direct_ != nullptr; }
  // Records the time wait() blocks as exposed communication in `timeline`.
  void count_wait_in(CommTimeline* timeline) { timeline_ = timeline; }
  // The result is released no earlier than *t (written by the job before it completes).
  void hold_until(std::shared_ptr<const std::chrono::steady_clock::time_point> t) { hold_ = std::move(t); }
  // True once the result is available (and released); never blocks.
  bool ready() const;
  // Blocks until done and returns the result, or rethrows the collective's error. Once only.
  kernels::Tensor wait();

 private:
  friend class ProgressEngine;
  explicit Pending(std::future<kernels::Tensor> f) : future_(std::move(f)) {}
  std::future<kernels::Tensor> future_;
  std::unique_ptr<Direct> direct_;
  CommTimeline* timeline_ = nullptr;
  std::shared_ptr<const std::chrono::steady_clock::time_point> hold_;
};

class ProgressEngine {
 public:
  // How long an abandoned engine waits for a collective already inside MPI (peers that did not
  // fail finish it within milliseconds; a peer that is gone never will).
  static constexpr std::chrono::milliseconds kAbandonGrace{1000};

  using Job = std::function<kernels::Tensor()>;
  explicit ProgressEngine(bool use_thread);
  // Runs whatever is still queued (other ranks expect it), then stops the thread.
  ~ProgressEngine();
  // Stops the thread. abandon = false: as the destructor. abandon = true: drops queued jobs and
  // waits at most kAbandonGrace for the running one; returns false if it is still running (the
  // thread is then detached and this object must be leaked, as must anything the job uses).
  bool shutdown(bool abandon);
  ProgressEngine(const ProgressEngine&) = delete;
  ProgressEngine& operator=(const ProgressEngine&) = delete;

  bool threaded() const { return thread_.joinable(); }
  Pending submit(Job job);
  kernels::Tensor run(Job job);

 private:
  void loop();
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<kernels::Tensor()>> queue_;
  bool busy_ = false;  // a job is executing (on the thread or inline on the caller)
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace tori::collectives
