#include "collectives/comm_timeline.hpp"

#include <algorithm>
#include <map>
#include <thread>

namespace tori::collectives {

namespace {
double seconds(CommTimeline::Clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

void CommTimeline::reset() {
  std::lock_guard lock(mutex_);
  busy_.clear();
  exposed_.clear();
  held_.clear();
  marks_.assign(1, {kOther, Clock::now()});
}

void CommTimeline::add_busy(Clock::time_point start, Clock::time_point end) {
  if (end <= start) return;
  std::lock_guard lock(mutex_);
  busy_.emplace_back(start, end);
}

void CommTimeline::add_exposed(Clock::time_point start, Clock::time_point end) {
  if (end <= start) return;
  std::lock_guard lock(mutex_);
  exposed_.emplace_back(start, end);
}

void CommTimeline::add_held(Clock::time_point start, Clock::time_point end) {
  if (end <= start) return;
  std::lock_guard lock(mutex_);
  held_.emplace_back(start, end);
}

void CommTimeline::enter(int id) {
  std::lock_guard lock(mutex_);
  marks_.emplace_back(id, Clock::now());
}

std::vector<CommTimeline::Span> CommTimeline::merged(std::vector<Span> spans) {
  std::sort(spans.begin(), spans.end());
  std::vector<Span> out;
  for (const Span& s : spans) {
    if (!out.empty() && s.first <= out.back().second)
      out.back().second = std::max(out.back().second, s.second);
    else
      out.push_back(s);
  }
  return out;
}

double CommTimeline::overlap_s(const std::vector<Span>& m, Span w) {
  double s = 0;
  for (const Span& x : m) {
    const auto a = std::max(x.first, w.first), b = std::min(x.second, w.second);
    if (b > a) s += seconds(b - a);
  }
  return s;
}

double CommTimeline::busy_s() const {
  std::lock_guard lock(mutex_);
  double s = 0;
  for (const Span& x : merged(busy_)) s += seconds(x.second - x.first);
  return s;
}

double CommTimeline::exposed_s() const {
  std::lock_guard lock(mutex_);
  double s = 0;
  for (const Span& x : merged(exposed_)) s += seconds(x.second - x.first);
  return s;
}

double CommTimeline::held_s() const {
  std::lock_guard lock(mutex_);
  double s = 0;
  for (const Span& x : merged(held_)) s += seconds(x.second - x.first);
  return s;
}

std::vector<CommTimeline::Section> CommTimeline::sections(Clock::time_point until) const {
  std::lock_guard lock(mutex_);
  const std::vector<Span> busy = merged(busy_), exposed = merged(exposed_);
  std::map<int, Section> by_id;
  for (size_t i = 0; i < marks_.size(); ++i) {
    const Span w{marks_[i].second, i + 1 < marks_.size() ? marks_[i + 1].second : until};
    if (w.second <= w.first) continue;
    Section& s = by_id[marks_[i].first];
    s.id = marks_[i].first;
    s.wall_s += seconds(w.second - w.first);
    s.comm_s += overlap_s(busy, w);
    s.exposed_s += overlap_s(exposed, w);
  }
  std::vector<Section> out;
  for (auto& [id, s] : by_id) out.push_back(s);
  return out;
}

void sleep_held_until(CommTimeline* timeline, CommTimeline::Clock::time_point until) {
  const auto start = CommTimeline::Clock::now();
  if (until <= start) return;
  std::this_thread::sleep_until(until);
  if (timeline) timeline->add_held(start, CommTimeline::Clock::now());
}

}  // namespace tori::collectives
