#pragma once
// CommTimeline: where one rank's time went, as spans on the steady clock (since reset()):
//   busy     spans during which a collective was under way (running on any thread, or held by the
//            link model until its modelled transfer ends); overlapping spans count once, so two
//            directions of a ring or a prefetch beside a loop's ppermute are not double-counted
//   exposed  spans during which the computing thread was blocked on collectives: in blocking
//            calls and in Pending::wait()
//   held     the part of exposed spent asleep on the link model's hold (link_model.hpp): the data
//            was there, the modelled link was not done. exposed − held is waiting for the data
//            itself (a peer not there yet: on a host with more threads than cores, mostly a peer
//            that was not running)
//   sections the computing thread's phases of a step: enter(id) starts section id (a layer index,
//            or kOther for the embedding, norms between layers, final norm and logits) and ends
//            the one before.
// Per section: wall = its duration, comm = busy time inside it, exposed = exposed time inside it,
// compute = wall - exposed (the computing thread was not waiting on communication), hidden
// communication = comm - exposed. Time-based: a prefetch started in layer i counts in the
// sections it ran in.
#include <chrono>
#include <mutex>
#include <vector>

namespace tori::collectives {

class CommTimeline {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kOther = -1;

  struct Section {
    int id = kOther;
    double wall_s = 0, comm_s = 0, exposed_s = 0;
    double compute_s() const { return wall_s - exposed_s; }
  };

  CommTimeline() { reset(); }
  // Forgets every span; the computing thread is in section kOther from now.
  void reset();
  void add_busy(Clock::time_point start, Clock::time_point end);
  void add_exposed(Clock::time_point start, Clock::time_point end);
  void add_held(Clock::time_point start, Clock::time_point end);
  void enter(int id);

  double busy_s() const;     // union of the busy spans
  double exposed_s() const;  // union of the exposed spans
  double held_s() const;     // union of the held spans
  // Sections from reset() to `until`, summed per id (a layer visited twice adds up), ascending id.
  std::vector<Section> sections(Clock::time_point until = Clock::now()) const;

 private:
  using Span = std::pair<Clock::time_point, Clock::time_point>;
  static std::vector<Span> merged(std::vector<Span> spans);
  static double overlap_s(const std::vector<Span>& merged, Span window);
  mutable std::mutex mutex_;
  std::vector<Span> busy_, exposed_, held_;
  std::vector<std::pair<int, Clock::time_point>> marks_;  // (section id, entered at)
};

// Marks section `id` of `timeline` for its lifetime: entered when made, kOther again when gone.
class TimelineSection {
 public:
  TimelineSection(CommTimeline& timeline, int id) : timeline_(timeline) { timeline_.enter(id); }
  ~TimelineSection() { timeline_.enter(CommTimeline::kOther); }
  TimelineSection(const TimelineSection&) = delete;
  TimelineSection& operator=(const TimelineSection&) = delete;

 private:
  CommTimeline& timeline_;
};

// Sleeps until `until` (a link model's hold), recorded as held in `timeline` when given.
void sleep_held_until(CommTimeline* timeline, CommTimeline::Clock::time_point until);

}  // namespace tori::collectives
