#pragma once
// Results out and timings in, shared by every command that reports figures: the one-JSON-object-
// per-line record printer (`--json` output of generate, reference, plan, verify, presets,
// calibrate and every benchmark), and robust statistics over timed repeats (median, time_repeats,
// now_s) used by the benchmarks and by `tori calibrate`.
//
// Why here, at the floor of the layering (launch -> bench -> planning -> runtime -> models ->
// collectives -> kernels): its users sit in launch/, bench/ and planning/, and each folder may use
// only those below it, so the one copy must sit below planning. It knows no MPI, no model and no
// plan (a record is any nlohmann::json object; its keys are the caller's), like kernels/error.hpp
// it is a generic utility every layer may use. `tori generate`'s output thereby depends on no
// benchmark code.
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <vector>

namespace tori::kernels {

double median(std::vector<double> v);

// Runs fn `warmup` times untimed, then `repeats` times timed; returns each timed duration in s.
std::vector<double> time_repeats(const std::function<void()>& fn, int warmup, int repeats);

// Seconds since an arbitrary epoch, monotonic.
inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Prints one record as a single JSON line on stdout and flushes.
void emit(const nlohmann::json& record);

}  // namespace tori::kernels
