#include "collectives/traffic.hpp"

#include <string>

#include "kernels/error.hpp"

namespace tori::collectives {

std::string_view collective_name(Collective c) {
  switch (c) {
    case Collective::all_gather: return "all_gather";
    case Collective::reduce_scatter: return "reduce_scatter";
    case Collective::all_reduce: return "all_reduce";
    case Collective::all_to_all: return "all_to_all";
    case Collective::ppermute: return "ppermute";
  }
  return "?";
}

Collective parse_collective(std::string_view s, std::string_view what) {
  for (Collective c : kCollectives)
    if (collective_name(c) == s) return c;
  throw InputError(std::string(what) + ": unknown collective '" + std::string(s) +
                   "' (allowed: all_gather, reduce_scatter, all_reduce, all_to_all, ppermute)");
}

void TrafficCounters::add(Collective c, Axis a, const Traffic& t) {
  auto k = static_cast<size_t>(c), i = static_cast<size_t>(a);
  bytes_[k][i].fetch_add(t.bytes, std::memory_order_relaxed);
  messages_[k][i].fetch_add(t.messages, std::memory_order_relaxed);
}

void TrafficCounters::add(Collective c, const AxisTraffic& t) {
  for (Axis a : kAxes) add(c, a, t[static_cast<size_t>(a)]);
}

Traffic TrafficCounters::get(Collective c, Axis a) const {
  auto k = static_cast<size_t>(c), i = static_cast<size_t>(a);
  return {bytes_[k][i].load(std::memory_order_relaxed), messages_[k][i].load(std::memory_order_relaxed)};
}

Traffic TrafficCounters::by_axis(Axis a) const {
  Traffic t;
  for (Collective c : kCollectives) t += get(c, a);
  return t;
}

Traffic TrafficCounters::by_collective(Collective c) const {
  Traffic t;
  for (Axis a : kAxes) t += get(c, a);
  return t;
}

Traffic TrafficCounters::total() const {
  Traffic t;
  for (Axis a : kAxes) t += by_axis(a);
  return t;
}

void TrafficCounters::reset() {
  for (auto& row : bytes_)
    for (auto& v : row) v.store(0, std::memory_order_relaxed);
  for (auto& row : messages_)
    for (auto& v : row) v.store(0, std::memory_order_relaxed);
}

}  // namespace tori::collectives
