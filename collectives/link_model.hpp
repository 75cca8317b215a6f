#pragma once
// LinkModel: optional emulation of the torus's interconnect (ICI) on a shared-memory box
// (`--link-gbps G --link-latency-us U`). On one machine MPI moves data at memory speed, so
// communication looks nearly free next to compute; a real TPU v4 link is ~1000x slower relative to
// its FLOPs than memcpy is to a CPU core. With a link model, every collective takes at least what
// its ring steps would take on a link of G GB/s per direction with U µs per message:
//     t = Σ_axes ( steps_a · U + bytes_a / (lanes · G) )
// where bytes_a and steps_a come from the traffic counters (traffic.hpp: exactly what a ring
// sends on axis a) and lanes = 2 for the bidirectional ring (both directions carry half).
//
// LinkClock: each rank's outgoing links, one per axis and direction, each busy until some time. A
// collective reserves the links it uses (LinkUse) from max(now, when they are free) for t seconds,
// so transfers on the same link queue behind each other (at most G GB/s per link, however many
// are in flight) and transfers on different links (the two directions of a bidirectional ring,
// different axes) run side by side, as on a torus. The collective itself runs as usual at memory
// speed and its result is held back until the reserved end (collectives.hpp): the waiting thread
// sleeps, so a progress-thread collective overlaps compute as a DMA engine would, and the progress
// thread stays free for the next transfer.
//
// Choosing G: see `tori bench overlap --balance` and docs/overlap.md ("Choosing the link speed"): TPU v4's 275 TFLOPS
// against 270 GB/s of ICI is ~1000 FLOP per byte of link; a rank computing P GFLOPS here has the
// same balance with G ≈ P / 1000 GB/s. Off (G = 0, U = 0) by default.
#include <array>
#include <chrono>
#include <mutex>
#include <utility>

#include "collectives/traffic.hpp"

namespace tori::collectives {

struct LinkModel {
  double gbps = 0;        // per axis direction; 0 = off
  double latency_us = 0;  // per message (ring step)
  bool enabled() const { return gbps > 0 || latency_us > 0; }
  // Seconds the traffic `t` (per axis) takes on the modelled links.
  double seconds(const AxisTraffic& t, int lanes) const;
};

// Which direction of each axis's link a collective uses: rings and MPI-native collectives send
// to the +1 neighbour (forward), ppermute by a negative shift to the -1 neighbour (backward), the
// bidirectional ring both (each carrying half, lanes = 2).
enum class LinkUse { forward, backward, both };

class LinkClock {
 public:
  using Clock = std::chrono::steady_clock;
  struct Span {
    Clock::time_point start, end;
  };
  // Reserves the links of every axis `t` touches in direction(s) `use`, from the later of `ready`
  // and the moment all of them are free, for model.seconds(t, lanes). Returns the reserved span
  // (start == end == ready when t is empty).
  Span reserve(const LinkModel& model, const AxisTraffic& t, LinkUse use, Clock::time_point ready);
  void reset();

 private:
  std::mutex mutex_;
  std::array<std::array<Clock::time_point, 2>, 3> free_at_{};  // [axis][forward, backward]
};

}  // namespace tori::collectives
