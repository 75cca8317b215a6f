#include "serve/scheduler.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "runtime/sampling.hpp"

namespace tori::serve {

using runtime::ShardedModel;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Runs step s on this rank's model (every rank, after the broadcast).
std::vector<kernels::Tensor> run_step(ShardedModel& m, const Step& s) {
  for (int32_t b : s.resets) m.reset(b);
  if (s.kind == Step::Kind::prefill) return m.prefill(s.tokens);
  models::TokenIds t;
  for (const auto& one : s.tokens) t.push_back(one.at(0));
  return {m.decode(t)};
}

}  // namespace

Scheduler::Scheduler(ShardedModel& model, StepChannel& channel, const ModelInfo& info, JobQueue& queue,
                     Metrics& metrics, SchedulerOptions opt)
    : model_(model), channel_(channel), info_(info), queue_(queue), metrics_(metrics), opt_(opt),
      slots_(size_t(model.batch())) {
  // A plan that hands prefill's cache to another placement cannot continue a prompt: whole prompts.
  if (!model.prefill_continues()) {
    spdlog::info("serve: plan {} hands prefill's KV cache to decode's placement: prompts prefill whole, not in "
                 "chunks of {}", model.plan().str(), opt_.prefill_chunk);
    opt_.prefill_chunk = info.context;
  }
}

int64_t Scheduler::busy() const {
  return std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.job != nullptr; });
}

std::vector<int32_t> Scheduler::admit() {
  std::vector<int32_t> resets;
  for (size_t s = 0; s < slots_.size(); ++s) {
    if (slots_[s].job) continue;
    std::shared_ptr<Job> j;
    while ((j = queue_.pop()) && j->cancelled) j->finish("abort");
    if (!j) break;
    Slot& slot = slots_[s];
    slot = Slot{};
    slot.job = std::move(j);
    slot.text.emplace(*info_.tokenizer, slot.job->req.stop, slot.job->req.stop_tokens);
    if (model_.length(int64_t(s)) > 0) resets.push_back(int32_t(s));
  }
  return resets;
}

void Scheduler::end(int64_t s, const std::string& reason) {
  Slot& slot = slots_[size_t(s)];
  slot.job->append(slot.text->take(true), slot.generated);
  slot.job->finish(reason);
  slot.job.reset();
}

void Scheduler::take(int64_t s, const float* logits) {
  Slot& slot = slots_[size_t(s)];
  const CompletionRequest& r = slot.job->req;
  const int32_t t = runtime::sample_token(logits, info_.vocab, r.sampling, 0, slot.generated);
  ++slot.generated;
  metrics_.tokens(0, 1);
  slot.last = t;
  const bool stop_token = std::find(r.stop_tokens.begin(), r.stop_tokens.end(), t) != r.stop_tokens.end();
  const bool stop_string = slot.text->push(t);
  if (stop_token || stop_string)
    end(s, "stop");
  else if (slot.generated >= r.max_tokens)
    end(s, "length");
  else
    slot.job->append(slot.text->take(false), slot.generated);
}

void Scheduler::prefill(std::vector<int32_t> resets) {
  Step step{Step::Kind::prefill, std::move(resets), std::vector<models::TokenIds>(slots_.size())};
  int64_t pieces = 0, tokens = 0;
  for (size_t s = 0; s < slots_.size(); ++s) {
    Slot& slot = slots_[s];
    if (!slot.job || slot.decoding()) continue;
    const auto& p = slot.job->req.prompt;
    const size_t n = std::min<size_t>(p.size() - slot.prefilled, size_t(opt_.prefill_chunk));
    step.tokens[s].assign(p.begin() + long(slot.prefilled), p.begin() + long(slot.prefilled + n));
    ++pieces, tokens += int64_t(n);
  }
  if (pieces == 0) return;  // (a slot to empty always has a new prompt to prefill)
  const auto t0 = Clock::now();
  channel_.send(step);
  auto logits = run_step(model_, step);
  metrics_.prefill_step(seconds_since(t0), pieces);
  metrics_.tokens(tokens, 0);
  for (size_t s = 0; s < slots_.size(); ++s) {
    if (step.tokens[s].empty()) continue;
    Slot& slot = slots_[s];
    slot.prefilled += step.tokens[s].size();
    if (slot.decoding()) take(int64_t(s), logits[s].data<float>());
  }
}

void Scheduler::decode() {
  Step step{Step::Kind::decode, {}, std::vector<models::TokenIds>(slots_.size(), {ShardedModel::kIdle})};
  int64_t active = 0;
  for (size_t s = 0; s < slots_.size(); ++s)
    if (slots_[s].job && slots_[s].decoding() && slots_[s].generated > 0) step.tokens[s] = {slots_[s].last}, ++active;
  if (active == 0) return;
  const auto t0 = Clock::now();
  channel_.send(step);
  kernels::Tensor lg = run_step(model_, step)[0];
  metrics_.decode_step(seconds_since(t0), active);
  for (size_t s = 0; s < slots_.size(); ++s)
    if (step.tokens[s][0] != ShardedModel::kIdle && slots_[s].job) take(int64_t(s), lg.data<float>() + s * info_.vocab);
}

void Scheduler::run(const std::atomic<bool>& stop) {
  try {
    serve(stop);
  } catch (const std::exception& e) {
    // The model failed (a rank lost, a collective timed out, ...): every job fails with the error,
    // so its HTTP thread answers and returns, and the server can stop as the error leaves `serve`.
    const std::string message = std::string("the model failed: ") + e.what();
    for (Slot& slot : slots_)
      if (slot.job) slot.job->fail(message), slot.job.reset();
    queue_.close(message);
    throw;
  }
}

void Scheduler::serve(const std::atomic<bool>& stop) {
  std::optional<Clock::time_point> drain_start;
  while (true) {
    for (size_t s = 0; s < slots_.size(); ++s)
      if (slots_[s].job && slots_[s].job->cancelled) end(int64_t(s), "abort");
    if (stop && !drain_start) drain_start = Clock::now();
    if (drain_start) {
      const bool late = seconds_since(*drain_start) > opt_.drain_s;
      for (auto j = queue_.pop(); j; j = queue_.pop()) j->finish("abort");
      for (size_t s = 0; s < slots_.size(); ++s)
        if (slots_[s].job && late) end(int64_t(s), "abort");
      if (busy() == 0) break;
    }
    std::vector<int32_t> resets = admit();
    metrics_.state(int64_t(queue_.size()), busy());
    if (busy() == 0) {
      queue_.wait(std::chrono::milliseconds(100));
      continue;
    }
    prefill(std::move(resets));
    decode();
    metrics_.state(int64_t(queue_.size()), busy());
  }
  channel_.send(Step{});
  spdlog::info("serve: drained; stopping every rank");
}

void follow(ShardedModel& model, StepChannel& channel) {
  for (Step s = channel.receive(); s.kind != Step::Kind::stop; s = channel.receive()) run_step(model, s);
}

}  // namespace tori::serve
