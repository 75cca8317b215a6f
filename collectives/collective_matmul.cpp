#include "collectives/collective_matmul.hpp"

#include <cstring>
#include <vector>

#include "collectives/ring_schedule.hpp"
#include "kernels/error.hpp"
#include "kernels/activations.hpp"
#include "kernels/matmul.hpp"

namespace tori::collectives {

using kernels::Tensor;

std::string overlap_name(Overlap o) {
  switch (o) {
    case Overlap::none: return "none";
    case Overlap::looped: return "looped";
    case Overlap::looped_bidir: return "looped-bidir";
  }
  return "?";
}

Overlap parse_overlap(const std::string& s, const std::string& flag) {
  if (s == "none") return Overlap::none;
  if (s == "looped") return Overlap::looped;
  if (s == "looped-bidir") return Overlap::looped_bidir;
  throw InputError(flag + ": '" + s + "' (allowed: none, looped, looped-bidir)");
}

namespace {

// One ring lane: rows [r0, r0 + rows) of x travelling in direction dir (+1 or -1). Lanes advance
// step by step together, so in the bidirectional case both directions' transfers are in flight
// while either lane multiplies.
struct EinsumLane {
  int64_t r0 = 0, rows = 0;
  int dir = 1;
  Tensor cur;       // all_gather_matmul: the chunk at hand; matmul_reduce_scatter: the running partial
  Pending next;     // the transfer under way
};

std::vector<EinsumLane> lanes_for(int64_t M, int G, bool bidirectional) {
  std::vector<EinsumLane> lanes(bidirectional && M >= 2 && G > 2 ? 2 : 1);
  lanes[0].rows = M;
  if (lanes.size() == 2) {
    lanes[0].rows = M / 2;
    lanes[1].r0 = M / 2;
    lanes[1].rows = M - M / 2;
    lanes[1].dir = -1;
  }
  return lanes;
}

void check(const Tensor& x, Axis axis, std::span<const kernels::PackedWeight> w, int G, const char* op) {
  if (x.rank() != 2 || x.dtype() != kernels::DType::f32)
    throw Error(std::string(op) + ": x must be f32 [M, K], got " + kernels::shape_str(x.shape()));
  if (static_cast<int>(w.size()) != G)
    throw Error(std::string(op) + ": " + std::to_string(w.size()) + " weight blocks for " + std::to_string(G) +
                " ranks along " + std::string(1, axis_name(axis)));
}

}  // namespace

Tensor all_gather_matmul(Collectives& coll, const Tensor& x, Axis axis, std::span<const kernels::PackedWeight> w,
                         bool bidirectional) {
  const int G = coll.torus().shape()[axis], c = coll.torus().coord(axis);
  check(x, axis, w, G, "all_gather_matmul");
  const int64_t M = x.size(0);
  Tensor y({M, w[0].n}, kernels::DType::f32);
  std::vector<EinsumLane> lanes = lanes_for(M, G, bidirectional);
  // step 0: send my chunk on its way, and multiply it meanwhile
  for (EinsumLane& l : lanes) {
    l.cur = x.narrow0(l.r0, l.rows).clone();
    if (G > 1) l.next = coll.start_ppermute(l.cur, axis, l.dir);
  }
  for (EinsumLane& l : lanes) {
    Tensor out = y.narrow0(l.r0, l.rows);
    kernels::matmul(l.cur, w[size_t(c)], out);
  }
  // step s: the chunk of member c - dir·s has arrived; forward it, multiply it, accumulate
  for (int s = 1; s < G; ++s) {
    for (EinsumLane& l : lanes) {
      l.cur = l.next.wait();
      if (s < G - 1) l.next = coll.start_ppermute(l.cur, axis, l.dir);
    }
    for (EinsumLane& l : lanes) {
      Tensor out = y.narrow0(l.r0, l.rows);
      kernels::matmul(l.cur, w[size_t(wrap(c - l.dir * s, G))], out, {1.f, true});
    }
  }
  return y;
}

Tensor matmul_reduce_scatter(Collectives& coll, const Tensor& x, Axis axis, std::span<const kernels::PackedWeight> w,
                             bool bidirectional) {
  const int G = coll.torus().shape()[axis], c = coll.torus().coord(axis);
  check(x, axis, w, G, "matmul_reduce_scatter");
  const int64_t M = x.size(0);
  Tensor y({M, w[0].n}, kernels::DType::f32);
  std::vector<EinsumLane> lanes = lanes_for(M, G, bidirectional);
  for (int s = 0; s < G; ++s) {
    for (EinsumLane& l : lanes) {
      // block c - dir·(s+1) of x @ W, computed while the previous partial sum travels
      Tensor part;
      kernels::matmul(x.narrow0(l.r0, l.rows), w[size_t(wrap(c - l.dir * (s + 1), G))], part);
      if (s > 0) kernels::add(part, l.next.wait(), part);
      l.cur = part;
    }
    for (EinsumLane& l : lanes)
      if (s < G - 1) l.next = coll.start_ppermute(l.cur, axis, l.dir);
  }
  // after G-1 passes each lane holds block c, complete
  for (EinsumLane& l : lanes) std::memcpy(y.narrow0(l.r0, l.rows).raw(), l.cur.raw(), l.cur.nbytes());
  return y;
}

LoopPlan loop_plan(const TorusShape& shape, Axes axes) {
  LoopPlan p;
  bool found = false;
  for (Axis a : axes.list()) {
    if (found) {
      p.inner = p.inner | Axes(a);
    } else if (shape[a] > 1) {
      p.loop = a;
      p.blocks = shape[a];
      found = true;
    }
  }
  return p;
}

Tensor all_gather_matmul(Collectives& coll, const Tensor& x, Axes axes, std::span<const kernels::PackedWeight> w,
                         bool bidirectional) {
  const LoopPlan p = loop_plan(coll.torus().shape(), axes);
  if (p.blocks == 1) {
    Tensor y;
    kernels::matmul(x, w[0], y);
    return y;
  }
  // [M, K/n] --all_gather(inner)--> [M, K/blocks]: my block along the loop axis, then the loop
  return all_gather_matmul(coll, coll.all_gather(x, -1, p.inner), p.loop, w, bidirectional);
}

Tensor matmul_reduce_scatter(Collectives& coll, const Tensor& x, Axes axes, std::span<const kernels::PackedWeight> w,
                             bool bidirectional) {
  const LoopPlan p = loop_plan(coll.torus().shape(), axes);
  if (p.blocks == 1) {
    Tensor y;
    kernels::matmul(x, w[0], y);
    return coll.reduce_scatter(y, -1, axes);
  }
  // the loop leaves [M, N/blocks] {partial inner} --reduce_scatter(inner)--> [M, N/n]
  return coll.reduce_scatter(matmul_reduce_scatter(coll, x, p.loop, w, bidirectional), -1, p.inner);
}

}  // namespace tori::collectives
