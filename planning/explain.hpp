#pragma once
// Where a step's time goes (`tori plan --explain`): a StepTime (step_time.hpp) split into its parts
// — compute, weight loading, KV-cache loading, the fitted CPU overheads, and each collective kind
// on each axis (plus the ranks meeting and waiting for the slowest) — each with its time alone and
// its exposed share: the part of the step time it accounts for on the critical path (step_time.cpp
// StepTime::exposed_*; per step, summed over a chunked prefill's steps). Exposed shares sum to the
// step time (overlap_s, or serial_s when not overlapped):
//   chip    = max(compute, weights + KV) + overhead: compute exposed when it is the larger, else the
//             weight and KV loads; overhead always
//   serial  = chip + communication: every collective part exposed
//   overlap = max(chip, communication - wait) + wait: the chip's parts exposed when the chip is
//             the longer, else the collectives'; waiting for the slowest rank always
#include <string>
#include <vector>

#include "planning/step_time.hpp"

namespace tori::planning {

struct TimePart {
  std::string name;  // "compute", "weights", "kv_cache", "overhead", "all_gather x", "sync", "wait"
  double alone_s = 0;    // its own time
  double exposed_s = 0;  // its share of the step time
};

// The parts with a nonzero time, in a fixed order (chip parts, then collectives by kind and axis).
std::vector<TimePart> time_parts(const StepTime& t, bool overlapped = true);

}  // namespace tori::planning
