#include "runtime/transformer_block.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/activations.hpp"
#include "kernels/columns.hpp"
#include "kernels/norms.hpp"
#include "kernels/take.hpp"
#include "runtime/attention_layouts.hpp"
#include "runtime/projection.hpp"
#include "runtime/sharded_norm.hpp"

namespace tori::runtime {

using kernels::Tensor;

namespace {

// Column starts [u·stride + off] for each unit u of `order`: one segment's block in every unit.
std::vector<int64_t> unit_columns(const std::vector<int64_t>& order, int64_t stride, int64_t off) {
  std::vector<int64_t> starts;
  for (int64_t u : order) starts.push_back(u * stride + off);
  return starts;
}

// Gemma's query/key norms (RMSNorm over each D-sized head) and a query scale other than the
// attention kernel's 1/sqrt(D), applied before RoPE: q [.., H_l, D] in place; kv [M, 2·K·D] -> its
// copy with the K columns normalised.
Tensor prepare_qk(const models::ModelConfig& c, const LayerShard& w, Tensor& q, const Tensor& kv) {
  const int64_t D = c.d_head, KD = c.n_kv_heads * D, M = kv.size(0);
  const double q_scale = c.attention_scale() * std::sqrt(double(D));
  if (c.qk_norm) {
    Tensor qh = q.reshape({q.numel() / D, D});
    kernels::rmsnorm(qh, w.q_norm_w, float(c.norm_eps), qh);
  }
  if (std::abs(q_scale - 1.0) > 1e-12) {
    float* qp = q.data<float>();
    for (int64_t i = 0; i < q.numel(); ++i) qp[i] = float(qp[i] * q_scale);
  }
  if (!c.qk_norm) return kv;
  Tensor k = kernels::slice_columns(kv, 0, KD).reshape({M * c.n_kv_heads, D}), kn;
  kernels::rmsnorm(k, w.k_norm_w, float(c.norm_eps), kn);
  Tensor out = kv.clone();
  kernels::put_block(out, 0, 0, kn.reshape({M, KD}));
  return out;
}

// y [M, U·unit_in] (+ kv) -> z [M, U·unit_out]: attention on the Q segment, activation on the FFN.
Tensor middle(StepContext& s, int64_t layer, const LayerShard& w, const Projection& p, const Tensor& y,
              const Tensor& kv, bool handoff) {
  const int64_t M = y.size(0), U = y.size(1) / p.unit_in;
  const int64_t wf = s.config.d_ff / s.pl.shape.ranks();
  // z is left unfilled (no zeroing: megabytes at prefill) only when the columns written below cover
  // every out segment: O's from attention, W_out's from the activation.
  int64_t written = 0;
  for (size_t i = 0; i < p.out_segments.size(); ++i) {
    const Segment seg = p.out_segments[i];
    if ((seg == Segment::o && p.has(Segment::q) && p.in_widths[0] == p.out_widths[i]) ||
        (seg == Segment::w_out && p.has(Segment::w_in) && wf == p.out_widths[i]))
      written += p.out_widths[i];
  }
  Tensor z = written == p.unit_out ? Tensor::empty({M, U * p.unit_out}, kernels::DType::f32)
                                   : Tensor({M, U * p.unit_out}, kernels::DType::f32);
  if (p.has(Segment::q)) {
    // Units in ascending block order give ascending heads.
    std::vector<int64_t> order(static_cast<size_t>(U));
    std::iota(order.begin(), order.end(), 0);
    const auto& units = s.pl.units;
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return units[size_t(a)] < units[size_t(b)]; });
    const int64_t wq = p.in_widths[0], D = s.config.d_head, Bl = M / s.L;
    // [B_l L, U·unit_in] -> Q [B_l, L, H_l, D] -> attention -> O [B_l, L, H_l, D] -> z's O columns
    Tensor q = kernels::take_columns(y, unit_columns(order, p.unit_in, p.offset(Segment::q)), wq)
                   .reshape({Bl, s.L, U * wq / D, D});
    Tensor o = sharded_attention(s, layer, q, prepare_qk(s.config, w, q, kv), handoff);
    kernels::put_columns(z, unit_columns(order, p.unit_out, p.offset(Segment::o)), wq, o.reshape({M, U * wq}));
  }
  if (p.has(Segment::w_in)) {
    // [M, U·F/n] hidden units -> silu(gate) * in  |  gelu_tanh(gate) * in  |  gelu(in), each unit's
    // block from y's columns straight into z's
    const kernels::FfnActivation kind = !p.has(Segment::w_gate)           ? kernels::FfnActivation::gelu
                                        : s.config.mlp == models::Mlp::geglu ? kernels::FfnActivation::geglu
                                                                             : kernels::FfnActivation::swiglu;
    for (int64_t u = 0; u < U; ++u)
      kernels::ffn_activation_columns(kind, y, u * p.unit_in + (p.has(Segment::w_gate) ? p.offset(Segment::w_gate) : 0),
                                      u * p.unit_in + p.offset(Segment::w_in), wf, z,
                                      u * p.unit_out + p.offset(Segment::w_out));
  }
  return z;
}

void add_into(Tensor& resid, const Tensor& delta) { kernels::add(resid, delta, resid); }

}  // namespace

void run_layer(StepContext& s, int64_t layer, const LayerShard& w, Tensor& resid, bool handoff) {
  const Placement& pl = s.pl;
  auto norm = [&](const Tensor& x, const Tensor& nw, const Tensor& nb) {
    return sharded_norm(s.coll, s.flow.step.norm, s.config, x, pl.e_offset, nw, nb);
  };
  auto mid = [&](const Projection& p) {
    return [&s, &w, &p, layer, handoff](const Tensor& y, const Tensor& kv) { return middle(s, layer, w, p, y, kv, handoff); };
  };
  // Timeline sections (comm_timeline.hpp): the layer runs from its first projection's start to its
  // end; the norm before it counts in the section before.
  Tensor h = norm(resid, w.attn_norm_w, w.attn_norm_b);
  collectives::TimelineSection section(s.coll.timeline(), int(layer));
  if (w.projections.size() == 1) {
    // y = x + Attn(N(x)) + FFN(N(x)): both through one fused projection pair
    const Projection& p = w.projections[0];
    add_into(resid, run_projection(s, {layer, 0}, w, p, true, h, mid(p)));
  } else {
    // y' = x + Attn(N1(x))            (post_norms: x + N1'(Attn(N1(x))))
    const Projection& pa = w.projections[0];
    Tensor attn = run_projection(s, {layer, 0}, w, pa, true, h, mid(pa));
    add_into(resid, s.config.post_norms ? norm(attn, w.post_attn_norm_w, w.post_attn_norm_b) : attn);
    // y = y' + FFN(N2(y'))            (post_norms: y' + N2'(FFN(N2(y'))))
    const Projection& pf = w.projections[1];
    Tensor ffn = run_projection(s, {layer, 1}, w, pf, false, norm(resid, w.ffn_norm_w, w.ffn_norm_b), mid(pf));
    add_into(resid, s.config.post_norms ? norm(ffn, w.post_ffn_norm_w, w.post_ffn_norm_b) : ffn);
  }
}

}  // namespace tori::runtime
