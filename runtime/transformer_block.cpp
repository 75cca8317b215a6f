#include "runtime/transformer_block.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "kernels/activations.hpp"
#include "runtime/attention_layouts.hpp"
#include "runtime/ffn_layouts.hpp"
#include "runtime/sharded_norm.hpp"

namespace tori::runtime {

using kernels::Tensor;

namespace {

// Copies, for each unit u in `order`, columns [u·stride + off, +w) of x [M, *] side by side.
Tensor gather_units(const Tensor& x, const std::vector<int64_t>& order, int64_t stride, int64_t off, int64_t w) {
  const int64_t M = x.size(0), C = x.size(1), U = static_cast<int64_t>(order.size());
  Tensor out({M, U * w}, kernels::DType::f32);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < U; ++k)
      std::memcpy(out.data<float>() + (m * U + k) * w, x.data<float>() + m * C + order[size_t(k)] * stride + off,
                  size_t(w) * sizeof(float));
  return out;
}

// The inverse: writes t [M, U·w] into columns [u·stride + off, +w) of z for each u of `order`.
void scatter_units(Tensor& z, const std::vector<int64_t>& order, int64_t stride, int64_t off, int64_t w,
                   const Tensor& t) {
  const int64_t M = z.size(0), C = z.size(1), U = static_cast<int64_t>(order.size());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < U; ++k)
      std::memcpy(z.data<float>() + m * C + order[size_t(k)] * stride + off, t.data<float>() + (m * U + k) * w,
                  size_t(w) * sizeof(float));
}

// y [M, U·unit_in] (+ kv) -> z [M, U·unit_out]: attention on the Q segment, activation on the FFN.
Tensor middle(StepContext& s, int64_t layer, const Projection& p, const Tensor& y, const Tensor& kv, bool handoff) {
  const int64_t M = y.size(0), U = y.size(1) / p.unit_in;
  Tensor z({M, U * p.unit_out}, kernels::DType::f32);
  if (p.has(Segment::q)) {
    // Units in ascending block order give ascending heads.
    std::vector<int64_t> order(static_cast<size_t>(U));
    std::iota(order.begin(), order.end(), 0);
    const auto& units = s.pl.units;
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return units[size_t(a)] < units[size_t(b)]; });
    const int64_t wq = p.in_widths[0], D = s.config.d_head, Bl = M / s.L;
    // [B_l L, U·unit_in] -> Q [B_l, L, H_l, D] -> attention -> O [B_l, L, H_l, D] -> z's O columns
    Tensor q = gather_units(y, order, p.unit_in, p.offset(Segment::q), wq).reshape({Bl, s.L, U * wq / D, D});
    Tensor o = sharded_attention(s, layer, q, kv, handoff);
    scatter_units(z, order, p.unit_out, p.offset(Segment::o), wq, o.reshape({M, U * wq}));
  }
  if (p.has(Segment::w_in)) {
    std::vector<int64_t> order(static_cast<size_t>(U));
    std::iota(order.begin(), order.end(), 0);
    const int64_t wf = s.config.d_ff / s.pl.shape.ranks();
    // [M, U·F/n] hidden units -> silu(gate) * in  |  gelu(in)
    Tensor in = gather_units(y, order, p.unit_in, p.offset(Segment::w_in), wf), act;
    if (p.has(Segment::w_gate))
      kernels::swiglu(gather_units(y, order, p.unit_in, p.offset(Segment::w_gate), wf), in, act);
    else
      kernels::gelu(in, act);
    scatter_units(z, order, p.unit_out, p.offset(Segment::w_out), wf, act);
  }
  return z;
}

void add_into(Tensor& resid, const Tensor& delta) { kernels::add(resid, delta, resid); }

}  // namespace

void run_layer(StepContext& s, int64_t layer, const LayerShard& w, Tensor& resid, bool handoff) {
  const Placement& pl = s.pl;
  auto norm = [&](const Tensor& x, const Tensor& nw, const Tensor& nb) {
    return sharded_norm(s.coll, pl.e_axes, s.config, x, pl.e_offset, nw, nb);
  };
  auto mid = [&](const Projection& p) {
    return [&s, &p, layer, handoff](const Tensor& y, const Tensor& kv) { return middle(s, layer, p, y, kv, handoff); };
  };
  if (w.projections.size() == 1) {
    // y = x + Attn(N(x)) + FFN(N(x)): both through one fused projection pair
    const Projection& p = w.projections[0];
    s.layer = layer, s.proj = 0;
    Tensor h = norm(resid, w.attn_norm_w, w.attn_norm_b);
    add_into(resid, run_projection(s, w, p, true, h, mid(p)));
  } else {
    // y' = x + Attn(N1(x))
    const Projection& pa = w.projections[0];
    s.layer = layer, s.proj = 0;
    add_into(resid, run_projection(s, w, pa, true, norm(resid, w.attn_norm_w, w.attn_norm_b), mid(pa)));
    // y = y' + FFN(N2(y'))
    const Projection& pf = w.projections[1];
    s.proj = 1;
    add_into(resid, run_projection(s, w, pf, false, norm(resid, w.ffn_norm_w, w.ffn_norm_b), mid(pf)));
  }
}

}  // namespace tori::runtime
