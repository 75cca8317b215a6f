#include "collectives/link_model.hpp"

#include <algorithm>

namespace tori::collectives {

double LinkModel::seconds(const AxisTraffic& t, int lanes) const {
  double s = 0;
  for (const Traffic& a : t) {
    if (a.messages == 0 && a.bytes == 0) continue;
    const double steps = double(a.messages) / double(lanes);
    s += steps * latency_us * 1e-6;
    if (gbps > 0) s += double(a.bytes) / (double(lanes) * gbps * 1e9);
  }
  return s;
}

LinkClock::Span LinkClock::reserve(const LinkModel& model, const AxisTraffic& t, LinkUse use,
                                   Clock::time_point ready) {
  const int lanes = use == LinkUse::both ? 2 : 1;
  const auto dt = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(model.seconds(t, lanes)));
  auto used = [&](size_t axis, size_t dir) {
    const bool touched = t[axis].bytes > 0 || t[axis].messages > 0;
    return touched && (use == LinkUse::both || (dir == 0) == (use == LinkUse::forward));
  };
  std::lock_guard lock(mutex_);
  Span s{ready, ready};
  for (size_t a = 0; a < 3; ++a)
    for (size_t d = 0; d < 2; ++d)
      if (used(a, d)) s.start = std::max(s.start, free_at_[a][d]);
  s.end = s.start + dt;
  for (size_t a = 0; a < 3; ++a)
    for (size_t d = 0; d < 2; ++d)
      if (used(a, d)) free_at_[a][d] = s.end;
  if (dt == Clock::duration::zero()) s.start = s.end = ready;
  return s;
}

void LinkClock::reset() {
  std::lock_guard lock(mutex_);
  for (auto& a : free_at_) a.fill(Clock::time_point{});
}

}  // namespace tori::collectives
