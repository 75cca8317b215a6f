#include "planning/cost_model.hpp"

#include <algorithm>
#include <cmath>

#include "collectives/ring_plan.hpp"
#include "kernels/error.hpp"
#include "runtime/attention_layouts.hpp"
#include "runtime/layout_dataflow.hpp"
#include "runtime/memory_estimate.hpp"
#include "runtime/placement.hpp"

namespace tori::planning {

using namespace runtime;  // the layouts and placements priced here

using collectives::Axes;
using collectives::Axis;
using collectives::Collective;
using collectives::Coords;
using collectives::LaneSplit;
using collectives::RingCoord;
using collectives::TorusShape;

namespace {

constexpr size_t kF32 = 4;  // Tori's activations, partial sums and gathered weights are f32

// The rings a collective over `axes` runs on (Collectives' Group::ring_coords: axes of size > 1).
std::vector<RingCoord> rings_of(const TorusShape& s, const Coords& me, Axes axes) {
  std::vector<RingCoord> out;
  for (Axis a : axes.list())
    if (s[a] > 1) out.push_back(RingCoord{a, s[a], me[a]});
  return out;
}

// Adds `e` to the list, merged into an entry of the same kind (same(x, e)) by its count.
template <class T, class Same>
void add_counted(std::vector<T>& v, const T& e, Same same) {
  for (auto& x : v)
    if (same(x, e)) {
      x.count += e.count;
      return;
    }
  v.push_back(e);
}

void add_call(std::vector<CommCall>& v, const CommCall& c) {
  add_counted(v, c, [](const CommCall& a, const CommCall& b) { return a.kind == b.kind && a.traffic == b.traffic; });
}

void add_matmul(std::vector<MatmulShape>& v, const MatmulShape& m) {
  add_counted(v, m, [](const MatmulShape& a, const MatmulShape& b) { return a.M == b.M && a.K == b.K && a.N == b.N; });
}

// Books each collective call as Collectives would (group of one member: no traffic).
struct Booker {
  const TorusShape& shape;
  const Coords& me;
  Work& w;
  void add(Collective c, const collectives::AxisTraffic& a) {
    for (size_t k = 0; k < 3; ++k) w.traffic[size_t(c)][k] += a[k];
    add_call(w.calls, {c, a, 1.0});
  }
  // all_gather of a local tensor of `elems` f32 elements
  void all_gather(int64_t elems, Axes axes) {
    auto r = rings_of(shape, me, axes);
    if (!r.empty()) add(Collective::all_gather, collectives::all_gather_traffic(r, elems, kF32, LaneSplit::one_way));
  }
  // reduce_scatter of a local tensor of `elems` elements (chunk = elems / group size)
  void reduce_scatter(int64_t elems, Axes axes) {
    auto r = rings_of(shape, me, axes);
    if (!r.empty())
      add(Collective::reduce_scatter,
          collectives::reduce_scatter_traffic(r, elems / shape.group_size(axes), LaneSplit::one_way));
  }
  void all_reduce(int64_t elems, Axes axes) {
    auto r = rings_of(shape, me, axes);
    if (!r.empty()) add(Collective::all_reduce, collectives::all_reduce_traffic(r, elems, LaneSplit::one_way));
  }
  void all_to_all(int64_t elems, Axes axes) {
    auto r = rings_of(shape, me, axes);
    if (!r.empty())
      add(Collective::all_to_all,
          collectives::all_to_all_traffic(r, static_cast<uint64_t>(elems) * kF32, LaneSplit::one_way));
  }
};

double mm(double M, double K, double N) { return 2.0 * M * K * N; }

bool any_handoff(const models::ModelConfig& c, const TorusShape& s, const PhasePlan& pre, const PhasePlan& dec,
                 int64_t batch) {
  for (int r = 0; r < s.ranks(); ++r) {
    Coords me = collectives::coords_of(s, r);
    if (needs_cache_handoff(make_placement(c, s, me, pre, batch), make_placement(c, s, me, dec, batch))) return true;
  }
  return false;
}

}  // namespace

int64_t modelled_heads(const models::ModelConfig& c) { return c.n_heads; }

double mean_allowed_pairs(const models::ModelConfig& c, int64_t cached, int64_t tokens) {
  double sum = 0, local = -1, global = -1;  // the two layer kinds, each computed once
  for (int64_t layer = 0; layer < c.n_layers; ++layer) {
    double& kind = c.windowed(layer) ? local : global;
    if (kind < 0) kind = c.layer_pattern(layer).allowed_pairs(cached, tokens);
    sum += kind;
  }
  return sum / double(std::max<int64_t>(c.n_layers, 1));
}

double mean_kv_positions(const models::ModelConfig& c, int64_t cached, int64_t tokens) {
  double sum = 0;
  for (int64_t layer = 0; layer < c.n_layers; ++layer)
    sum += double(c.windowed(layer) ? std::min(cached + tokens, c.sliding_window - 1 + tokens + c.sink_tokens)
                                    : cached + tokens);
  return sum / double(std::max<int64_t>(c.n_layers, 1));
}

Work& Work::operator+=(const Work& o) {
  flops += o.flops;
  matmul_flops += o.matmul_flops;
  for (const auto& m : o.matmuls) add_matmul(matmuls, m);
  for (const auto& c : o.calls) add_call(calls, c);
  attn_flops += o.attn_flops;
  weight_bytes += o.weight_bytes;
  kv_bytes += o.kv_bytes;
  repack_bytes += o.repack_bytes;
  pack_elements += o.pack_elements;
  repack_block_bytes = std::max(repack_block_bytes, o.repack_block_bytes);
  for (size_t k = 0; k < traffic.size(); ++k)
    for (size_t a = 0; a < 3; ++a) traffic[k][a] += o.traffic[k][a];
  return *this;
}

Work Work::scaled(int64_t k) const {
  Work w = *this;
  const double d = double(k);
  w.flops *= d, w.matmul_flops *= d, w.attn_flops *= d, w.weight_bytes *= d, w.kv_bytes *= d, w.repack_bytes *= d;
  w.pack_elements *= d;
  for (auto& m : w.matmuls) m.count *= d;
  for (auto& c : w.calls) c.count *= d;
  for (auto& kind : w.traffic)
    for (auto& t : kind) t.bytes *= uint64_t(k), t.messages *= uint64_t(k);
  return w;
}

StepCost predict_step(const StepQuery& q) {
  // What runs is the padded model (padding.hpp); useful (model) FLOPs count the real one.
  const models::ModelConfig& real = q.config;
  const models::ModelConfig c = padded_config(real, q.shape.ranks());
  const TorusShape& s = q.shape;
  const Placement pl = make_placement(c, s, q.coords, q.plan, q.batch);
  const int64_t n = s.ranks(), L = q.tokens, T = q.cached, E = c.d_model, D = c.d_head;
  const int64_t KD = c.n_kv_heads * D;
  const int64_t M = pl.batch_local * L, El = pl.e_local;
  const double wb = runtime::weight_element_bytes(q.weights);
  StepCost out;
  out.tokens = q.batch * L;
  out.rows = M;
  out.row_split = n / s.group_size(pl.batch_axes);
  out.sequences = pl.attn_batch_local;
  out.layers = c.n_layers;
  out.prefill = q.prefill;
  std::optional<Placement> dec;
  // (A phase plan paired with itself places the cache alike on every rank: no handoff, no need to
  // build 2n placements.)
  if (q.prefill && q.decode_plan && !(*q.decode_plan == q.plan) && any_handoff(c, s, q.plan, *q.decode_plan, q.batch)) {
    out.handoff = true;
    dec = make_placement(c, s, q.coords, *q.decode_plan, q.batch);
  }

  auto check_seq = [&](const std::vector<int64_t>& v, const char* what) {
    if (!v.empty() && int64_t(v.size()) != q.batch)
      throw Error(std::string("predict_step: ") + what + " has " + std::to_string(v.size()) + " entries, batch is " +
                  std::to_string(q.batch));
  };
  check_seq(q.seq_tokens, "seq_tokens");
  check_seq(q.seq_cached, "seq_cached");
  auto seq_l = [&](int64_t b) { return q.seq_tokens.empty() ? L : q.seq_tokens[size_t(b)]; };
  auto seq_t = [&](int64_t b) { return q.seq_cached.empty() ? T : q.seq_cached[size_t(b)]; };

  Work w;
  Booker book{s, q.coords, w};
  const int norms_per_block =  // all_reduces per norm call
      c.norm == models::Norm::layernorm ? 2 : 1;
  auto matmul = [&](int64_t m, int64_t k, int64_t nn, double weight_elems) {
    w.matmul_flops += mm(double(m), double(k), double(nn));
    add_matmul(w.matmuls, {m, k, nn, 1.0});
    w.weight_bytes += weight_elems * wb;
  };
  // Each projection pair as the layout's dataflow says it runs (runtime/layout_dataflow.hpp).
  const runtime::LayoutDataflow flow = runtime::layout_dataflow(pl);
  const runtime::ProjectionDataflow& f = flow.projection;
  const bool gathered = !f.weight_gather.empty();
  // TSVD: which weights run factored (all their tensors compressed, as layer_shards.cpp decides),
  // and a factored [k, cols] weight's numbers, its columns (rows for W_out) split among its kinds
  // as a unit's segments are.
  const runtime::TsvdPricing* tsvd = q.tsvd && runtime::runs_factors(q.weights, q.tsvd->int8) ? &*q.tsvd : nullptr;
  const double factor_bytes = q.weights == kernels::WeightFormat::bf16 ? 2.0
                              : q.weights == kernels::WeightFormat::int8 ? 1.0
                                                                          : 4.0;
  using Kinds = std::vector<std::pair<std::string, int64_t>>;  // kind, width per unit
  auto factored = [&](const Kinds& kinds) {
    std::vector<std::string> names;
    for (const auto& k : kinds) names.push_back(k.first);
    return tsvd && tsvd->factored(names);
  };
  auto numbers = [&](int64_t k, int64_t cols, const Kinds& kinds) {
    int64_t unit = 0;
    for (const auto& kw : kinds) unit += kw.second;
    Kinds held;
    for (const auto& [kind, width] : kinds) held.push_back({kind, cols / unit * width});
    return tsvd->stored(k, held);
  };
  // tsvd_matmul of a factored [k, nn] weight of `num` numbers, 2·M·num FLOPs. Above
  // kTsvdFusedMaxM rows: nK GEMMs [M, T_k] x [T_k, R_i] and nN GEMMs [M, R'_j] x [R'_j, T_n] (ranks
  // priced at their mean). At M <= kTsvdFusedMaxM the small-batch kernel streams the factors once
  // in one region (kernels/tsvd_fused.hpp), as a dense kernel streams a weight of as many numbers:
  // priced as the matmul [M, k] x [k, num/k] (the same FLOPs and bytes), not as nK + nN matmuls of
  // a tile's width each, which the small-M rates of a calibration would price far below it.
  auto factored_matmul = [&](int64_t k, int64_t nn, double num) {
    const int64_t Tk = tsvd->tile.rows, Tn = tsvd->tile.cols, nK = k / Tk, nN = nn / Tn;
    const double ranks = num / double(Tk + Tn);
    w.matmul_flops += 2.0 * double(M) * num;
    w.weight_bytes += num * factor_bytes;
    if (M <= kernels::kTsvdFusedMaxM) {
      const int64_t cols = std::max<int64_t>(1, std::llround(num / double(k)));
      add_matmul(w.matmuls, {M, k, cols, num / (double(k) * double(cols))});
      return;
    }
    add_matmul(w.matmuls, {M, Tk, std::max<int64_t>(1, int64_t(ranks / double(nK))), double(nK)});
    add_matmul(w.matmuls, {M, std::max<int64_t>(1, int64_t(ranks / double(nN))), Tn, double(nN)});
  };
  const int64_t hd_unit = c.n_heads * D / n, f_unit = c.d_ff / n;
  for (const ProjectionUnits& p : projection_units(c, n)) {
    for (int k = 0; k < norms_per_block; ++k) book.all_reduce(M, flow.step.norm);  // sharded_norm: [M, 1]
    const runtime::WeightShapes ws = runtime::multiplied_weights(pl, f, p.unit_in, p.unit_out);
    Kinds in_kinds, out_kinds;
    if (p.with_q) in_kinds.push_back({"wq", hd_unit}), out_kinds.push_back({"wo", hd_unit});
    if (p.with_ffn) {
      in_kinds.push_back({"w_in", f_unit});
      if (c.mlp != models::Mlp::gelu) in_kinds.push_back({"w_gate", f_unit});
      out_kinds.push_back({"w_out", f_unit});
    }
    Kinds both = in_kinds;
    both.insert(both.end(), out_kinds.begin(), out_kinds.end());
    const Kinds kv_kinds = {{"wk", KD}, {"wv", KD}};
    const bool fac = factored(both), fac_kv = p.with_kv && factored(kv_kinds);
    // A factored weight's numbers as multiplied (ws) and as stored (st).
    auto in_num = [&](const runtime::WeightShapes& x) { return numbers(x.in_rows, x.in_cols, in_kinds); };
    auto out_num = [&](const runtime::WeightShapes& x) { return numbers(x.out_cols, x.out_rows, out_kinds); };
    auto kv_num = [&](const runtime::WeightShapes& x) { return numbers(x.kv_rows, 2 * KD, kv_kinds); };
    // A flattened grid's floats besides the numbers: a rank per tile, and int8 factors' V scales
    // [T_n] per tile (runtime/factored_weights.hpp flatten_factors).
    const int64_t per_tile = tsvd ? 1 + (q.weights == kernels::WeightFormat::int8 ? tsvd->tile.cols : 0) : 1;
    auto tiles = [&](int64_t r, int64_t cols) { return (r / tsvd->tile.rows) * (cols / tsvd->tile.cols) * per_tile; };
    if (gathered) {  // weight_prefetch.hpp: each stored weight gathered in one collective
      const runtime::WeightShapes st = runtime::stored_weights(pl, p.unit_in, p.unit_out);
      if (fac) {  // the flattened factors: a rank (and int8: V scales) per tile, then the numbers
        book.all_gather(tiles(st.in_rows, st.in_cols) + int64_t(in_num(st)), f.weight_gather);
        book.all_gather(tiles(st.out_rows, st.out_cols) + int64_t(out_num(st)), f.weight_gather);
      } else {
        book.all_gather(st.in_rows * st.in_cols, f.weight_gather);
        book.all_gather(st.out_rows * st.out_cols, f.weight_gather);
      }
      if (p.with_kv)
        book.all_gather(fac_kv ? tiles(st.kv_rows, 2 * KD) + int64_t(kv_num(st)) : st.kv_rows * 2 * KD,
                        f.kv_weight_gather);
    }
    // A chain: x [M, K/|gather|] --AG(gather)--> @ W [K, N] --RS(scatter)--> [M, N/|scatter|].
    // Gathered f32 weights (on the default oneDNN backend; the cost model assumes it) are
    // multiplied block by block where they lie (gathered_matmul: one matmul per member block when
    // the blocks are not already in place); the rest is one matmul. (With --overlap looped over an
    // R ring of more than one rank f32 is placed too: not modelled.)
    const bool f32 = q.weights == kernels::WeightFormat::f32;
    const int members = int(s.group_size(f.weight_gather)), nx = int(s[Axis::x]);
    auto chain_matmul = [&](int64_t k, int64_t nn, bool x_on_rows) {
      const runtime::BlockGrid g = gathered ? runtime::gathered_grid(members, nx, x_on_rows) : runtime::BlockGrid{};
      if (!f32 || g.col_blocks == 1) return matmul(M, k, nn, double(k) * nn);
      for (int b = 0; b < g.row_blocks * g.col_blocks; ++b)
        matmul(M, k / g.row_blocks, nn / g.col_blocks, double(k / g.row_blocks) * (nn / g.col_blocks));
    };
    auto chain = [&](const runtime::MatmulChain& ch, int64_t k, int64_t nn, bool x_on_rows, double num) {
      book.all_gather(M * (k / s.group_size(ch.gather)), ch.gather);
      if (num > 0) factored_matmul(k, nn, num);
      else chain_matmul(k, nn, x_on_rows);
      book.reduce_scatter(M * nn, ch.scatter);
    };
    chain(f.in, ws.in_rows, ws.in_cols, true, fac ? in_num(ws) : 0.0);
    if (p.with_kv) {  // x @ W_kv [K, 2KD] {partial kv_reduce} --AR(kv_reduce)-->
      if (fac_kv) factored_matmul(ws.kv_rows, 2 * KD, kv_num(ws));
      else matmul(M, ws.kv_rows, 2 * KD, double(ws.kv_rows) * 2 * KD);
      book.all_reduce(M * 2 * KD, f.kv_reduce);
    }
    chain(f.out, ws.out_rows, ws.out_cols, false, fac ? out_num(ws) : 0.0);
    if (gathered && fac) {
      // Gathered factors readied every step: unflattened and joined (a copy, 8 bytes per
      // number), stacked into Û_i / V̂_j by pack_tsvd (8; bf16 then converted, 6; int8 then
      // column maxima and quantised, 9; oneDNN multiplies f32 and bf16 in place).
      const double convert = factor_bytes == 2.0 ? 6.0 : factor_bytes == 1.0 ? 9.0 : 0.0;
      w.repack_bytes += (16.0 + convert) * (in_num(ws) + out_num(ws) + (fac_kv ? kv_num(ws) : 0.0));
    } else if (gathered) {
      // Readied for the kernel every step: bf16 and int8 packed (read 4, write wb); f32 read
      // where it lies by oneDNN's plain-layout kernel, which copies each block of it once more
      // as it goes (read 4; kernels::pack_transient_weight).
      const double w_in = double(ws.in_rows) * ws.in_cols, w_out = double(ws.out_rows) * ws.out_cols;
      const double gathered_elems = w_in + w_out + (p.with_kv ? double(ws.kv_rows) * 2 * KD : 0.0);
      if (f32)
        w.repack_bytes += gathered_elems * 4.0;
      else
        w.pack_elements += gathered_elems;
      // Cache-resident while two layers' gathered f32 weights fit (overlapped, layer i+1's arrive
      // while layer i's are used).
      w.repack_block_bytes += 2 * 4.0 * gathered_elems;
      // bf16 and int8 place the member blocks first (place_blocks: a copy, 8 bytes per element)
      // unless they arrived in place (one column block).
      if (!f32 && runtime::gathered_grid(members, nx, true).col_blocks > 1) w.repack_bytes += 8.0 * w_in;
      if (!f32 && runtime::gathered_grid(members, nx, false).col_blocks > 1) w.repack_bytes += 8.0 * w_out;
    }
    if (p.with_q) {
      const int64_t Hl = static_cast<int64_t>(pl.units.size()) * (modelled_heads(c) / n);
      const int64_t Ba = pl.attn_batch_local, Ha = static_cast<int64_t>(pl.heads.size());
      book.all_to_all(pl.batch_local * L * Hl * D, flow.attention.to_batch);  // heads -> batch
      // Attention of B_a sequences x H_a heads: 4·H_a·D per allowed (query, key) pair (l new, t
      // cached: causal l·t + l(l+1)/2), and the KV positions read, averaged over the layers (local
      // layers: their window and sinks).
      const int64_t kv_local = static_cast<int64_t>(pl.kv_heads.size());
      for (int64_t b = pl.attn_batch_offset; b < pl.attn_batch_offset + Ba; ++b) {
        const int64_t l = seq_l(b), t = seq_t(b);
        if (l == 0) continue;
        w.attn_flops += 4.0 * double(Ha) * double(D) * mean_allowed_pairs(c, t, l);
        w.kv_bytes += double(kv_local) * mean_kv_positions(c, t, l) * double(D) * 2.0 * double(q.kv_elem_bytes);
      }
      if (dec) {  // K and V: AG(S') of [B_a·L, KD], then AG(A) of [B_l·L, KD]
        for (int k = 0; k < 2; ++k) {
          book.all_gather(Ba * L * KD, flow.attention.handoff_rows);
          book.all_gather(pl.batch_local * L * KD, flow.attention.handoff_batch);
        }
      }
      book.all_to_all(Ba * L * Ha * D, flow.attention.to_batch);  // batch -> heads
    }
  }
  w.flops = w.matmul_flops + w.attn_flops;
  out.layer = w;

  // Whole step: the layer loop, then what sharded_model.cpp does around it.
  Work step = w.scaled(c.n_layers);
  Booker sb{s, q.coords, step};
  const runtime::StepDataflow& sf = flow.step;
  sb.reduce_scatter(q.batch * L * E, sf.embed_rows);                       // embedding: my rows,
  sb.reduce_scatter(M * E, sf.embed_cols);                                  //   my columns
  const int64_t Mf = pl.batch_local;                                        // each sequence's last row on
  for (int k = 0; k < norms_per_block; ++k) sb.all_reduce(Mf, sf.norm);    // final norm
  sb.all_gather(Mf * El, sf.hidden_cols);                                   // hidden: E
  sb.all_gather(Mf * E, sf.hidden_rows);                                    // hidden: batch
  const int64_t rows = q.logits ? (q.logit_rows >= 0 ? q.logit_rows : q.batch) : 0;  // last position / token
  if (q.logits) {
    sb.all_gather(rows * (c.vocab / n), sf.logits);                         // logits
    step.matmul_flops += mm(rows, E, c.vocab / n);
    add_matmul(step.matmuls, {rows, E, c.vocab / n, 1.0});
    step.weight_bytes += double(E) * double(c.vocab / n) * wb;
  }
  step.flops = step.matmul_flops + step.attn_flops;
  out.step = step;

  // Useful FLOPs over all chips: each matmul weight once per token, attention once per head.
  const double tok = double(q.batch) * double(L);
  double layer_params = 0;
  for (const ProjectionUnits& p : projection_units(real, 1)) layer_params += double(E) * double(p.unit_in + p.unit_out);
  layer_params += double(E) * 2.0 * double(real.n_kv_heads * D);
  double attn_all = 0;
  for (int64_t b = 0; b < q.batch; ++b) {
    const double l = double(seq_l(b)), t = double(seq_t(b));
    attn_all += 4.0 * double(real.n_heads) * double(D) * mean_allowed_pairs(real, int64_t(t), int64_t(l));
  }
  out.model_flops = double(c.n_layers) * (2.0 * tok * layer_params + attn_all) + 2.0 * double(rows) * E * real.vocab;
  return out;
}

MemoryCost predict_memory(const models::ModelConfig& real, const TorusShape& shape, const PhasePlan& prefill,
                          const PhasePlan& decode, int64_t batch, int64_t context, kernels::WeightFormat weights,
                          int64_t kv_elem_bytes, runtime::StepShape prefill_step, runtime::StepShape decode_step,
                          double plain_bytes, const runtime::TsvdPricing* tsvd) {
  const models::ModelConfig c = padded_config(real, shape.ranks());  // padded shards (padding.hpp)
  // Rank 0's placements; every rank holds the same amount.
  const Placement pre = make_placement(c, shape, Coords{}, prefill, batch);
  const Placement dec = make_placement(c, shape, Coords{}, decode, batch);
  if (needs_cache_handoff(pre, dec)) prefill_step.handoff = &dec;
  return runtime::estimate_memory(c, pre, dec, weights, kv_elem_bytes, context, prefill_step, decode_step,
                                  plain_bytes, tsvd);
}

int64_t max_context(const models::ModelConfig& real, const TorusShape& shape, const PhasePlan& decode, int64_t batch,
                    double budget_bytes, int64_t kv_elem_bytes) {
  const models::ModelConfig c = padded_config(real, shape.ranks());  // the KV heads ranks hold (padding.hpp)
  const Placement dec = make_placement(c, shape, Coords{}, decode, batch);
  auto bytes = [&](int64_t context) { return runtime::kv_cache_bytes(c, dec, kv_elem_bytes, context); };
  // Monotone in the context; flat past the windows when every layer keeps a sliding window.
  constexpr int64_t kUnbounded = int64_t(1) << 40;
  if (bytes(kUnbounded) <= budget_bytes) return kUnboundedContext;
  int64_t lo = 0, hi = kUnbounded;  // bytes(lo) <= budget < bytes(hi)
  if (bytes(0) > budget_bytes) return 0;
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (bytes(mid) <= budget_bytes ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace tori::planning
