#pragma once
// Ring neighbour and order maths: which block a ring member sends and receives at each step, for
// every collective the ring algorithms run. Pure functions (no MPI), unit-tested by simulating a
// ring (tests/collectives/test_ring_schedule.cpp).
//
// A ring has `size` members 0..size-1 (the ranks along one torus axis, in coordinate order; the
// torus is periodic, so member size-1 neighbours member 0). A lane travels in direction `dir`:
// +1 means every member sends to index+1 and receives from index-1; -1 the mirror image.
#include <cstdint>

namespace tori::collectives {

// i mod n in [0, n).
constexpr int wrap(int i, int n) { return ((i % n) + n) % n; }

// The member `dir` steps away from `index` (dir = +1 right, -1 left), wrapping around.
constexpr int ring_neighbour(int size, int index, int dir) { return wrap(index + dir, size); }

// One step of a ring: which block leaves for neighbour(dir) and which arrives from neighbour(-dir).
struct RingStep {
  int send_block = 0;
  int recv_block = 0;
};

// All-gather, steps 0..size-2. Block g starts on member g. At step s a member forwards the block
// it received at step s-1 (its own at step 0): after size-1 steps every member holds every block.
constexpr RingStep all_gather_step(int size, int index, int step, int dir) {
  return {wrap(index - dir * step, size), wrap(index - dir * (step + 1), size)};
}

// Reduce-scatter, steps 0..size-2. Every member holds a summand of every block; block g must end,
// fully summed, on member g. At step s a member sends its running partial of block
// index-dir·(s+1) (just its own summand at step 0) and receives the partial of block
// index-dir·(s+2), to which it adds its own summand. The last step receives block `index` itself.
constexpr RingStep reduce_scatter_step(int size, int index, int step, int dir) {
  return {wrap(index - dir * (step + 1), size), wrap(index - dir * (step + 2), size)};
}

// All-to-all on a ring by store and forward. A lane carries the pieces whose destination is
// 1..reach steps away in its direction. At step k = 1..reach a member sends a bundle of
// reach-k+1 pieces to neighbour(dir): at step 1 its own pieces for destinations index+dir·1 ..
// index+dir·reach (in that order), later the bundle it received at step k-1 minus its first piece.
// The bundle it receives at step k came from member index-dir·k; its first piece is addressed to
// this member, the rest are forwarded at step k+1.
constexpr int all_to_all_bundle(int reach, int step) { return reach - step + 1; }
constexpr int all_to_all_source(int size, int index, int dir, int step) {
  return wrap(index - dir * step, size);
}
// Destination of piece j (0-based) of a member's own step-1 bundle.
constexpr int all_to_all_first_dest(int size, int index, int dir, int j) {
  return wrap(index + dir * (j + 1), size);
}
// How far each direction reaches. One-way ring: every destination, size-1 steps right. Both ways:
// destinations up to size/2 steps right, the rest (size-1-size/2) left, so no piece travels more
// than half way round; the antipode of an even ring goes right.
constexpr int all_to_all_reach_right(int size, bool bidirectional) {
  return bidirectional ? size / 2 : size - 1;
}
constexpr int all_to_all_reach_left(int size, bool bidirectional) {
  return bidirectional ? size - 1 - size / 2 : 0;
}

// An element range [offset, offset + length).
struct Span {
  int64_t offset = 0;
  int64_t length = 0;
  bool operator==(const Span&) const = default;
};

// Part i of n elements split into `parts` nearly equal contiguous parts (lengths differ by at most
// one, longer parts last). Used where a collective may split unevenly (all_reduce's flat buffer).
constexpr Span balanced_part(int64_t offset, int64_t n, int parts, int i) {
  int64_t begin = n * i / parts, end = n * (i + 1) / parts;
  return {offset + begin, end - begin};
}

}  // namespace tori::collectives
