#include "collectives/progress_engine.hpp"

#include <chrono>
#include <utility>

#include "collectives/request_wait.hpp"

namespace tori::collectives {

Pending Pending::ready_value(kernels::Tensor t) {
  std::promise<kernels::Tensor> p;
  p.set_value(std::move(t));
  return Pending(p.get_future());
}

Pending Pending::direct(std::unique_ptr<Direct> op) {
  Pending p;
  p.direct_ = std::move(op);
  return p;
}

bool Pending::ready() const {
  const bool done = direct_ ? direct_->poll()
                            : future_.valid() && future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  return done && (!hold_ || std::chrono::steady_clock::now() >= *hold_);
}

kernels::Tensor Pending::wait() {
  if (!valid()) throw Error("Pending::wait() on an empty or already waited handle");
  const auto t0 = std::chrono::steady_clock::now();
  kernels::Tensor out;
  if (direct_) {
    if (!direct_->poll()) {
      const UrgentWait blocked;  // the progress thread may spin meanwhile (request_wait.hpp)
      direct_->block();
    }
    out = std::exchange(direct_, nullptr)->finish();  // copied while the modelled transfer runs
  } else {
    if (future_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      const UrgentWait blocked;  // the progress thread may spin on it meanwhile (request_wait.hpp)
      future_.wait();
    }
    out = future_.get();  // rethrows the collective's error
  }
  if (hold_) sleep_held_until(timeline_, *hold_);  // the link model's modelled transfer end
  if (timeline_) timeline_->add_exposed(t0, std::chrono::steady_clock::now());
  return out;
}

ProgressEngine::ProgressEngine(bool use_thread) {
  if (use_thread) thread_ = std::thread([this] { loop(); });
}

ProgressEngine::~ProgressEngine() { shutdown(false); }

bool ProgressEngine::shutdown(bool abandon) {
  if (!thread_.joinable()) return true;
  std::unique_lock lock(mutex_);
  if (abandon) {
    queue_.clear();  // their futures report broken_promise
    if (!cv_.wait_for(lock, kAbandonGrace, [this] { return !busy_; })) {
      stop_ = true;
      lock.unlock();
      thread_.detach();
      return false;
    }
  }
  stop_ = true;
  lock.unlock();
  cv_.notify_all();
  thread_.join();
  return true;
}

Pending ProgressEngine::submit(Job job) {
  std::packaged_task<kernels::Tensor()> task(std::move(job));
  Pending pending(task.get_future());
  if (!threaded()) {
    task();  // no thread: run now; errors land in the future
    return pending;
  }
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_all();
  return pending;
}

kernels::Tensor ProgressEngine::run(Job job) {
  if (!threaded()) return job();
  {
    std::unique_lock lock(mutex_);
    if (queue_.empty() && !busy_) {
      // Idle: run on this thread, holding `busy_` so the progress thread stays out of MPI for us.
      busy_ = true;
      lock.unlock();
      struct Release {
        ProgressEngine* e;
        ~Release() {
          {
            std::lock_guard l(e->mutex_);
            e->busy_ = false;
          }
          e->cv_.notify_all();
        }
      } release{this};
      const UrgentWait blocked;
      return job();
    }
  }
  return submit(std::move(job)).wait();
}

void ProgressEngine::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [this] { return (!queue_.empty() && !busy_) || (stop_ && queue_.empty()); });
    if (queue_.empty()) return;  // stop requested and drained
    auto task = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    task();  // exceptions are stored in the task's future
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace tori::collectives
