#include "models/tsvd_checkpoint.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "kernels/error.hpp"
#include "kernels/matmul.hpp"
#include "kernels/quantize.hpp"
#include "models/hf_checkpoint.hpp"
#include "models/json_file.hpp"
#include "models/safetensors_reader.hpp"
#include "models/safetensors_writer.hpp"
#include "models/weight_names.hpp"

namespace tori::models {

namespace fs = std::filesystem;
using kernels::DType;
using kernels::Tensor;
using kernels::TileShape;

namespace {

constexpr const char* kFactorsFile = "tsvd.safetensors";
constexpr const char* kMetaFile = "tsvd.json";

std::string factor_name(const std::string& matrix, char uv, int64_t i, int64_t j) {
  return matrix + "." + uv + "." + std::to_string(i) + "." + std::to_string(j);
}
// int8 scales: "<m>.u_scale.<i>.<j>" per tile, "<m>.v_scale.<j>" per column block (i unused).
std::string scale_name(const std::string& matrix, char uv, int64_t i, int64_t j) {
  return uv == 'u' ? matrix + ".u_scale." + std::to_string(i) + "." + std::to_string(j)
                   : matrix + ".v_scale." + std::to_string(j);
}

double frobenius(const Tensor& a) {
  double s = 0;
  const float* p = a.data<float>();
  for (int64_t i = 0; i < a.numel(); ++i) s += double(p[i]) * p[i];
  return std::sqrt(s);
}

// a [M, K] · b [K, N] -> [M, N] f32 (OpenBLAS sgemm): a tile's U·V, or inputs times a weight.
Tensor product(const Tensor& a, const Tensor& b) {
  Tensor y;
  kernels::matmul(a, kernels::pack_weight(b, kernels::WeightFormat::f32, kernels::Backend::openblas), y);
  return y;
}

}  // namespace

std::vector<std::string> tsvd_matrix_names(const ModelConfig& c, const std::string& matrices) {
  std::vector<std::string> kinds;
  if (matrices == "all")
    kinds = {"wq", "wk", "wv", "wo", "w_in", "w_gate", "w_out"};
  else if (matrices == "ffn")
    kinds = {"w_in", "w_gate", "w_out"};
  else
    throw InputError("--matrices: '" + matrices + "' (allowed: all, ffn)");
  std::vector<std::string> names;
  for (int64_t l = 0; l < c.n_layers; ++l)
    for (const auto& k : kinds) {
      if (k == "w_gate" && c.mlp != Mlp::swiglu) continue;
      names.push_back(layer_tensor(l, k));
    }
  return names;
}

int64_t tsvd_default_tile(const ModelConfig& c, const std::vector<std::string>& names) {
  for (int64_t t : {256, 192, 128, 96, 64, 48, 32}) {
    bool ok = true;
    for (const auto& n : names) {
      const auto s = find_tensor(c, n).shape;
      ok = ok && s[0] % t == 0 && s[1] % t == 0;
    }
    if (ok) return t;
  }
  throw InputError("--tile: no tile of 256, 192, 128, 96, 64, 48 or 32 divides every compressed matrix of " +
                   c.name + "; give --tile");
}

void check_tsvd_options(const ModelConfig& c, TsvdCompressOptions& opt) {
  const auto names = tsvd_matrix_names(c, opt.matrices);
  if (opt.factor_dtype != "f32" && opt.factor_dtype != "bf16" && opt.factor_dtype != "int8")
    throw InputError("--factor-dtype: '" + opt.factor_dtype + "' (allowed: f32, bf16, int8)");
  if (opt.method != "plain" && opt.method != "activation-aware")
    throw InputError("--method: '" + opt.method + "' (allowed: plain, activation-aware)");
  if (opt.allocation != "uniform" && opt.allocation != "global")
    throw InputError("--allocation: '" + opt.allocation + "' (allowed: uniform, global)");
  if (opt.allocation == "global" && opt.rule.energy > 0)
    throw InputError("--allocation global: the budget comes from --ratio or --rank, not --energy (allowed: "
                     "--allocation uniform with --energy)");
  if (opt.tile.rows == 0) opt.tile = {tsvd_default_tile(c, names), tsvd_default_tile(c, names)};
  for (const auto& n : names) {  // every bad option before any SVD
    const auto s = find_tensor(c, n).shape;
    if (s[0] % opt.tile.rows || s[1] % opt.tile.cols)
      throw InputError("--tile " + std::to_string(opt.tile.rows) + ": does not divide " + n + " [" +
                       std::to_string(s[0]) + ", " + std::to_string(s[1]) +
                       "] (allowed: a tile dividing every compressed matrix's sides)");
  }
  if (opt.rule.ratio > 0) kernels::rank_for_ratio(opt.tile, opt.rule.ratio);
  if (opt.rule.rank > 0) kernels::check_tile_rank(opt.tile, opt.rule.rank, "--rank");
}

std::vector<std::vector<int64_t>> allocate_global_ranks(const std::vector<kernels::TileSpectrum>& spectra,
                                                        int64_t uniform_rank) {
  struct Tile {
    size_t m, t;
  };
  std::vector<Tile> tiles;
  std::vector<double> energy;  // per matrix Σ σ²
  std::vector<std::vector<int64_t>> ranks;
  int64_t budget = 0;
  for (size_t m = 0; m < spectra.size(); ++m) {
    double e = 0;
    for (const auto& s : spectra[m].s)
      for (float v : s) e += double(v) * v;
    energy.push_back(e > 0 ? e : 1.0);
    ranks.emplace_back(spectra[m].s.size(), 1);
    for (size_t t = 0; t < spectra[m].s.size(); ++t) tiles.push_back({m, t});
    budget += int64_t(spectra[m].s.size()) * (uniform_rank - 1);
    kernels::check_tile_rank(spectra[m].tile, uniform_rank, "--ratio/--rank");
  }
  // (gain of the tile's next rank, tile index): the largest gain first, then the lowest index.
  auto gain = [&](size_t k) {
    const Tile& x = tiles[k];
    const float s = spectra[x.m].s[x.t][size_t(ranks[x.m][x.t])];
    return double(s) * s / energy[x.m];
  };
  auto cmp = [](const std::pair<double, size_t>& a, const std::pair<double, size_t>& b) {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  };
  std::vector<std::pair<double, size_t>> heap;
  for (size_t k = 0; k < tiles.size(); ++k) heap.emplace_back(gain(k), k);
  std::make_heap(heap.begin(), heap.end(), cmp);
  for (int64_t given = 0; given < budget; ++given) {
    std::pop_heap(heap.begin(), heap.end(), cmp);
    const size_t k = heap.back().second;
    heap.pop_back();
    const Tile& x = tiles[k];
    const int64_t r = ++ranks[x.m][x.t];
    const kernels::TileShape ts = spectra[x.m].tile;
    if (r < std::min(ts.rows, ts.cols) - 1) {
      heap.emplace_back(gain(k), k);
      std::push_heap(heap.begin(), heap.end(), cmp);
    }
  }
  return ranks;
}

namespace {

double diff_frobenius(const Tensor& a, const Tensor& b) {
  double s = 0;
  const float* p = a.data<float>();
  const float* q = b.data<float>();
  for (int64_t i = 0; i < a.numel(); ++i) s += (double(p[i]) - q[i]) * (double(p[i]) - q[i]);
  return std::sqrt(s);
}

// What is stored of factor f (bf16 or int8 rounding), so that errors are those of the file; the
// int8 q and scales are returned for writing. U: per column of each tile; V: per column of each
// column block j (the maxima over its tiles i).
struct StoredFactors {
  std::vector<kernels::QuantizedInt8> u, v;  // int8: per tile
  std::vector<Tensor> v_scale;               // int8: per column block [T_n]
};
StoredFactors round_as_stored(kernels::TsvdFactors& f, const std::string& dtype) {
  StoredFactors st;
  if (dtype == "bf16") {
    for (auto& u : f.u) u = u.to(DType::bf16).to(DType::f32);
    for (auto& v : f.v) v = v.to(DType::bf16).to(DType::f32);
  } else if (dtype == "int8") {
    const int64_t nK = f.tiles_k(), nN = f.tiles_n();
    for (int64_t j = 0; j < nN; ++j) {
      Tensor amax({f.tile.cols}, DType::f32);
      for (int64_t i = 0; i < nK; ++i) {
        const Tensor a = kernels::column_amax(f.v[size_t(i * nN + j)]);
        for (int64_t c = 0; c < f.tile.cols; ++c)
          amax.data<float>()[c] = std::max(amax.data<float>()[c], a.data<float>()[c]);
      }
      st.v_scale.push_back(kernels::int8_scales(amax));
    }
    for (int64_t i = 0; i < nK; ++i)
      for (int64_t j = 0; j < nN; ++j) {
        const size_t t = size_t(i * nN + j);
        st.u.push_back(kernels::quantize_int8(f.u[t]));
        st.v.push_back(kernels::quantize_int8(f.v[t], st.v_scale[size_t(j)]));
        f.u[t] = kernels::dequantize_int8(st.u.back());
        f.v[t] = kernels::dequantize_int8(st.v.back());
      }
  }
  return st;
}

}  // namespace

std::vector<TsvdMatrixReport> compress_tsvd(const WeightSource& src, const std::string& source_model, uint64_t seed,
                                            const TsvdCompressOptions& options, const std::string& out_dir) {
  const ModelConfig& c = src.config();
  TsvdCompressOptions opt = options;
  check_tsvd_options(c, opt);
  const auto names = tsvd_matrix_names(c, opt.matrices);
  const TileShape tile = opt.tile;
  const bool aware = opt.method == "activation-aware";
  if (aware && !opt.calibration) throw InputError("--method activation-aware: needs --calibration TEXT");
  if (!aware && opt.calibration)
    throw InputError("--calibration: only with --method activation-aware (the method here is " + opt.method + ")");
  auto gram_of = [&](const std::string& name) {
    return aware ? opt.calibration(name) : kernels::ActivationGram{};
  };

  // Per matrix per-tile ranks: a global budget needs every tile's spectrum first (one more SVD per
  // tile); so does the energy rule (per matrix).
  std::vector<std::vector<int64_t>> ranks(names.size());
  if (opt.allocation == "global") {
    std::vector<kernels::TileSpectrum> spectra;
    for (const auto& name : names) spectra.push_back(kernels::tsvd_spectrum(src.read_full(name), tile, gram_of(name), name));
    ranks = allocate_global_ranks(spectra, opt.rule.rank > 0 ? opt.rule.rank : kernels::rank_for_ratio(tile, opt.rule.ratio));
  }

  NamedTensors out;
  nlohmann::json meta = {{"format", "tori-tsvd"},  {"version", 1},
                         {"source_model", source_model}, {"seed", seed},
                         {"model_name", c.name},         {"tile", {tile.rows, tile.cols}},
                         {"method", opt.method},         {"allocation", opt.allocation},
                         {"rule", opt.rule.describe()},  {"factor_dtype", opt.factor_dtype},
                         {"matrices", nlohmann::json::object()}};
  if (aware) meta["calibration"] = nlohmann::json::parse(opt.calibration_meta.empty() ? "{}" : opt.calibration_meta);
  std::vector<TsvdMatrixReport> reports;
  for (size_t m = 0; m < names.size(); ++m) {
    const std::string& name = names[m];
    const Tensor w = src.read_full(name);
    const kernels::ActivationGram gram = gram_of(name);
    if (opt.allocation != "global")
      ranks[m] = opt.rule.energy > 0 ? kernels::tsvd_ranks(kernels::tsvd_spectrum(w, tile, gram, name), opt.rule)
                 : opt.rule.rank > 0 ? std::vector<int64_t>{opt.rule.rank}
                                     : std::vector<int64_t>{kernels::rank_for_ratio(tile, opt.rule.ratio)};
    kernels::TsvdFactors f = kernels::tsvd_decompose(w, tile, ranks[m], gram, name);
    const StoredFactors stored = round_as_stored(f, opt.factor_dtype);  // errors below are the file's
    TsvdMatrixReport r;
    r.name = name;
    r.k = f.k;
    r.n = f.n;
    r.rank_min = *std::min_element(f.ranks.begin(), f.ranks.end());
    r.rank_max = *std::max_element(f.ranks.begin(), f.ranks.end());
    r.params = f.parameters();
    const Tensor approx = f.reconstruct();
    const double norm = frobenius(w);
    r.rel_error = diff_frobenius(approx, w) / norm;
    Tensor svd_approx;
    if (opt.compare_svd) {  // one plain SVD of the whole matrix at the same parameter count
      const int64_t keep = r.params / (f.k + f.n);
      if (keep >= std::min(f.k, f.n))
        svd_approx = w;  // that many parameters store W exactly
      else if (keep < 1)
        svd_approx = Tensor({f.k, f.n}, DType::f32);
      else
        svd_approx = kernels::tsvd_decompose(w, {f.k, f.n}, {keep}, {}, name).reconstruct();
      r.svd_rel_error = diff_frobenius(svd_approx, w) / norm;
    }
    if (opt.evaluation) {
      const Tensor x = opt.evaluation(name);
      const Tensor exact = product(x, w);
      const double out_norm = frobenius(exact);
      r.act_error = diff_frobenius(product(x, approx), exact) / out_norm;
      if (opt.compare_svd) r.svd_act_error = diff_frobenius(product(x, svd_approx), exact) / out_norm;
    }
    reports.push_back(r);
    for (int64_t i = 0; i < f.tiles_k(); ++i)
      for (int64_t j = 0; j < f.tiles_n(); ++j) {
        const size_t t = size_t(i * f.tiles_n() + j);
        if (opt.factor_dtype == "int8") {
          out.emplace_back(factor_name(name, 'u', i, j), stored.u[t].q);
          out.emplace_back(scale_name(name, 'u', i, j), stored.u[t].scales);
          out.emplace_back(factor_name(name, 'v', i, j), stored.v[t].q);
        } else {
          const DType dt = opt.factor_dtype == "bf16" ? DType::bf16 : DType::f32;
          out.emplace_back(factor_name(name, 'u', i, j), f.u[t].to(dt));
          out.emplace_back(factor_name(name, 'v', i, j), f.v[t].to(dt));
        }
      }
    if (opt.factor_dtype == "int8")
      for (int64_t j = 0; j < f.tiles_n(); ++j)
        out.emplace_back(scale_name(name, 'v', 0, j), stored.v_scale[size_t(j)]);
    meta["matrices"][name] = {{"shape", {f.k, f.n}}, {"ranks", f.ranks}};
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw InputError("--out: cannot create directory '" + out_dir + "': " + ec.message());
  write_safetensors((fs::path(out_dir) / kFactorsFile).string(), out, {{"tori_tsvd", meta.dump()}});
  std::ofstream js(fs::path(out_dir) / kMetaFile);
  js << meta.dump(1) << "\n";
  if (!js) throw InputError("--out: cannot write " + (fs::path(out_dir) / kMetaFile).string());
  return reports;
}

bool is_tsvd_checkpoint(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::exists(fs::path(path) / kMetaFile, ec);
}

TsvdWeights::TsvdWeights(std::unique_ptr<WeightSource> base, const std::string& dir) : base_(std::move(base)) {
  const std::string meta_path = (fs::path(dir) / kMetaFile).string();
  const nlohmann::json meta = read_json_file(meta_path);
  const ModelConfig& c = base_->config();
  try {
    if (meta.at("format") != "tori-tsvd" || meta.at("version") != 1)
      throw InputError(meta_path + ": not a tori-tsvd version 1 checkpoint");
    if (meta.at("model_name").get<std::string>() != c.name)
      throw InputError(meta_path + ": compressed from model '" + meta.at("model_name").get<std::string>() +
                       "', not '" + c.name + "'");
    tile_ = {meta.at("tile").at(0).get<int64_t>(), meta.at("tile").at(1).get<int64_t>()};
    factor_dtype_ = meta.value("factor_dtype", std::string("f32"));
    if (factor_dtype_ != "f32" && factor_dtype_ != "bf16" && factor_dtype_ != "int8")
      throw InputError(meta_path + ": factor_dtype '" + factor_dtype_ + "' (allowed: f32, bf16, int8)");
    const bool int8 = factor_dtype_ == "int8";
    // A tensor the file must hold with this shape.
    auto expect = [&](const std::string& fn, const std::vector<int64_t>& want) {
      if (!file_->has(fn)) throw InputError(file_->path() + ": missing tensor '" + fn + "'");
      if (file_->info(fn).shape != want)
        throw InputError(file_->path() + ": tensor '" + fn + "' is " + kernels::shape_str(file_->info(fn).shape) +
                         ", expected " + kernels::shape_str(want));
      if ((file_->info(fn).dtype == StDtype::i8) != (int8 && fn.find("_scale.") == std::string::npos))
        throw InputError(file_->path() + ": tensor '" + fn + "' is not stored as factor_dtype " + factor_dtype_ +
                         " says");
    };
    file_ = std::make_unique<SafetensorsFile>((fs::path(dir) / kFactorsFile).string(), /*allow_i8=*/true);
    for (const auto& [name, m] : meta.at("matrices").items()) {
      Matrix mx;
      mx.k = m.at("shape").at(0).get<int64_t>();
      mx.n = m.at("shape").at(1).get<int64_t>();
      mx.ranks = m.at("ranks").get<std::vector<int64_t>>();
      TensorSpec spec;
      try {
        spec = find_tensor(c, name);
      } catch (const Error&) {
        throw InputError(meta_path + ": tensor '" + name + "' is not a tensor of model " + c.name);
      }
      if (spec.shape != kernels::Shape{mx.k, mx.n})
        throw InputError(meta_path + ": tensor '" + name + "' is [" + std::to_string(mx.k) + ", " +
                         std::to_string(mx.n) + "] in the checkpoint, " + kernels::shape_str(spec.shape) +
                         " in model " + c.name);
      if (tile_.rows < 1 || tile_.cols < 1 || mx.k % tile_.rows || mx.n % tile_.cols)
        throw InputError(meta_path + ": tile " + std::to_string(tile_.rows) + "x" + std::to_string(tile_.cols) +
                         " does not divide tensor '" + name + "'");
      const int64_t nK = mx.k / tile_.rows, nN = mx.n / tile_.cols;
      if (int64_t(mx.ranks.size()) != nK * nN)
        throw InputError(meta_path + ": tensor '" + name + "' has " + std::to_string(mx.ranks.size()) +
                         " ranks for " + std::to_string(nK * nN) + " tiles");
      for (int64_t i = 0; i < nK; ++i)
        for (int64_t j = 0; j < nN; ++j) {
          const int64_t r = mx.ranks[size_t(i * nN + j)];
          expect(factor_name(name, 'u', i, j), {tile_.rows, r});
          expect(factor_name(name, 'v', i, j), {r, tile_.cols});
          if (int8) expect(scale_name(name, 'u', i, j), {r});
        }
      if (int8)
        for (int64_t j = 0; j < nN; ++j) expect(scale_name(name, 'v', 0, j), {tile_.cols});
      matrices_.emplace_back(name, std::move(mx));
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(meta_path + ": " + e.what());
  }
}

TsvdWeights::~TsvdWeights() = default;

const TsvdWeights::Matrix* TsvdWeights::find(const std::string& name) const {
  for (const auto& [n, m] : matrices_)
    if (n == name) return &m;
  return nullptr;
}

Tensor TsvdWeights::read_factor(const std::string& name, char uv, int64_t i, int64_t j, int64_t rank) const {
  Tensor f = uv == 'u' ? file_->read_rows(factor_name(name, 'u', i, j), 0, tile_.rows, 0, rank)
                       : file_->read_rows(factor_name(name, 'v', i, j), 0, rank, 0, tile_.cols);
  if (factor_dtype_ == "int8") {  // q · scale[column]
    const int64_t cols = f.size(1);
    const Tensor s = file_->read_rows(scale_name(name, uv, i, j), 0, 1, 0, cols);
    float* p = f.data<float>();
    for (int64_t a = 0; a < f.size(0); ++a)
      for (int64_t c = 0; c < cols; ++c) p[a * cols + c] *= s.data<float>()[c];
  }
  return f;
}

Tensor TsvdWeights::v_scale(const std::string& name, int64_t j) const {
  Tensor s = file_->read_rows(scale_name(name, 'v', 0, j), 0, 1, 0, tile_.cols).reshape({tile_.cols});
  const std::string part = name.substr(name.rfind('.') + 1);
  if (config().block != Block::parallel || (part != "wo" && part != "w_out")) return s;
  const std::string other = name.substr(0, name.size() - part.size()) + (part == "wo" ? "w_out" : "wo");
  if (!find(other)) return s;  // W_o dense: the output matmul is not factored
  const Tensor t = file_->read_rows(scale_name(other, 'v', 0, j), 0, 1, 0, tile_.cols);
  for (int64_t c = 0; c < tile_.cols; ++c) s.data<float>()[c] = std::max(s.data<float>()[c], t.data<float>()[c]);
  return s;
}

void TsvdWeights::append_tile(kernels::TsvdFactors& f, const std::string& name, const Matrix& m, int64_t i,
                              int64_t j) const {
  const int64_t r = m.ranks[size_t(i * (m.n / tile_.cols) + j)];
  f.ranks.push_back(r);
  f.u.push_back(read_factor(name, 'u', i, j, r));  // int8 factors: q · scale, as read() multiplies them
  f.v.push_back(read_factor(name, 'v', i, j, r));
  if (factor_dtype_ == "int8") f.v_scale.push_back(v_scale(name, j));
}

kernels::TsvdFactors TsvdWeights::factors(const std::string& name) const {
  const Matrix* m = find(name);
  if (!m) throw Error("TsvdWeights: '" + name + "' is not a compressed matrix");
  kernels::TsvdFactors f;
  f.k = m->k;
  f.n = m->n;
  f.tile = tile_;
  for (int64_t i = 0; i < f.tiles_k(); ++i)
    for (int64_t j = 0; j < f.tiles_n(); ++j) append_tile(f, name, *m, i, j);
  return f;
}

std::vector<int64_t> TsvdWeights::ranks(const std::string& name) const {
  const Matrix* m = find(name);
  return m ? m->ranks : std::vector<int64_t>{};
}

std::optional<TileShape> TsvdWeights::factor_tile(const std::string& name) const {
  if (!find(name)) return std::nullopt;
  return tile_;
}

int64_t TsvdWeights::factor_parameters(const std::string& name) const {
  const Matrix* m = find(name);
  int64_t p = 0;
  if (m)
    for (int64_t r : m->ranks) p += r * (tile_.rows + tile_.cols);
  return p;
}

std::optional<kernels::TsvdFactors> TsvdWeights::read_factors(const std::string& name, const Box& box) const {
  const Matrix* m = find(name);
  if (!m) return WeightSource::read_factors(name, box);
  if (box.start.size() != 2 || box.size.size() != 2 || box.start[0] < 0 || box.start[1] < 0 || box.size[0] < 1 ||
      box.size[1] < 1 || box.start[0] + box.size[0] > m->k || box.start[1] + box.size[1] > m->n)
    throw Error("TsvdWeights: box outside tensor '" + name + "'");
  const int64_t Tk = tile_.rows, Tn = tile_.cols;
  if (box.start[0] % Tk || box.start[1] % Tn || box.size[0] % Tk || box.size[1] % Tn) return std::nullopt;
  kernels::TsvdFactors f;
  f.k = box.size[0];
  f.n = box.size[1];
  f.tile = tile_;
  const int64_t i0 = box.start[0] / Tk, j0 = box.start[1] / Tn;
  for (int64_t i = i0; i < i0 + f.k / Tk; ++i)
    for (int64_t j = j0; j < j0 + f.n / Tn; ++j) append_tile(f, name, *m, i, j);
  return f;
}

Tensor TsvdWeights::read(const std::string& name, const Box& box) const {
  const Matrix* m = find(name);
  if (!m) return base_->read(name, box);
  if (box.start.size() != 2 || box.size.size() != 2 || box.start[0] < 0 || box.start[1] < 0 ||
      box.start[0] + box.size[0] > m->k || box.start[1] + box.size[1] > m->n)
    throw Error("TsvdWeights: box outside tensor '" + name + "'");
  const int64_t r0 = box.start[0], c0 = box.start[1], R = box.size[0], C = box.size[1];
  Tensor out({R, C}, DType::f32);
  const int64_t nN = m->n / tile_.cols;
  for (int64_t i = r0 / tile_.rows; i * tile_.rows < r0 + R; ++i)
    for (int64_t j = c0 / tile_.cols; j * tile_.cols < c0 + C; ++j) {
      const int64_t r = m->ranks[size_t(i * nN + j)];
      const Tensor p = product(read_factor(name, 'u', i, j, r), read_factor(name, 'v', i, j, r));
      // The part of tile (i, j) inside the box.
      const int64_t ta = std::max(r0, i * tile_.rows), tb = std::min(r0 + R, (i + 1) * tile_.rows);
      const int64_t ca = std::max(c0, j * tile_.cols), cb = std::min(c0 + C, (j + 1) * tile_.cols);
      for (int64_t a = ta; a < tb; ++a)
        std::copy_n(p.data<float>() + (a - i * tile_.rows) * tile_.cols + (ca - j * tile_.cols), cb - ca,
                    out.data<float>() + (a - r0) * C + (ca - c0));
    }
  return out;
}

namespace {
std::pair<std::string, uint64_t> source_of(const std::string& dir) {
  const std::string meta_path = (fs::path(dir) / kMetaFile).string();
  const nlohmann::json meta = read_json_file(meta_path);
  try {
    const std::string source = meta.at("source_model").get<std::string>();
    if (is_tsvd_checkpoint(source)) throw InputError(meta_path + ": source_model '" + source + "' is itself compressed");
    return {source, meta.at("seed").get<uint64_t>()};
  } catch (const nlohmann::json::exception& e) {
    throw InputError(meta_path + ": " + e.what());
  }
}
}  // namespace

std::string tsvd_source_model(const std::string& dir) { return source_of(dir).first; }

std::unique_ptr<WeightSource> open_tsvd_checkpoint(const std::string& dir) {
  const auto [source, seed] = source_of(dir);
  return std::make_unique<TsvdWeights>(open_model(source, seed), dir);
}

}  // namespace tori::models
