#pragma once
// Job: one accepted request between the HTTP thread that waits for it and the scheduler (rank 0's
// main thread) that runs it. The scheduler appends final text (models/text_stream.hpp) and marks
// it finished; the HTTP side takes text as it comes (streaming) or once finished, and sets
// `cancelled` when its client goes away (a failed streaming write, or for a response not streamed
// the connection found closed while waiting: client_socket.hpp), which frees the slot at the
// scheduler's next step (or drops the job from the queue).
// JobQueue: the jobs not yet in a slot, first come first served. Closed when the scheduler fails:
// the jobs in it, and any pushed after, fail at once, so no HTTP thread waits for a job that no
// scheduler will run (and the server can stop).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "serve/request.hpp"

namespace tori::serve {

using Clock = std::chrono::steady_clock;

struct Job {
  explicit Job(CompletionRequest r) : req(std::move(r)), arrived(Clock::now()) {}
  const CompletionRequest req;
  const Clock::time_point arrived;
  std::atomic<bool> cancelled{false};

  // Scheduler side.
  void append(const std::string& text, int64_t tokens) {
    {
      std::lock_guard lock(m_);
      text_ += text;
      tokens_ = tokens;
    }
    cv_.notify_all();
  }
  void finish(std::string reason) {
    {
      std::lock_guard lock(m_);
      reason_ = std::move(reason);
      finished_ = true;
    }
    cv_.notify_all();
  }
  // Finished because the model failed (reason "error"): the HTTP side answers with `message`.
  void fail(std::string message) {
    {
      std::lock_guard lock(m_);
      error_ = std::move(message);
    }
    finish("error");
  }

  // HTTP side: waits until there is text not taken yet or the job has finished; returns the new
  // text. `finished` / `reason` / `tokens`: the state when it returned.
  struct Update {
    std::string text;
    bool finished = false;
    std::string reason;
    int64_t tokens = 0;
    std::string error;  // reason "error": what failed
  };
  Update wait_update() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return ready(); });
    return take();
  }
  // The same, waiting at most `timeout`: nothing when there is no new text and it is not finished.
  std::optional<Update> wait_update_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_);
    if (!cv_.wait_for(lock, timeout, [&] { return ready(); })) return std::nullopt;
    return take();
  }

 private:
  bool ready() const { return finished_ || taken_ < text_.size(); }
  Update take() {  // under m_
    Update u{text_.substr(taken_), finished_, reason_, tokens_, error_};
    taken_ = text_.size();
    return u;
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::string text_, reason_, error_;
  size_t taken_ = 0;
  int64_t tokens_ = 0;
  bool finished_ = false;
};

class JobQueue {
 public:
  void push(std::shared_ptr<Job> j) {
    {
      std::lock_guard lock(m_);
      if (!closed_) {
        q_.push_back(std::move(j));
        j = nullptr;
      }
    }
    if (j) j->fail(error_);  // (error_ is set once, before closed_)
    cv_.notify_all();
  }
  void close(const std::string& error) {
    std::deque<std::shared_ptr<Job>> left;
    {
      std::lock_guard lock(m_);
      if (closed_) return;
      error_ = error;
      closed_ = true;
      left.swap(q_);
    }
    for (auto& j : left) j->fail(error);
  }
  std::shared_ptr<Job> pop() {  // null when empty
    std::lock_guard lock(m_);
    if (q_.empty()) return nullptr;
    auto j = std::move(q_.front());
    q_.pop_front();
    return j;
  }
  size_t size() {
    std::lock_guard lock(m_);
    return q_.size();
  }
  // Waits until a job is queued, wake() is called, or `timeout` passes.
  void wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_);
    cv_.wait_for(lock, timeout, [&] { return !q_.empty() || woken_; });
    woken_ = false;
  }
  void wake() {
    {
      std::lock_guard lock(m_);
      woken_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> q_;
  bool woken_ = false;
  bool closed_ = false;
  std::string error_;
};

}  // namespace tori::serve
