#include "models/tsvd_checkpoint.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "kernels/error.hpp"
#include "kernels/matmul.hpp"
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

double frobenius(const Tensor& a) {
  double s = 0;
  const float* p = a.data<float>();
  for (int64_t i = 0; i < a.numel(); ++i) s += double(p[i]) * p[i];
  return std::sqrt(s);
}

// u [T_k, r] · v [r, T_n] -> [T_k, T_n] f32 (OpenBLAS sgemm).
Tensor tile_product(const Tensor& u, const Tensor& v) {
  Tensor y;
  kernels::matmul(u, kernels::pack_weight(v, kernels::WeightFormat::f32, kernels::Backend::openblas), y);
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

std::vector<TsvdMatrixReport> compress_tsvd(const WeightSource& src, const std::string& source_model, uint64_t seed,
                                            const TsvdCompressOptions& opt, const std::string& out_dir) {
  const ModelConfig& c = src.config();
  const auto names = tsvd_matrix_names(c, opt.matrices);
  if (opt.factor_dtype != "f32" && opt.factor_dtype != "bf16")
    throw InputError("--factor-dtype: '" + opt.factor_dtype + "' (allowed: f32, bf16)");
  TileShape tile = opt.tile;
  if (tile.rows == 0) tile = {tsvd_default_tile(c, names), tsvd_default_tile(c, names)};
  for (const auto& n : names) {  // every bad option before any SVD
    const auto s = find_tensor(c, n).shape;
    if (s[0] % tile.rows || s[1] % tile.cols)
      throw InputError("--tile " + std::to_string(tile.rows) + ": does not divide " + n + " [" + std::to_string(s[0]) +
                       ", " + std::to_string(s[1]) + "] (allowed: a tile dividing every compressed matrix's sides)");
  }
  if (opt.rule.ratio > 0) kernels::rank_for_ratio(tile, opt.rule.ratio);
  if (opt.rule.rank > 0) kernels::check_tile_rank(tile, opt.rule.rank, "--rank");

  NamedTensors out;
  nlohmann::json meta = {{"format", "tori-tsvd"},  {"version", 1},
                         {"source_model", source_model}, {"seed", seed},
                         {"model_name", c.name},         {"tile", {tile.rows, tile.cols}},
                         {"method", "plain"},            {"rule", opt.rule.describe()},
                         {"factor_dtype", opt.factor_dtype}, {"matrices", nlohmann::json::object()}};
  std::vector<TsvdMatrixReport> reports;
  for (const auto& name : names) {
    const Tensor w = src.read_full(name);
    // Only the energy rule needs every tile's singular values before choosing (one more SVD per tile).
    const std::vector<int64_t> ranks =
        opt.rule.energy > 0 ? kernels::tsvd_ranks(kernels::tsvd_spectrum(w, tile, {}, name), opt.rule)
        : opt.rule.rank > 0 ? std::vector<int64_t>{opt.rule.rank}
                            : std::vector<int64_t>{kernels::rank_for_ratio(tile, opt.rule.ratio)};
    kernels::TsvdFactors f = kernels::tsvd_decompose(w, tile, ranks, {}, name);
    if (opt.factor_dtype == "bf16") {  // what the file holds, so the error below is the stored one
      for (auto& u : f.u) u = u.to(DType::bf16).to(DType::f32);
      for (auto& v : f.v) v = v.to(DType::bf16).to(DType::f32);
    }
    TsvdMatrixReport r;
    r.name = name;
    r.k = f.k;
    r.n = f.n;
    r.rank_min = *std::min_element(f.ranks.begin(), f.ranks.end());
    r.rank_max = *std::max_element(f.ranks.begin(), f.ranks.end());
    r.params = f.parameters();
    Tensor diff = f.reconstruct();
    for (int64_t i = 0; i < diff.numel(); ++i) diff.data<float>()[i] -= w.data<float>()[i];
    const double norm = frobenius(w);
    r.rel_error = frobenius(diff) / norm;
    if (opt.compare_svd) {
      const kernels::TileSpectrum whole = kernels::tsvd_spectrum(w, {f.k, f.n}, {}, name);
      const size_t keep = size_t(r.params / (f.k + f.n));
      double tail = 0;
      for (size_t s = keep; s < whole.s[0].size(); ++s) tail += double(whole.s[0][s]) * whole.s[0][s];
      r.svd_rel_error = std::sqrt(tail) / norm;
    }
    reports.push_back(r);
    for (int64_t i = 0; i < f.tiles_k(); ++i)
      for (int64_t j = 0; j < f.tiles_n(); ++j) {
        const size_t t = size_t(i * f.tiles_n() + j);
        const DType dt = opt.factor_dtype == "bf16" ? DType::bf16 : DType::f32;
        out.emplace_back(factor_name(name, 'u', i, j), f.u[t].to(dt));
        out.emplace_back(factor_name(name, 'v', i, j), f.v[t].to(dt));
      }
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
    file_ = std::make_unique<SafetensorsFile>((fs::path(dir) / kFactorsFile).string());
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
          for (char uv : {'u', 'v'}) {
            const std::string fn = factor_name(name, uv, i, j);
            if (!file_->has(fn)) throw InputError(file_->path() + ": missing tensor '" + fn + "'");
            const std::vector<int64_t> want = uv == 'u' ? std::vector<int64_t>{tile_.rows, r}
                                                        : std::vector<int64_t>{r, tile_.cols};
            if (file_->info(fn).shape != want)
              throw InputError(file_->path() + ": tensor '" + fn + "' is " + kernels::shape_str(file_->info(fn).shape) +
                               ", expected " + kernels::shape_str(want));
          }
        }
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
  const int64_t i0 = box.start[0] / Tk, j0 = box.start[1] / Tn, nN = m->n / Tn;
  for (int64_t i = i0; i < i0 + f.k / Tk; ++i)
    for (int64_t j = j0; j < j0 + f.n / Tn; ++j) {
      const int64_t r = m->ranks[size_t(i * nN + j)];
      f.ranks.push_back(r);
      f.u.push_back(file_->read_rows(factor_name(name, 'u', i, j), 0, Tk, 0, r));
      f.v.push_back(file_->read_rows(factor_name(name, 'v', i, j), 0, r, 0, Tn));
    }
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
      const Tensor u = file_->read_rows(factor_name(name, 'u', i, j), 0, tile_.rows, 0, r);
      const Tensor v = file_->read_rows(factor_name(name, 'v', i, j), 0, r, 0, tile_.cols);
      const Tensor p = tile_product(u, v);
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
