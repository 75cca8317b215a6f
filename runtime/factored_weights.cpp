#include "runtime/factored_weights.hpp"

#include <algorithm>

#include "kernels/error.hpp"
#include "models/weight_names.hpp"

namespace tori::runtime {

using kernels::Tensor;
using kernels::TsvdFactors;

TsvdFactors join_factors(const std::vector<TsvdFactors>& parts, int dim) {
  if (parts.empty()) throw Error("join_factors: nothing to join");
  if (parts.size() == 1) return parts[0];
  TsvdFactors out;
  out.tile = parts[0].tile;
  out.k = dim == 0 ? 0 : parts[0].k;
  out.n = dim == 0 ? parts[0].n : 0;
  for (const TsvdFactors& p : parts) {
    if (p.tile.rows != out.tile.rows || p.tile.cols != out.tile.cols || (dim == 0 ? p.n != out.n : p.k != out.k))
      throw Error("join_factors: parts of different tiles or shapes");
    (dim == 0 ? out.k : out.n) += dim == 0 ? p.k : p.n;
  }
  const int64_t nK = out.tiles_k(), nN = out.tiles_n();
  out.ranks.resize(size_t(nK * nN));
  out.u.resize(out.ranks.size());
  out.v.resize(out.ranks.size());
  const bool scaled = std::any_of(parts.begin(), parts.end(), [](const TsvdFactors& p) { return !p.v_scale.empty(); });
  if (scaled) out.v_scale.resize(out.ranks.size());  // a part without (padding) leaves its tiles undefined
  int64_t at = 0;  // the part's first tile row (dim 0) or column (dim 1)
  for (const TsvdFactors& p : parts) {
    for (int64_t i = 0; i < p.tiles_k(); ++i)
      for (int64_t j = 0; j < p.tiles_n(); ++j) {
        const size_t from = size_t(i * p.tiles_n() + j);
        const size_t to = size_t(dim == 0 ? (at + i) * nN + j : i * nN + at + j);
        out.ranks[to] = p.ranks[from];
        out.u[to] = p.u[from];
        out.v[to] = p.v[from];
        if (!p.v_scale.empty()) out.v_scale[to] = p.v_scale[from];
      }
    at += dim == 0 ? p.tiles_k() : p.tiles_n();
  }
  return out;
}

TsvdFactors zero_factors(int64_t k, int64_t n, kernels::TileShape tile) {
  if (!whole_tiles(0, k, tile.rows) || !whole_tiles(0, n, tile.cols))
    throw Error("zero_factors: [" + std::to_string(k) + ", " + std::to_string(n) + "] is not whole tiles");
  TsvdFactors f;
  f.k = k;
  f.n = n;
  f.tile = tile;
  const size_t tiles = size_t((k / tile.rows) * (n / tile.cols));
  f.ranks.assign(tiles, 1);
  // Shared zero factors (Tensor(shape) zero-fills): every tile reads the same two tensors.
  f.u.assign(tiles, Tensor({tile.rows, 1}, kernels::DType::f32));
  f.v.assign(tiles, Tensor({1, tile.cols}, kernels::DType::f32));
  return f;
}

std::optional<TsvdFactors> factor_block(const TsvdFactors& f, int64_t r0, int64_t nr, int64_t c0, int64_t nc) {
  if (!whole_tiles(r0, nr, f.tile.rows) || !whole_tiles(c0, nc, f.tile.cols) || r0 + nr > f.k || c0 + nc > f.n)
    return std::nullopt;
  if (r0 == 0 && c0 == 0 && nr == f.k && nc == f.n) return f;
  TsvdFactors b;
  b.k = nr;
  b.n = nc;
  b.tile = f.tile;
  const int64_t i0 = r0 / f.tile.rows, j0 = c0 / f.tile.cols;
  for (int64_t i = i0; i < i0 + nr / f.tile.rows; ++i)
    for (int64_t j = j0; j < j0 + nc / f.tile.cols; ++j) {
      const size_t t = size_t(i * f.tiles_n() + j);
      b.ranks.push_back(f.ranks[t]);
      b.u.push_back(f.u[t]);
      b.v.push_back(f.v[t]);
      if (!f.v_scale.empty()) b.v_scale.push_back(f.v_scale[t]);
    }
  return b;
}

int64_t factor_floats(const TsvdFactors& f) {
  return int64_t(f.ranks.size()) + f.parameters() + (f.v_scale.empty() ? 0 : int64_t(f.ranks.size()) * f.tile.cols);
}

Tensor flatten_factors(const TsvdFactors& f, int64_t floats) {
  if (floats < factor_floats(f)) throw Error("flatten_factors: " + std::to_string(floats) + " floats are too few");
  Tensor out({1, floats}, kernels::DType::f32);  // zero-filled: the padding
  float* o = out.data<float>();
  for (int64_t r : f.ranks) *o++ = float(r);
  for (const auto* side : {&f.u, &f.v})
    for (const Tensor& t : *side) o = std::copy_n(t.data<float>(), t.numel(), o);
  for (const Tensor& s : f.v_scale)  // int8 factors: the V scales, zero for a tile without (padding)
    o = s.defined() ? std::copy_n(s.data<float>(), s.numel(), o) : o + f.tile.cols;
  return out;
}

TsvdFactors unflatten_factors(const float* data, int64_t k, int64_t n, kernels::TileShape tile, bool v_scales) {
  TsvdFactors f;
  f.k = k;
  f.n = n;
  f.tile = tile;
  const size_t tiles = size_t(f.tiles_k() * f.tiles_n());
  for (size_t t = 0; t < tiles; ++t) f.ranks.push_back(int64_t(*data++));
  for (size_t t = 0; t < tiles; ++t) {
    Tensor u = Tensor::empty({tile.rows, f.ranks[t]}, kernels::DType::f32);
    std::copy_n(data, u.numel(), u.data<float>());
    data += u.numel();
    f.u.push_back(std::move(u));
  }
  for (size_t t = 0; t < tiles; ++t) {
    Tensor v = Tensor::empty({f.ranks[t], tile.cols}, kernels::DType::f32);
    std::copy_n(data, v.numel(), v.data<float>());
    data += v.numel();
    f.v.push_back(std::move(v));
  }
  if (v_scales)
    for (size_t t = 0; t < tiles; ++t) {
      Tensor s = Tensor::empty({tile.cols}, kernels::DType::f32);
      std::copy_n(data, tile.cols, s.data<float>());
      data += tile.cols;
      f.v_scale.push_back(std::move(s));
    }
  return f;
}

std::optional<TsvdPricing> run_pricing(const models::WeightSource& src, kernels::WeightFormat f) {
  std::optional<TsvdPricing> p = tsvd_pricing(src);
  if (p && !runs_factors(f, p->int8)) p.reset();
  return p;
}

bool TsvdPricing::factored(const std::vector<std::string>& kinds) const {
  for (const auto& k : kinds)
    if (!density.count(k)) return false;
  return true;
}

double TsvdPricing::stored(int64_t rows, const std::vector<std::pair<std::string, int64_t>>& kind_cols) const {
  double s = 0;
  for (const auto& [kind, cols] : kind_cols) s += density.at(kind) * double(rows) * double(cols);
  return s;
}

std::optional<TsvdPricing> tsvd_pricing(const models::WeightSource& src) {
  const models::ModelConfig& c = src.config();
  TsvdPricing p;
  p.int8 = true;  // until a compressed kind is not
  for (const char* kind : {"wq", "wk", "wv", "wo", "w_in", "w_gate", "w_out"}) {
    double params = 0, dense = 0;
    for (int64_t l = 0; l < c.n_layers; ++l) {
      const std::string name = models::layer_tensor(l, kind);
      const std::optional<kernels::TileShape> t = src.factor_tile(name);
      if (!t) continue;
      p.tile = *t;
      if (!src.int8_factors(name)) p.int8 = false;
      params += double(src.factor_parameters(name));
      const kernels::Shape shape = models::find_tensor(c, name).shape;
      dense += double(shape[0]) * double(shape[1]);
    }
    if (dense > 0) p.density[kind] = params / dense;
  }
  if (p.density.empty()) return std::nullopt;
  return p;
}

}  // namespace tori::runtime
