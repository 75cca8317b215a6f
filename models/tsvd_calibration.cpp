#include "models/tsvd_calibration.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "kernels/error.hpp"
#include "models/text_file.hpp"
#include "models/tokenizer.hpp"

namespace tori::models {

using kernels::DType;
using kernels::Tensor;

namespace {

constexpr int kSites = 4;  // MatmulInput's values

// "layers.<l>.<kind>" -> (l, kind); Error otherwise.
std::pair<int64_t, std::string> split_layer_tensor(const std::string& name) {
  const std::string pre = "layers.";
  const size_t dot = name.find('.', pre.size());
  if (name.compare(0, pre.size(), pre) != 0 || dot == std::string::npos)
    throw Error("ActivationStats: '" + name + "' is not a layer matrix");
  return {std::stoll(name.substr(pre.size(), dot - pre.size())), name.substr(dot + 1)};
}

}  // namespace

CalibrationText read_calibration_text(const std::string& model, const ModelConfig& c, const std::string& path,
                                      const std::string& flag) {
  const std::string text = read_text_file(path, flag);
  CalibrationText t;
  t.path = path;
  const std::unique_ptr<Tokenizer> tok = open_tokenizer(model);
  if (tok) {
    t.tokens = tok->encode(text);
    t.tokenizer = tok->source();
    t.add_bos = tok->add_bos && tok->bos_id >= 0;
    t.bos_id = tok->bos_id;
  } else {
    for (unsigned char b : text) t.tokens.push_back(int32_t(b % uint64_t(c.vocab)));
    t.tokenizer = "bytes";
  }
  if (t.tokens.empty()) throw InputError(flag + ": '" + path + "' is empty (allowed: a text of at least one token)");
  return t;
}

ActivationStats::ActivationStats(const ModelConfig& c, int64_t block, bool keep_rows)
    : block_(block), keep_rows_(keep_rows) {
  const int64_t widths[kSites] = {c.d_model, c.n_heads * c.d_head, c.d_model, c.d_ff};
  sites_.resize(size_t(c.n_layers * kSites));
  for (int64_t l = 0; l < c.n_layers; ++l)
    for (int s = 0; s < kSites; ++s) {
      Site& site = sites_[size_t(l * kSites + s)];
      site.width = widths[s];
      if (block < 1 || site.width % block)
        throw Error("ActivationStats: tile rows " + std::to_string(block) + " do not divide an input of width " +
                    std::to_string(site.width));
      site.gram.assign(size_t(site.width / block), std::vector<double>(size_t(block * block), 0.0));
    }
}

void ActivationStats::add(int64_t layer, MatmulInput which, const std::vector<float>& x) {
  Site& s = sites_.at(size_t(layer * kSites + int(which)));
  if (int64_t(x.size()) != s.width)
    throw Error("ActivationStats: input of width " + std::to_string(x.size()) + ", expected " +
                std::to_string(s.width));
  const int64_t T = block_;
  for (size_t i = 0; i < s.gram.size(); ++i) {  // G_i += x_iᵀ·x_i, lower triangle
    const float* xi = x.data() + i * size_t(T);
    double* g = s.gram[i].data();
    for (int64_t a = 0; a < T; ++a) {
      const double xa = xi[a];
      double* row = g + a * T;
      for (int64_t b = 0; b <= a; ++b) row[b] += xa * xi[b];
    }
  }
  if (keep_rows_) s.rows.insert(s.rows.end(), x.begin(), x.end());
  ++s.count;
  if (layer == 0 && which == MatmulInput::attention_in) ++positions_;
}

const ActivationStats::Site& ActivationStats::site_of(const std::string& matrix) const {
  const auto [layer, kind] = split_layer_tensor(matrix);
  const size_t at = size_t(layer * kSites + int(matmul_input_of(kind)));
  if (layer < 0 || at >= sites_.size()) throw Error("ActivationStats: no layer " + std::to_string(layer));
  return sites_[at];
}

kernels::ActivationGram ActivationStats::gram(const std::string& matrix) const {
  const Site& s = site_of(matrix);
  kernels::ActivationGram g;
  const int64_t T = block_;
  for (const auto& acc : s.gram) {
    Tensor t({T, T}, DType::f32);
    float* p = t.data<float>();
    for (int64_t a = 0; a < T; ++a)
      for (int64_t b = 0; b <= a; ++b) p[a * T + b] = p[b * T + a] = float(acc[size_t(a * T + b)]);
    g.gram.push_back(std::move(t));
  }
  return g;
}

Tensor ActivationStats::rows(const std::string& matrix) const {
  const Site& s = site_of(matrix);
  if (!keep_rows_) throw Error("ActivationStats: rows of '" + matrix + "' were not kept");
  Tensor t({s.count, s.width}, DType::f32);
  std::copy(s.rows.begin(), s.rows.end(), t.data<float>());
  return t;
}

int64_t ActivationStats::bytes() const {
  int64_t b = 0;
  for (const auto& s : sites_) {
    for (const auto& g : s.gram) b += int64_t(g.size()) * 8;
    b += int64_t(s.rows.size()) * 4;
  }
  return b;
}

void check_collect_options(const ModelConfig& c, const CalibrationText& text, const CollectOptions& opt) {
  const int64_t window = opt.window > 0 ? opt.window : c.max_seq;
  if (window < 2 || window > c.max_seq)
    throw InputError(opt.flag + "-window: " + std::to_string(window) + " (allowed: 2 to max_seq = " +
                     std::to_string(c.max_seq) + " of model " + c.name + ")");
  if (opt.count < 1 || opt.first < 0 || opt.first + opt.count > int64_t(text.tokens.size()))
    throw InputError(opt.flag + ": '" + text.path + "' has " + std::to_string(text.tokens.size()) +
                     " tokens, fewer than the " + std::to_string(opt.first + opt.count) + " needed (" +
                     (opt.first > 0 ? std::to_string(opt.first) + " held out for calibration, then " : "") +
                     std::to_string(opt.count) + " tokens; allowed: a longer text or fewer " + opt.flag +
                     "-tokens)");
}

ActivationStats collect_activations(const WeightSource& weights, const CalibrationText& text, int64_t block,
                                    const CollectOptions& opt) {
  const ModelConfig& c = weights.config();
  check_collect_options(c, text, opt);
  const int64_t window = opt.window > 0 ? opt.window : c.max_seq;
  ActivationStats stats(c, block, opt.keep_rows);
  ReferenceModel model(weights);
  model.set_input_hook([&](int64_t layer, MatmulInput site, const std::vector<float>& x) { stats.add(layer, site, x); });
  const int64_t per_window = window - (text.add_bos ? 1 : 0);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t at = opt.first; at < opt.first + opt.count; at += per_window) {
    TokenIds ids;
    if (text.add_bos) ids.push_back(text.bos_id);
    const int64_t end = std::min(at + per_window, opt.first + opt.count);
    ids.insert(ids.end(), text.tokens.begin() + at, text.tokens.begin() + end);
    model.reset(1);
    model.prefill({ids});
  }
  spdlog::info("{}: {} tokens of {} ({}) through the reference model in windows of {}: {:.1f} s, statistics {:.1f} MB",
               opt.flag, opt.count, text.path, text.tokenizer, window,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), double(stats.bytes()) / 1e6);
  return stats;
}

}  // namespace tori::models
