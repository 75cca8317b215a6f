#pragma once
// Metrics: what GET /metrics reports, in Prometheus' text format. Updated by the HTTP threads
// (requests by status) and the scheduler (tokens, steps, occupancy); read by any thread.
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace tori::serve {

class Metrics {
 public:
  explicit Metrics(int64_t slots) : slots_(slots) {}
  void request(const std::string& endpoint, int status);
  void tokens(int64_t prompt, int64_t generated) { prompt_ += prompt, generated_ += generated; }
  // One step: its wall time, and how many slots it computed for (prefill: slots with a piece).
  void prefill_step(double seconds, int64_t slots);
  void decode_step(double seconds, int64_t slots);
  void state(int64_t queued, int64_t slots_in_use) { queued_ = queued, in_use_ = slots_in_use; }
  int64_t max_decode_batch() const { return max_decode_batch_; }
  std::string prometheus() const;

 private:
  const int64_t slots_;
  mutable std::mutex m_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::atomic<int64_t> prompt_{0}, generated_{0}, queued_{0}, in_use_{0}, max_decode_batch_{0};
  double prefill_s_ = 0, decode_s_ = 0;
  int64_t prefill_steps_ = 0, decode_steps_ = 0, prefill_slots_ = 0, decode_slots_ = 0;
};

}  // namespace tori::serve
