#include "serve/metrics.hpp"

#include <sstream>

namespace tori::serve {

void Metrics::request(const std::string& endpoint, int status) {
  std::lock_guard lock(m_);
  ++requests_[{endpoint, status}];
}

void Metrics::prefill_step(double seconds, int64_t slots) {
  std::lock_guard lock(m_);
  prefill_s_ += seconds, ++prefill_steps_, prefill_slots_ += slots;
}

void Metrics::decode_step(double seconds, int64_t slots) {
  std::lock_guard lock(m_);
  decode_s_ += seconds, ++decode_steps_, decode_slots_ += slots;
  if (slots > max_decode_batch_) max_decode_batch_ = slots;
}

std::string Metrics::prometheus() const {
  std::lock_guard lock(m_);
  std::ostringstream o;
  o.precision(12);
  auto metric = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  metric("tori_requests_total", "counter", "HTTP requests answered, by endpoint and status");
  for (const auto& [key, n] : requests_)
    o << "tori_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << '\n';
  auto one = [&](const char* name, const char* type, const char* help, double value) {
    metric(name, type, help);
    o << name << ' ' << value << '\n';
  };
  one("tori_prompt_tokens_total", "counter", "prompt tokens prefilled", double(prompt_));
  one("tori_generated_tokens_total", "counter", "tokens generated", double(generated_));
  one("tori_queue_depth", "gauge", "requests waiting for a slot", double(queued_));
  one("tori_kv_slots_in_use", "gauge", "KV-cache slots holding a request", double(in_use_));
  one("tori_kv_slots", "gauge", "KV-cache slots (--max-batch)", double(slots_));
  one("tori_decode_batch_max", "gauge", "most sequences one decode step has computed", double(max_decode_batch_));
  one("tori_decode_batch_occupancy", "gauge", "mean sequences per decode step / slots",
      decode_steps_ ? double(decode_slots_) / double(decode_steps_ * slots_) : 0.0);
  metric("tori_step_seconds", "summary", "wall time of the model's forward steps on rank 0, by phase");
  o << "tori_step_seconds_sum{phase=\"prefill\"} " << prefill_s_ << "\ntori_step_seconds_count{phase=\"prefill\"} "
    << prefill_steps_ << "\ntori_step_seconds_sum{phase=\"decode\"} " << decode_s_
    << "\ntori_step_seconds_count{phase=\"decode\"} " << decode_steps_ << '\n';
  metric("tori_step_sequences_total", "counter", "sequences computed over all steps, by phase");
  o << "tori_step_sequences_total{phase=\"prefill\"} " << prefill_slots_ << "\ntori_step_sequences_total{phase=\"decode\"} "
    << decode_slots_ << '\n';
  return o.str();
}

}  // namespace tori::serve
