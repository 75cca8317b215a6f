#include "kernels/tsvd.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <tuple>
#include <sstream>

#include "kernels/cpu_features.hpp"
#include "kernels/error.hpp"
#include "kernels/flop_counter.hpp"
#include "kernels/onednn_matmul.hpp"
#include "kernels/quantize.hpp"
#include "kernels/tsvd_fused.hpp"

namespace tori::kernels {

namespace {

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

void check_tiling(int64_t K, int64_t N, TileShape t, const std::string& what) {
  if (t.rows < 1 || t.cols < 1)
    throw InputError(what + ": tile " + std::to_string(t.rows) + "x" + std::to_string(t.cols) +
                     " must have at least one row and one column");
  if (K % t.rows || N % t.cols)
    throw InputError(what + ": tile " + std::to_string(t.rows) + "x" + std::to_string(t.cols) +
                     " does not divide the shape [" + std::to_string(K) + ", " + std::to_string(N) +
                     "] (allowed: tile rows dividing " + std::to_string(K) + ", tile columns dividing " +
                     std::to_string(N) + ")");
}

// Tile (i, j) of w [K, N] as a contiguous [T_k, T_n] f32 copy.
std::vector<float> copy_tile(const Tensor& w, TileShape t, int64_t i, int64_t j) {
  const int64_t N = w.size(1);
  const float* W = w.data<float>();
  std::vector<float> a(size_t(t.rows * t.cols));
  for (int64_t r = 0; r < t.rows; ++r)
    std::memcpy(&a[size_t(r * t.cols)], W + (i * t.rows + r) * N + j * t.cols, size_t(t.cols) * 4);
  return a;
}

// Lower Cholesky factor L of G + λI (λ = kWhitenDamping · mean diag G), row-major [T, T].
std::vector<float> whitening_factor(const Tensor& g, const std::string& what) {
  const int64_t T = g.size(0);
  std::vector<float> L(g.to_vector());
  double mean_diag = 0;
  for (int64_t d = 0; d < T; ++d) mean_diag += L[size_t(d * T + d)];
  mean_diag /= double(T);
  const float lambda = float(kWhitenDamping * std::max(mean_diag, 1e-30));
  for (int64_t d = 0; d < T; ++d) L[size_t(d * T + d)] += lambda;
  const lapack_int info = LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'L', lapack_int(T), L.data(), lapack_int(T));
  if (info != 0)
    throw Error(what + ": activation Gram matrix is not positive definite after damping (spotrf info " +
                std::to_string(info) + ")");
  for (int64_t r = 0; r < T; ++r)
    for (int64_t c = r + 1; c < T; ++c) L[size_t(r * T + c)] = 0.f;
  return L;
}

struct TileSvd {
  std::vector<float> s, u, vt;  // u [m, p], vt [p, n], p = min(m, n)
};

// SVD of a [m, n] row-major (destroyed).
TileSvd svd(std::vector<float>& a, int64_t m, int64_t n, const std::string& what) {
  const int64_t p = std::min(m, n);
  TileSvd r;
  r.s.resize(size_t(p));
  r.u.resize(size_t(m * p));
  r.vt.resize(size_t(p * n));
  const lapack_int info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', lapack_int(m), lapack_int(n), a.data(),
                                         lapack_int(n), r.s.data(), r.u.data(), lapack_int(p), r.vt.data(),
                                         lapack_int(n));
  if (info != 0) throw Error(what + ": LAPACKE_sgesdd failed (info " + std::to_string(info) + ")");
  return r;
}

// The tile's SVD, of Lᵀ·W when whitened (L given), else of W.
TileSvd tile_svd(const Tensor& w, TileShape t, int64_t i, int64_t j, const std::vector<float>* L,
                 const std::string& what) {
  std::vector<float> a = copy_tile(w, t, i, j);
  if (L)  // a = Lᵀ · a
    cblas_strmm(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, int(t.rows), int(t.cols), 1.f,
                L->data(), int(t.rows), a.data(), int(t.cols));
  return svd(a, t.rows, t.cols, what);
}

std::vector<std::vector<float>> whitening_factors(const ActivationGram& gram, int64_t nK, TileShape t,
                                                  const std::string& what) {
  std::vector<std::vector<float>> Ls;
  if (gram.gram.empty()) return Ls;
  if (int64_t(gram.gram.size()) != nK)
    throw Error(what + ": " + std::to_string(gram.gram.size()) + " activation Gram matrices for " +
                std::to_string(nK) + " row blocks");
  for (const Tensor& g : gram.gram) {
    if (g.rank() != 2 || g.size(0) != t.rows || g.size(1) != t.rows || g.dtype() != DType::f32)
      throw Error(what + ": activation Gram matrix must be f32 [" + std::to_string(t.rows) + ", " +
                  std::to_string(t.rows) + "], got " + shape_str(g.shape()));
    Ls.push_back(whitening_factor(g, what));
  }
  return Ls;
}

void check_weight(const Tensor& w, const std::string& what) {
  if (w.rank() != 2 || w.dtype() != DType::f32)
    throw Error(what + ": TSVD needs an f32 [K, N] weight, got " + std::string(dtype_name(w.dtype())) + " " +
                shape_str(w.shape()));
}

}  // namespace

std::string RankRule::describe() const {
  if (ratio > 0) return "ratio " + num(ratio);
  if (energy > 0) return "energy " + num(energy);
  return "rank " + std::to_string(rank);
}

void check_tile_rank(TileShape t, int64_t rank, const std::string& what) {
  const int64_t full = std::min(t.rows, t.cols);
  if (rank < 1 || rank >= full)
    throw InputError(what + ": rank " + std::to_string(rank) + " for tile " + std::to_string(t.rows) + "x" +
                     std::to_string(t.cols) + " (allowed: 1 to " + std::to_string(full - 1) +
                     "; a rank at the tile size stores more numbers than the tile)");
}

int64_t rank_for_ratio(TileShape t, double ratio, const std::string& flag) {
  if (!(ratio >= 1.0))
    throw InputError(flag + ": compression ratio " + num(ratio) + " (allowed: a number >= 1; 1 = dense)");
  const int64_t r = int64_t(std::floor(double(t.rows * t.cols) / (ratio * double(t.rows + t.cols))));
  if (r < 1)
    throw InputError(flag + ": ratio " + num(ratio) + " leaves rank 0 on " + std::to_string(t.rows) + "x" +
                     std::to_string(t.cols) + " tiles (allowed: ratio <= " +
                     num(double(t.rows * t.cols) / double(t.rows + t.cols)) + ", or larger tiles)");
  check_tile_rank(t, r, flag + " " + num(ratio));
  return r;
}

int64_t TsvdFactors::parameters() const {
  int64_t p = 0;
  for (int64_t r : ranks) p += r * (tile.rows + tile.cols);
  return p;
}

Tensor TsvdFactors::reconstruct() const {
  Tensor w({k, n}, DType::f32);
  float* W = w.data<float>();
  for (int64_t i = 0; i < tiles_k(); ++i)
    for (int64_t j = 0; j < tiles_n(); ++j) {
      const size_t t = size_t(i * tiles_n() + j);
      const int64_t r = ranks[t];
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(tile.rows), int(tile.cols), int(r), 1.f,
                  u[t].data<float>(), int(r), v[t].data<float>(), int(tile.cols), 0.f,
                  W + i * tile.rows * n + j * tile.cols, int(n));
    }
  return w;
}

TileSpectrum tsvd_spectrum(const Tensor& w, TileShape tile, const ActivationGram& gram, const std::string& what) {
  check_weight(w, what);
  check_tiling(w.size(0), w.size(1), tile, what);
  TileSpectrum sp;
  sp.tile = tile;
  sp.tiles_k = w.size(0) / tile.rows;
  sp.tiles_n = w.size(1) / tile.cols;
  const auto Ls = whitening_factors(gram, sp.tiles_k, tile, what);
  sp.s.resize(size_t(sp.tiles_k * sp.tiles_n));
  for (int64_t i = 0; i < sp.tiles_k; ++i)
    for (int64_t j = 0; j < sp.tiles_n; ++j)
      sp.s[size_t(i * sp.tiles_n + j)] = tile_svd(w, tile, i, j, Ls.empty() ? nullptr : &Ls[size_t(i)], what).s;
  return sp;
}

std::vector<int64_t> tsvd_ranks(const TileSpectrum& spec, const RankRule& rule) {
  const int set = (rule.ratio > 0) + (rule.energy > 0) + (rule.rank > 0);
  if (set != 1) throw InputError("TSVD rank: give exactly one of a ratio, an energy share or a rank");
  std::vector<int64_t> ranks(spec.s.size());
  if (rule.ratio > 0) {
    std::fill(ranks.begin(), ranks.end(), rank_for_ratio(spec.tile, rule.ratio));
  } else if (rule.rank > 0) {
    check_tile_rank(spec.tile, rule.rank, "--rank");
    std::fill(ranks.begin(), ranks.end(), rule.rank);
  } else {
    if (!(rule.energy > 0 && rule.energy <= 1))
      throw InputError("--energy: " + num(rule.energy) + " (allowed: a share in (0, 1])");
    const int64_t max_rank = std::min(spec.tile.rows, spec.tile.cols) - 1;
    for (size_t t = 0; t < spec.s.size(); ++t) {
      double total = 0, kept = 0;
      for (float s : spec.s[t]) total += double(s) * s;
      int64_t r = 0;
      while (r < max_rank && kept < rule.energy * total) {
        kept += double(spec.s[t][size_t(r)]) * spec.s[t][size_t(r)];
        ++r;
      }
      ranks[t] = std::max<int64_t>(r, 1);
    }
  }
  return ranks;
}

TsvdFactors tsvd_decompose(const Tensor& w, TileShape tile, const std::vector<int64_t>& ranks,
                           const ActivationGram& gram, const std::string& what) {
  check_weight(w, what);
  check_tiling(w.size(0), w.size(1), tile, what);
  TsvdFactors f;
  f.k = w.size(0);
  f.n = w.size(1);
  f.tile = tile;
  const int64_t nK = f.tiles_k(), nN = f.tiles_n();
  if (ranks.size() == 1)
    f.ranks.assign(size_t(nK * nN), ranks[0]);
  else if (int64_t(ranks.size()) == nK * nN)
    f.ranks = ranks;
  else
    throw Error(what + ": " + std::to_string(ranks.size()) + " ranks for " + std::to_string(nK * nN) + " tiles");
  for (int64_t r : f.ranks) check_tile_rank(tile, r, what);
  const auto Ls = whitening_factors(gram, nK, tile, what);
  const int64_t p = std::min(tile.rows, tile.cols);
  for (int64_t i = 0; i < nK; ++i)
    for (int64_t j = 0; j < nN; ++j) {
      const std::vector<float>* L = Ls.empty() ? nullptr : &Ls[size_t(i)];
      const TileSvd d = tile_svd(w, tile, i, j, L, what);
      const int64_t r = f.ranks[size_t(i * nN + j)];
      Tensor u({tile.rows, r}, DType::f32), v({r, tile.cols}, DType::f32);
      float* U = u.data<float>();
      float* V = v.data<float>();
      for (int64_t c = 0; c < r; ++c) {
        const float rs = std::sqrt(d.s[size_t(c)]);
        for (int64_t a = 0; a < tile.rows; ++a) U[a * r + c] = d.u[size_t(a * p + c)] * rs;
        for (int64_t b = 0; b < tile.cols; ++b) V[c * tile.cols + b] = d.vt[size_t(c * tile.cols + b)] * rs;
      }
      if (L)  // U = L⁻ᵀ · U: the factor that multiplies the raw (unwhitened) input
        cblas_strsm(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, int(tile.rows), int(r), 1.f,
                    L->data(), int(tile.rows), U, int(r));
      f.u.push_back(std::move(u));
      f.v.push_back(std::move(v));
    }
  return f;
}

int64_t TsvdWeight::weight_bytes() const {
  int64_t b = 0;
  for (const auto& u : u_rows) b += u.weight_bytes();
  for (const auto& v : v_cols) b += v.weight_bytes();
  return b;
}

std::string TsvdWeight::describe() const {
  int64_t lo = ranks.empty() ? 0 : *std::min_element(ranks.begin(), ranks.end());
  int64_t hi = ranks.empty() ? 0 : *std::max_element(ranks.begin(), ranks.end());
  std::string s = "[" + std::to_string(k) + ", " + std::to_string(n) + "] tsvd " + std::to_string(tile.rows) + "x" +
                  std::to_string(tile.cols) + " r " + std::to_string(lo);
  if (hi != lo) s += ".." + std::to_string(hi);
  if (!u_rows.empty()) {
    const std::string d = u_rows[0].describe();
    s += " " + d.substr(d.rfind(' ') + 1);
  }
  return s;
}

namespace {

// One stacked factor. f32/bf16 on oneDNN: packed as a dense weight of its shape would be, in the
// layout oneDNN picks (on AVX-512 machines column panels of 64, which the small-batch kernel reads
// where they lie and the GEMMs above it multiply with oneDNN's packed kernel), when that layout is
// such panels and pads the columns by at most kTsvdPanelPadding; otherwise row-major, multiplied in
// place by oneDNN's plain-layout matmul (a view, no second copy), since the small-batch kernel
// reads row-major too and then reads exactly the factor's bytes (SmolLM2's Û_i of 144 columns
// would read 192 in panels, a [576, 192] projection's Û of 24 columns 64). int8: s8 panels;
// openblas and reference: plain row-major.
constexpr double kTsvdPanelPadding = 1.125;

PackedWeight pack_factor(const Tensor& t, WeightFormat fmt, Backend backend, const Tensor& scales = Tensor()) {
  const bool dense_fp = backend == Backend::onednn && (fmt == WeightFormat::f32 || fmt == WeightFormat::bf16);
  const int64_t cols = t.size(1), padded = (cols + detail::kGemvPanelCols - 1) / detail::kGemvPanelCols * detail::kGemvPanelCols;
  if (!dense_fp || double(padded) <= kTsvdPanelPadding * double(cols)) {
    PackedWeight p = pack_weight(t, fmt, backend, fmt == WeightFormat::int8 ? scales : Tensor());
    if (!dense_fp || p.onednn->panels != detail::PanelLayout::none) return p;
  }
  PackedWeight p;
  p.format = fmt;
  p.backend = backend;
  p.k = t.size(0);
  p.n = cols;
  p.plain = fmt == WeightFormat::f32 ? t : t.to(DType::bf16);
  p.onednn = detail::onednn_view_weight(p.plain, 0, p.n);
  return p;
}

}  // namespace

TsvdWeight pack_tsvd(const TsvdFactors& f, WeightFormat fmt, Backend backend) {
  TsvdWeight w;
  w.k = f.k;
  w.n = f.n;
  w.tile = f.tile;
  w.ranks = f.ranks;
  const int64_t nK = f.tiles_k(), nN = f.tiles_n(), Tk = f.tile.rows, Tn = f.tile.cols;
  const size_t nt = size_t(nK * nN);
  w.u_col.resize(nt);
  w.v_row.resize(nt);
  std::vector<int64_t> R(size_t(nK), 0), Rt(size_t(nN), 0);
  for (int64_t i = 0; i < nK; ++i)
    for (int64_t j = 0; j < nN; ++j) {
      const size_t t = size_t(i * nN + j);
      w.u_col[t] = R[size_t(i)];
      w.v_row[t] = Rt[size_t(j)];
      R[size_t(i)] += f.ranks[t];
      Rt[size_t(j)] += f.ranks[t];
      w.total_rank += f.ranks[t];
    }
  for (int64_t i = 0; i < nK; ++i) {  // Û_i = [U_i0 | U_i1 | ...]
    Tensor u({Tk, R[size_t(i)]}, DType::f32);
    float* U = u.data<float>();
    for (int64_t j = 0; j < nN; ++j) {
      const size_t t = size_t(i * nN + j);
      const int64_t r = f.ranks[t];
      const float* src = f.u[t].data<float>();
      for (int64_t a = 0; a < Tk; ++a) std::memcpy(U + a * R[size_t(i)] + w.u_col[t], src + a * r, size_t(r) * 4);
    }
    w.u_rows.push_back(pack_factor(u, fmt, backend));
  }
  for (int64_t j = 0; j < nN; ++j) {  // V̂_j = [V_0j; V_1j; ...]
    Tensor v({Rt[size_t(j)], Tn}, DType::f32);
    float* V = v.data<float>();
    for (int64_t i = 0; i < nK; ++i) {
      const size_t t = size_t(i * nN + j);
      std::memcpy(V + w.v_row[t] * Tn, f.v[t].data<float>(), size_t(f.ranks[t] * Tn) * 4);
    }
    w.v_cols.push_back(pack_factor(v, fmt, backend, fmt == WeightFormat::int8 ? tsvd_v_scales(f, j) : Tensor()));
  }
  return w;
}

Tensor tsvd_v_scales(const TsvdFactors& f, int64_t j) {
  const int64_t Tn = f.tile.cols, nN = f.tiles_n();
  Tensor given({Tn}, DType::f32), amax({Tn}, DType::f32);  // zero-filled: none given; V̂_j's maxima
  float* g = given.data<float>();
  float* a = amax.data<float>();
  for (int64_t i = 0; i < f.tiles_k(); ++i) {
    const size_t t = size_t(i * nN + j);
    const Tensor own = column_amax(f.v[t]);
    for (int64_t c = 0; c < Tn; ++c) a[c] = std::max(a[c], own.data<float>()[c]);
    const Tensor& s = f.v_scale.empty() ? Tensor() : f.v_scale[t];
    if (!s.defined()) continue;
    if (s.numel() != Tn)
      throw Error("tsvd_v_scales: tile (" + std::to_string(i) + ", " + std::to_string(j) + ") has " +
                  std::to_string(s.numel()) + " V scales for " + std::to_string(Tn) + " columns");
    for (int64_t c = 0; c < Tn; ++c) g[c] = std::max(g[c], s.data<float>()[c]);
  }
  const Tensor fallback = int8_scales(amax);
  for (int64_t c = 0; c < Tn; ++c)
    if (g[c] <= 0.f) g[c] = fallback.data<float>()[c];
  return given;
}

TsvdFactors tsvd_as_packed(const TsvdFactors& f, WeightFormat fmt) {
  TsvdFactors r = f;
  if (fmt == WeightFormat::bf16) {
    for (auto* side : {&r.u, &r.v})
      for (Tensor& t : *side) t = t.to(DType::bf16).to(DType::f32);
  } else if (fmt == WeightFormat::int8) {
    const int64_t nN = f.tiles_n();
    for (int64_t j = 0; j < nN; ++j) {
      const Tensor s = tsvd_v_scales(f, j);
      for (int64_t i = 0; i < f.tiles_k(); ++i) {
        const size_t t = size_t(i * nN + j);
        r.u[t] = dequantize_int8(quantize_int8(f.u[t]));  // Û_i's columns are its tiles' columns
        r.v[t] = dequantize_int8(quantize_int8(f.v[t], s));
      }
    }
  } else if (fmt != WeightFormat::f32) {
    throw Error("tsvd_as_packed: factors are f32, bf16 or int8, not " + std::string(weight_format_name(fmt)));
  }
  return r;
}

namespace {

// A [M, cols] f32 view of per-thread scratch that only grows, one buffer per (role, index, cols):
// steady-state decode allocates nothing, and weights of equal shapes share buffers.
enum Role { kXBlock, kZ, kZt, kYBlock };
Tensor scratch_rows(Role role, int64_t index, int64_t M, int64_t cols) {
  thread_local std::map<std::tuple<int, int64_t, int64_t>, Tensor> pool;
  Tensor& t = pool[{int(role), index, cols}];
  if (!t.defined() || t.size(0) < M) t = Tensor::empty({M, cols}, DType::f32);
  return t.narrow0(0, M);
}

int64_t rows_of(const Tensor& x, int64_t K, Tensor& y, int64_t N, const Epilogue& ep, const char* what) {
  if (x.rank() < 1 || x.size(-1) != K || x.dtype() == DType::s8)
    throw Error(std::string(what) + ": x must be [..., " + std::to_string(K) + "] f32 or bf16, got " +
                std::string(dtype_name(x.dtype())) + " " + shape_str(x.shape()));
  const int64_t M = x.numel() / K;
  if (!y.defined()) {
    if (ep.accumulate) throw Error(std::string(what) + ": accumulate needs an existing output tensor");
    Shape s = x.shape();
    s.back() = N;
    y = Tensor::empty(s, DType::f32);
  }
  if (y.dtype() != DType::f32 || y.numel() != M * N || y.size(-1) != N)
    throw Error(std::string(what) + ": y must be f32 [" + std::to_string(M) + " rows, " + std::to_string(N) +
                "], got " + std::string(dtype_name(y.dtype())) + " " + shape_str(y.shape()));
  return M;
}

double tsvd_flops(int64_t M, const TsvdWeight& w) {
  double f = 0;
  for (int64_t r : w.ranks) f += 2.0 * double(M) * double(r) * double(w.tile.rows + w.tile.cols);
  return f;
}

// Both stages in one OpenMP region on the stored factors (tsvd_fused.hpp).
void fused_matmul(const Tensor& x, int64_t M, const TsvdWeight& w, Tensor& y, Epilogue ep) {
  thread_local std::vector<detail::FusedFactor> u, v;
  u.clear();
  v.clear();
  auto view = [](const PackedWeight& p) {  // the factor where it lies (pack_factor)
    detail::FusedFactor f;
    f.rows = p.k;
    f.cols = p.n;
    if (p.format == WeightFormat::int8) {
      f.layout = detail::FusedLayout::panels_s8;
      f.data = p.panels.raw();
      f.scales = p.scales.data<float>();
      f.panel_stride = p.k * detail::kGemvPanelCols;
    } else if (p.onednn && p.onednn->panels != detail::PanelLayout::none) {
      f.layout = p.onednn->panels == detail::PanelLayout::f32_16a64b ? detail::FusedLayout::panels_f32
                                                                      : detail::FusedLayout::panels_bf16;
      f.data = p.onednn->mem.get_data_handle();
      f.panel_stride = p.onednn->kp * detail::kGemvPanelCols;
    } else {
      f.layout = p.format == WeightFormat::bf16 ? detail::FusedLayout::rows_bf16 : detail::FusedLayout::rows_f32;
      f.data = p.plain.raw();
    }
    return f;
  };
  for (const auto& p : w.u_rows) u.push_back(view(p));
  for (const auto& p : w.v_cols) v.push_back(view(p));
  detail::TsvdFusedWeight fw;
  fw.k = w.k;
  fw.n = w.n;
  fw.tk = w.tile.rows;
  fw.tn = w.tile.cols;
  fw.nk = w.tiles_k();
  fw.nn = w.tiles_n();
  fw.u = u.data();
  fw.v = v.data();
  fw.ranks = w.ranks.data();
  fw.u_col = w.u_col.data();
  fw.v_row = w.v_row.data();
  const Tensor x2 = x.to(DType::f32);
  Tensor z = scratch_rows(kZ, -1, M, w.total_rank);
  count_matmul_flops(uint64_t(tsvd_flops(M, w)));
  detail::tsvd_fused_avx512(fw, x2.data<float>(), M, z.data<float>(), y.data<float>(), ep.scale, ep.accumulate);
}

}  // namespace

bool tsvd_fused_applies(int64_t M, const TsvdWeight& w) {
  if (M > kTsvdFusedMaxM || w.u_rows.empty() || w.u_rows[0].backend == Backend::reference) return false;
  const WeightFormat fmt = w.u_rows[0].format;
  if (fmt != WeightFormat::f32 && fmt != WeightFormat::bf16 && fmt != WeightFormat::int8) return false;
  return cpu_has_avx512();
}

int64_t tsvd_factors_in_onednn_panels(const TsvdWeight& w) {
  int64_t n = 0;
  for (const auto* side : {&w.u_rows, &w.v_cols})
    for (const PackedWeight& p : *side) n += p.onednn && p.onednn->panels != detail::PanelLayout::none;
  return n;
}

void tsvd_matmul(const Tensor& x, const TsvdWeight& w, Tensor& y, Epilogue ep) {
  if (!w.defined()) throw Error("tsvd_matmul: weight is not packed");
  const int64_t M = rows_of(x, w.k, y, w.n, ep, "tsvd_matmul");
  if (M == 0) return;
  if (tsvd_fused_applies(M, w)) return fused_matmul(x, M, w, y, ep);
  // Every GEMM runs on contiguous operands (oneDNN 2.6 falls back to its reference matmul for
  // row-strided ones): x's column blocks, Z and y's column blocks are copied where they lie apart.
  const int64_t nK = w.tiles_k(), nN = w.tiles_n(), Tk = w.tile.rows, Tn = w.tile.cols;
  const Tensor x2 = x.to(DType::f32).reshape({M, w.k});
  std::vector<Tensor> z(static_cast<size_t>(nK));
  for (int64_t i = 0; i < nK; ++i) {  // Z_i [M, R_i] = x[:, block i] · Û_i
    Tensor xi = x2;
    if (nK > 1) {
      xi = scratch_rows(kXBlock, i, M, Tk);
      const float* src = x2.data<float>() + i * Tk;
      float* dst = xi.data<float>();
      for (int64_t m = 0; m < M; ++m) std::memcpy(dst + m * Tk, src + m * w.k, size_t(Tk) * 4);
    }
    z[size_t(i)] = scratch_rows(kZ, i, M, w.u_rows[size_t(i)].n);
    matmul(xi, w.u_rows[size_t(i)], z[size_t(i)]);
  }
  Tensor y2 = y.reshape({M, w.n});
  for (int64_t j = 0; j < nN; ++j) {  // y[:, block j] (=|+=) scale · [Z_0j | Z_1j | ...] · V̂_j
    const int64_t Rj = w.v_cols[size_t(j)].k;
    Tensor zj = z[0];
    if (nK > 1 || nN > 1) {
      zj = scratch_rows(kZt, j, M, Rj);
      float* dst = zj.data<float>();
      for (int64_t i = 0; i < nK; ++i) {
        const size_t t = size_t(i * nN + j);
        const int64_t r = w.ranks[t], Ri = w.u_rows[size_t(i)].n;
        const float* src = z[size_t(i)].data<float>() + w.u_col[t];
        for (int64_t m = 0; m < M; ++m) std::memcpy(dst + m * Rj + w.v_row[t], src + m * Ri, size_t(r) * 4);
      }
    }
    if (nN == 1) {
      matmul(zj, w.v_cols[0], y2, ep);
      continue;
    }
    Tensor yj = scratch_rows(kYBlock, j, M, Tn);
    if (ep.accumulate)
      for (int64_t m = 0; m < M; ++m) std::memcpy(yj.data<float>() + m * Tn, y2.data<float>() + m * w.n + j * Tn, size_t(Tn) * 4);
    matmul(zj, w.v_cols[size_t(j)], yj, ep);
    for (int64_t m = 0; m < M; ++m) std::memcpy(y2.data<float>() + m * w.n + j * Tn, yj.data<float>() + m * Tn, size_t(Tn) * 4);
  }
}

void tsvd_matmul_ref(const Tensor& x, const TsvdFactors& f, Tensor& y, Epilogue ep) {
  const int64_t M = rows_of(x, f.k, y, f.n, ep, "tsvd_matmul_ref");
  if (M == 0) return;
  const Tensor xf = x.to(DType::f32);
  const float* X = xf.data<float>();
  float* Y = y.data<float>();
  const int64_t nK = f.tiles_k(), nN = f.tiles_n(), Tk = f.tile.rows, Tn = f.tile.cols;
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) {
    std::vector<double> acc(size_t(f.n), 0.0), z;
    for (int64_t i = 0; i < nK; ++i)
      for (int64_t j = 0; j < nN; ++j) {
        const size_t t = size_t(i * nN + j);
        const int64_t r = f.ranks[t];
        const float* U = f.u[t].data<float>();
        const float* V = f.v[t].data<float>();
        z.assign(size_t(r), 0.0);
        for (int64_t a = 0; a < Tk; ++a)
          for (int64_t c = 0; c < r; ++c) z[size_t(c)] += double(X[m * f.k + i * Tk + a]) * U[a * r + c];
        for (int64_t c = 0; c < r; ++c)
          for (int64_t b = 0; b < Tn; ++b) acc[size_t(j * Tn + b)] += z[size_t(c)] * V[c * Tn + b];
      }
    for (int64_t b = 0; b < f.n; ++b) {
      const float v = float(double(ep.scale) * acc[size_t(b)]);
      Y[m * f.n + b] = ep.accumulate ? Y[m * f.n + b] + v : v;
    }
  }
}

KernelCost tsvd_matmul_cost(int64_t M, const TsvdWeight& w) {
  KernelCost c;
  c.flops = tsvd_flops(M, w);
  c.weight_bytes = double(w.weight_bytes());
  // x, y and Z once each, plus the copies that make the GEMMs' operands contiguous: x's blocks
  // (nK > 1), Z regrouped (nK > 1 or nN > 1), y's blocks (nN > 1; read too when accumulating).
  const double x = 4.0 * double(M) * double(w.k), y = 4.0 * double(M) * double(w.n);
  const double z = 4.0 * double(M) * double(w.total_rank);
  if (tsvd_fused_applies(M, w)) {  // no copies: x and y once, Z written then read
    c.bytes = c.weight_bytes + x + y + 2 * z;
    return c;
  }
  const int64_t nK = w.tiles_k(), nN = w.tiles_n();
  c.bytes = c.weight_bytes + x + y + 2 * z + (nK > 1 ? 2 * x : 0) + (nK > 1 || nN > 1 ? 2 * z : 0) +
            (nN > 1 ? 2 * y : 0);
  return c;
}

}  // namespace tori::kernels
