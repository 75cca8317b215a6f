#pragma once
// The model loop of `tori serve`, on every rank's main thread. Rank 0 (Scheduler) owns the slots —
// the B sequences of the ShardedModel's batch, whose KV caches live in the decode placement
// (batch-sharded attention spreads them over the batch shards) — and the queue: each iteration it
// puts queued jobs into free slots, runs one prefill step for the slots still reading their
// prompt (at most `prefill_chunk` tokens each, so a long prompt delays the others' decode by one
// chunk at a time), then one decode step for the slots generating. Each step is broadcast first
// (step.hpp); the other ranks (follow) run exactly the steps they receive. Rank 0 samples each
// slot's token from the logits with that request's settings (sequence 0, step = its token index:
// the same draws as `tori generate` of that prompt alone), checks stop tokens, stop strings and
// max_tokens, and hands text to the job. A finished or cancelled job frees its slot at once; the
// next job in it empties the slot's cache in the step that starts it.
#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "models/text_stream.hpp"
#include "runtime/sharded_model.hpp"
#include "serve/job.hpp"
#include "serve/metrics.hpp"
#include "serve/step.hpp"

namespace tori::serve {

struct SchedulerOptions {
  int64_t prefill_chunk = 256;  // most prompt tokens a slot prefills per step
  double drain_s = 30;          // after stop is asked: longest wait for running requests
};

class Scheduler {
 public:
  Scheduler(runtime::ShardedModel& model, StepChannel& channel, const ModelInfo& info, JobQueue& queue,
            Metrics& metrics, SchedulerOptions opt);
  // Serves until `stop` is set and the running jobs have finished (or drain_s has passed: they are
  // finished with reason "abort"), then tells the other ranks to stop. Jobs still queued then are
  // finished with "abort" too (the HTTP side refuses new ones once stop is set). If a step throws,
  // every job fails with the error (reason "error"), the queue is closed, and the error is rethrown.
  void run(const std::atomic<bool>& stop);

 private:
  struct Slot {
    std::shared_ptr<Job> job;
    size_t prefilled = 0;  // prompt tokens in the cache
    int64_t generated = 0;
    int32_t last = runtime::ShardedModel::kIdle;  // the token the next decode step reads
    std::optional<models::TextStream> text;
    bool decoding() const { return job && prefilled == job->req.prompt.size(); }
  };
  void serve(const std::atomic<bool>& stop);  // run's loop
  std::vector<int32_t> admit();        // fills free slots from the queue; returns the slots to empty
  void prefill(std::vector<int32_t> resets);
  void decode();
  void take(int64_t s, const float* logits);  // samples slot s's next token, hands it out
  void end(int64_t s, const std::string& reason);
  int64_t busy() const;

  runtime::ShardedModel& model_;
  StepChannel& channel_;
  const ModelInfo& info_;
  JobQueue& queue_;
  Metrics& metrics_;
  SchedulerOptions opt_;
  std::vector<Slot> slots_;
};

// Ranks other than 0: runs the steps rank 0 broadcasts until the stop step.
void follow(runtime::ShardedModel& model, StepChannel& channel);

}  // namespace tori::serve
