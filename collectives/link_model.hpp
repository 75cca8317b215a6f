#pragma once
// LinkModel: optional emulation of the torus's interconnect (ICI) on a shared-memory box
// (`--link-gbps G --link-latency-us U`). On one machine MPI moves data at memory speed, so
// communication looks nearly free next to compute; a real TPU v4 link is ~1000x slower relative to
// its FLOPs than memcpy is to a CPU core. With a link model, every collective takes at least what
// its ring steps would take on a link of G GB/s per direction with U µs per message:
//     t >= Σ_axes ( steps_a · U + bytes_a / (lanes · G) )
// where bytes_a and steps_a come from the traffic counters (traffic.hpp: exactly what a ring
// sends on axis a) and lanes = 2 for the bidirectional ring (both directions carry half). The
// collective runs as usual and its completion is then held back (the thread sleeps: no CPU is
// burned, so a progress-thread collective really overlaps compute, as a DMA engine would).
//
// Choosing G to mimic TPU v4 on this CPU: TPU v4 has 275 TFLOPS and 270 GB/s of interconnect per
// chip, a FLOP:byte ratio of ~1000. A rank here computes at P GFLOPS (`tori bench kernels`: the
// f32 peak per core times threads per rank), so the same ratio needs G ≈ P / 1000 GB/s spread over
// the torus links — e.g. P = 100 GFLOPS -> G ≈ 0.1 GB/s per axis direction for TPU-like
// compute:communication balance. Off (G = 0) by default.
#include <array>

#include "collectives/traffic.hpp"

namespace tori::collectives {

struct LinkModel {
  double gbps = 0;        // per axis direction; 0 = off
  double latency_us = 0;  // per message (ring step)
  bool enabled() const { return gbps > 0 || latency_us > 0; }
  // Seconds the traffic `t` (per axis) takes on the modelled links.
  double seconds(const AxisTraffic& t, int lanes) const;
};

}  // namespace tori::collectives
