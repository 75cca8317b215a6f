#pragma once
// TrafficCounters: what one rank sent, per torus axis and per collective kind. Later layers (the
// cost model) predict these numbers and tests hold prediction and count equal, so the definition
// is exact:
//
//   bytes    = payload bytes this rank hands to point-to-point sends to a ring neighbour along the
//              axis, summed over the steps of the collective (the data on the wire: element bytes
//              of the tensor's dtype, except that reductions of bf16 travel as f32 partial sums,
//              4 bytes per element). Local copies, packing and MPI's own headers are not counted.
//   messages = block transfers to a neighbour: one per ring step and lane (a bidirectional ring
//              has two lanes, so twice the messages for the same bytes). Splitting one transfer
//              into several MPI messages (CollectivesOptions::chunk_bytes, message_bytes) is not
//              counted; a transfer of zero bytes is not made and not counted.
//
// A collective over several axes runs axis by axis (see axis_by_axis.hpp); each stage's traffic
// goes to its own axis. The MPI-native algorithm cannot see what MPI sends, so it counts what the
// one-way ring algorithm logically sends for the same call (traffic_model.hpp), which makes the
// counters a property of the collective, the shapes and the torus, not of MPI's internal choice.
// ppermute counts its one transfer on its axis.
//
// Counters are per Collectives object (one per rank), updated by whichever thread runs the
// collective; read them after wait() returns. reset() zeroes everything.
#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "collectives/axes.hpp"

namespace tori::collectives {

enum class Collective : uint8_t { all_gather, reduce_scatter, all_reduce, all_to_all, ppermute };
inline constexpr std::array<Collective, 5> kCollectives{
    Collective::all_gather, Collective::reduce_scatter, Collective::all_reduce,
    Collective::all_to_all, Collective::ppermute};

std::string_view collective_name(Collective c);
// Parses "all_gather" | "reduce_scatter" | "all_reduce" | "all_to_all" | "ppermute".
Collective parse_collective(std::string_view s, std::string_view what = "collective");

struct Traffic {
  uint64_t bytes = 0;
  uint64_t messages = 0;
  Traffic& operator+=(const Traffic& o) {
    bytes += o.bytes;
    messages += o.messages;
    return *this;
  }
  bool operator==(const Traffic&) const = default;
};

// Traffic of one collective, per axis (indexed by Axis).
using AxisTraffic = std::array<Traffic, 3>;

class TrafficCounters {
 public:
  void add(Collective c, Axis a, const Traffic& t);
  void add(Collective c, const AxisTraffic& t);
  Traffic get(Collective c, Axis a) const;
  Traffic by_axis(Axis a) const;              // all collective kinds
  Traffic by_collective(Collective c) const;  // all axes
  Traffic total() const;
  void reset();

 private:
  static constexpr size_t kKinds = kCollectives.size();
  std::array<std::array<std::atomic<uint64_t>, 3>, kKinds> bytes_{};
  std::array<std::array<std::atomic<uint64_t>, 3>, kKinds> messages_{};
};

}  // namespace tori::collectives
