#pragma once
// Shared pieces of every benchmark: robust statistics over repeats and the one-JSON-object-per-line
// output format. Every record is self-describing (what, shape, dtype, ranks, threads, figure, unit,
// and the machine's measured limit beside it).
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <vector>

namespace tori::bench {

double median(std::vector<double> v);

// Runs fn `warmup` times untimed, then `repeats` times timed; returns each timed duration in s.
std::vector<double> time_repeats(const std::function<void()>& fn, int warmup, int repeats);

// Seconds since an arbitrary epoch, monotonic.
inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Prints one record as a single JSON line on stdout and flushes.
void emit(const nlohmann::json& record);

}  // namespace tori::bench
