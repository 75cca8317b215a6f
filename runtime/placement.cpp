#include "runtime/placement.hpp"

#include <algorithm>

#include "kernels/divide.hpp"
#include "kernels/error.hpp"

namespace tori::runtime {

using collectives::Axis;
using collectives::Coords;
using collectives::TorusShape;

Storage storage_for(FfnLayout f) { return f == FfnLayout::ws1d ? Storage::s1d : Storage::s2d; }

namespace {

// A of wg_A (none for weight-stationary layouts).
Axes gathered_axes(FfnLayout f) {
  switch (f) {
    case FfnLayout::wg_x: return Axes::x;
    case FfnLayout::wg_xy: return Axes::xy;
    case FfnLayout::wg_xyz: return Axes::xyz;
    default: return Axes::none;
  }
}

Axes attention_batch_axes(const PhasePlan& p) {
  return p.attn == AttnLayout::batch ? Axes::parse(p.batch_axes, "--plan") : Axes::none;
}

std::string size_str(const TorusShape& s, Axes a) {
  return std::to_string(s.group_size(a)) + " (" + a.str() + " of torus " + s.str() + ")";
}

}  // namespace

void validate_phase(const models::ModelConfig& real, const TorusShape& shape, const PhasePlan& p,
                    int64_t batch, const std::string& what) {
  const std::string where = what + " plan " + p.str() + ": ";
  const int64_t n = shape.ranks();
  const models::ModelConfig c = padded_config(real, n);
  auto need = [&](int64_t value, int64_t parts, const std::string& dim, Axes axes) {
    if (value % parts != 0)
      throw InputError(where + dim + " = " + std::to_string(value) + " is not divisible by " +
                       size_str(shape, axes));
  };
  // Heads, F and V are padded to split over xyz (padding.hpp); E is not (norms average over it).
  need(c.d_model, n, "d_model (E)", Axes::xyz);
  const Axes A = gathered_axes(p.ffn), S = attention_batch_axes(p);
  if (p.attn == AttnLayout::batch && !A.empty() && (A & S) != A)
    throw InputError(where + to_string(p.ffn) + " already splits the batch over " + A.str() +
                     "; batch-sharded attention must include those axes (use batch:xyz or heads)");
  const Axes split = A | S;
  const int64_t parts = shape.group_size(split);
  if (batch < parts)
    throw InputError(where + "batch = " + std::to_string(batch) + " is smaller than the batch-shard count " +
                     size_str(shape, split));
  need(batch, parts, "batch", split);
}

Placement make_placement(const models::ModelConfig& real, const TorusShape& shape, Coords me,
                         const PhasePlan& p, int64_t batch) {
  validate_phase(real, shape, p, batch, "phase");
  const models::ModelConfig c = padded_config(real, shape.ranks());
  Placement pl;
  pl.plan = p;
  pl.shape = shape;
  pl.coords = me;
  pl.padding = plan_padding(real, shape.ranks());
  const int64_t X = shape[Axis::x], YZ = shape.group_size(Axes::yz), n = shape.ranks();
  const int64_t g = collectives::shard_index(shape, me, Axes::xyz);
  const int64_t i = me[Axis::x], j = collectives::shard_index(shape, me, Axes::yz);
  const Axes A = gathered_axes(p.ffn);
  const bool ws = A.empty();

  // Residual "BLE_xyz" (weight-stationary) or "B_A L E_R" (weight-gathered over A).
  pl.batch_axes = A;
  pl.e_axes = ws ? Axes::xyz : A.complement();
  pl.batch_local = batch / shape.group_size(A);
  pl.batch_offset = collectives::shard_index(shape, me, A) * pl.batch_local;
  pl.e_local = c.d_model / shape.group_size(pl.e_axes);
  pl.e_offset = collectives::shard_index(shape, me, pl.e_axes) * pl.e_local;

  // Stored units and rows.
  if (storage_for(p.ffn) == Storage::s1d) {
    pl.stored_units = {g};
    pl.stored_e_rows = c.d_model;
    pl.stored_e_offset = 0;
  } else {
    for (int64_t cc = 0; cc < X; ++cc) pl.stored_units.push_back(cc * YZ + j);
    pl.stored_e_rows = c.d_model / X;
    pl.stored_e_offset = i * pl.stored_e_rows;
  }
  // Units after the input collectives: ws1d/ws2d hold unit g; wg_A gathers the stored units of
  // every member of its A∩yz group (member-major, then c).
  if (ws) {
    pl.units = {g};
  } else {
    const Axes Ayz = A & Axes::yz;
    for (int m = 0; m < shape.group_size(Ayz); ++m) {
      Coords other = collectives::member_coords(shape, me, Ayz, m);
      const int64_t jm = collectives::shard_index(shape, other, Axes::yz);
      for (int64_t cc = 0; cc < X; ++cc) pl.units.push_back(cc * YZ + jm);
    }
  }

  // Attention: heads of my units; batch-sharded attention gathers the heads of my a2a group.
  const Axes S = attention_batch_axes(p);
  pl.a2a_axes = S & A.complement();
  const int64_t G = c.group_size(), Hb = c.n_heads / n;
  auto heads_of = [&](const std::vector<int64_t>& units) {
    std::vector<int64_t> h;
    for (int64_t u : units)
      for (int64_t k = 0; k < Hb; ++k) h.push_back(u * Hb + k);
    return h;
  };
  if (pl.a2a_axes.empty()) {
    pl.heads = heads_of(pl.units);
  } else {
    for (int m = 0; m < shape.group_size(pl.a2a_axes); ++m) {
      // Units of member m: the same formula at its coordinates.
      Coords oc = collectives::member_coords(shape, me, pl.a2a_axes, m);
      PhasePlan heads_only = p;
      heads_only.attn = AttnLayout::heads;
      auto h = heads_of(make_placement(c, shape, oc, heads_only, batch).units);
      std::sort(h.begin(), h.end());
      pl.heads.insert(pl.heads.end(), h.begin(), h.end());
    }
  }
  pl.a2a_heads = pl.heads;
  std::sort(pl.heads.begin(), pl.heads.end());
  const int64_t parts = shape.group_size(pl.a2a_axes);
  pl.attn_batch_local = pl.batch_local / parts;
  pl.attn_batch_offset = pl.batch_offset + collectives::shard_index(shape, me, pl.a2a_axes) * pl.attn_batch_local;
  for (int64_t h : pl.heads)
    if (pl.kv_heads.empty() || pl.kv_heads.back() != h / G) pl.kv_heads.push_back(h / G);
  pl.heads_per_kv = static_cast<int64_t>(pl.heads.size() / pl.kv_heads.size());
  // The attention kernel maps local query head h to local KV head h / heads_per_kv: check that
  // the local heads fall into equal consecutive groups.
  for (size_t k = 0; k < pl.heads.size(); ++k)
    if (pl.kv_heads[k / static_cast<size_t>(pl.heads_per_kv)] != pl.heads[k] / G)
      throw Error("placement " + p.str() + " on " + shape.str() + ": local query heads do not group evenly over KV heads");
  return pl;
}

Sharding Placement::residual_sharding() const {
  auto axes = [](Axes a) { return a.empty() ? std::string() : a.str(); };
  return Sharding({{'B', axes(batch_axes)}, {'L', ""}, {'E', axes(e_axes)}});
}

Sharding Placement::weight_sharding() const {
  return Sharding::parse(storage_for(plan.ffn) == Storage::s1d ? "E F_xyz" : "E_x F_yz");
}

std::string Placement::describe() const {
  return plan.str() + ": residual " + residual_sharding().str() + ", weights stored " + weight_sharding().str() +
         ", " + std::to_string(units.size()) +
         " unit(s), " + std::to_string(heads.size()) + " head(s) x " + std::to_string(attn_batch_local) +
         " sequence(s) attended, " + std::to_string(kv_heads.size()) + " KV head(s) cached" +
         (padding.any() ? " (" + padding.describe() + ")" : "");
}

std::vector<PhasePlan> valid_phase_plans(const models::ModelConfig& c, const TorusShape& shape, int64_t batch) {
  std::vector<PhasePlan> out;
  for (FfnLayout f : {FfnLayout::ws1d, FfnLayout::ws2d, FfnLayout::wg_x, FfnLayout::wg_xy, FfnLayout::wg_xyz})
    for (const char* a : {"heads", "batch:z", "batch:yz", "batch:xyz"}) {
      PhasePlan p = parse_phase_plan(to_string(f) + "/" + a, "--plan");
      try {
        validate_phase(c, shape, p, batch, "");
        out.push_back(p);
      } catch (const InputError&) {
      }
    }
  return out;
}

}  // namespace tori::runtime
