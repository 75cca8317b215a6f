#include "models/reference_model.hpp"

#include <chrono>
#include <cmath>

#include "kernels/error.hpp"
#include "models/weight_names.hpp"

namespace tori::models {

namespace {

std::vector<float> load(const WeightSource& w, const std::string& name) {
  return w.read_full(name).to_vector();
}

// y[n_out] = x[n_in] @ W[n_in, n_out], accumulated in f64.
std::vector<float> matvec(const std::vector<float>& x, const std::vector<float>& W, int64_t n_in,
                          int64_t n_out) {
  std::vector<double> acc(static_cast<size_t>(n_out), 0.0);
  for (int64_t i = 0; i < n_in; ++i) {
    const double xi = x[static_cast<size_t>(i)];
    const float* row = &W[static_cast<size_t>(i * n_out)];
    for (int64_t j = 0; j < n_out; ++j) acc[static_cast<size_t>(j)] += xi * row[j];
  }
  return std::vector<float>(acc.begin(), acc.end());
}

std::vector<float> normalize(const ModelConfig& c, const std::vector<float>& x,
                             const std::vector<float>& w, const std::vector<float>& b) {
  const size_t n = x.size();
  std::vector<float> y(n);
  if (c.norm == Norm::rmsnorm) {
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    double inv = 1.0 / std::sqrt(ss / double(n) + c.norm_eps);
    for (size_t i = 0; i < n; ++i) y[i] = float(x[i] * inv * w[i]);
  } else {
    double mean = 0;
    for (float v : x) mean += v;
    mean /= double(n);
    double var = 0;
    for (float v : x) var += (v - mean) * (v - mean);
    var /= double(n);
    double inv = 1.0 / std::sqrt(var + c.norm_eps);
    for (size_t i = 0; i < n; ++i) y[i] = float((x[i] - mean) * inv * w[i] + b[i]);
  }
  return y;
}

// Rotate-half RoPE on each D-sized head of `v` (n_heads heads) at position `pos`:
// for i < D/2, (v[i], v[i + D/2]) is rotated by angle pos * theta^(-2i/D).
void rope(std::vector<float>& v, int64_t n_heads, int64_t D, int64_t pos, double theta) {
  const int64_t half = D / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* x = &v[static_cast<size_t>(h * D)];
    for (int64_t i = 0; i < half; ++i) {
      double freq = std::pow(theta, -2.0 * double(i) / double(D));
      double a = double(pos) * freq;
      double c = std::cos(a), s = std::sin(a);
      double x0 = x[i], x1 = x[i + half];
      x[i] = float(x0 * c - x1 * s);
      x[i + half] = float(x0 * s + x1 * c);
    }
  }
}

double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double gelu_tanh(double x) { return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))); }

// RMSNorm of each D-sized head of v (query/key norm), weights w [D].
void head_rmsnorm(std::vector<float>& v, int64_t D, const std::vector<float>& w, double eps) {
  for (size_t h0 = 0; h0 < v.size(); h0 += size_t(D)) {
    double ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += double(v[h0 + size_t(d)]) * v[h0 + size_t(d)];
    const double inv = 1.0 / std::sqrt(ss / double(D) + eps);
    for (int64_t d = 0; d < D; ++d) v[h0 + size_t(d)] = float(v[h0 + size_t(d)] * inv * w[size_t(d)]);
  }
}
double silu(double x) { return x / (1.0 + std::exp(-x)); }

}  // namespace

MatmulInput matmul_input_of(const std::string& kind) {
  if (kind == "wq" || kind == "wk" || kind == "wv") return MatmulInput::attention_in;
  if (kind == "wo") return MatmulInput::attention_out;
  if (kind == "w_in" || kind == "w_gate") return MatmulInput::ffn_in;
  if (kind == "w_out") return MatmulInput::ffn_hidden;
  throw Error("matmul_input_of: '" + kind + "' is not a layer matrix (wq, wk, wv, wo, w_in, w_gate, w_out)");
}

ReferenceModel::ReferenceModel(const WeightSource& w) : config_(w.config()) {
  const ModelConfig& c = config_;
  const bool ln = c.norm == Norm::layernorm;
  embed_ = load(w, "embed");
  if (!c.tied_embeddings) unembed_ = load(w, "unembed");
  // Tied: the logits multiply the embedding as the source rounds it for a run's dtype
  // (rounded_weights.hpp); kept only when that differs from the f32 lookup table.
  if (c.tied_embeddings) {
    std::vector<float> logits_embed = w.read_tied_unembedding().to_vector();
    if (logits_embed != embed_) tied_unembed_ = std::move(logits_embed);
  }
  final_norm_w_ = load(w, "final_norm.weight");
  if (ln) final_norm_b_ = load(w, "final_norm.bias");
  for (int64_t l = 0; l < c.n_layers; ++l) {
    Layer L;
    L.attn_norm_w = load(w, layer_tensor(l, "attn_norm.weight"));
    if (ln) L.attn_norm_b = load(w, layer_tensor(l, "attn_norm.bias"));
    if (c.block == Block::serial) {
      L.ffn_norm_w = load(w, layer_tensor(l, "ffn_norm.weight"));
      if (ln) L.ffn_norm_b = load(w, layer_tensor(l, "ffn_norm.bias"));
    }
    if (c.post_norms) {
      L.post_attn_norm_w = load(w, layer_tensor(l, "post_attn_norm.weight"));
      L.post_ffn_norm_w = load(w, layer_tensor(l, "post_ffn_norm.weight"));
      if (ln) L.post_attn_norm_b = load(w, layer_tensor(l, "post_attn_norm.bias"));
      if (ln) L.post_ffn_norm_b = load(w, layer_tensor(l, "post_ffn_norm.bias"));
    }
    if (c.qk_norm) {
      L.q_norm_w = load(w, layer_tensor(l, "q_norm.weight"));
      L.k_norm_w = load(w, layer_tensor(l, "k_norm.weight"));
    }
    L.wq = load(w, layer_tensor(l, "wq"));
    L.wk = load(w, layer_tensor(l, "wk"));
    L.wv = load(w, layer_tensor(l, "wv"));
    L.wo = load(w, layer_tensor(l, "wo"));
    L.w_in = load(w, layer_tensor(l, "w_in"));
    if (c.mlp != Mlp::gelu) L.w_gate = load(w, layer_tensor(l, "w_gate"));
    L.w_out = load(w, layer_tensor(l, "w_out"));
    layers_.push_back(std::move(L));
  }
}

void ReferenceModel::reset(int64_t batch) {
  if (batch <= 0) throw InputError("batch must be >= 1, got " + std::to_string(batch));
  seqs_.assign(static_cast<size_t>(batch), Sequence{});
  // Caches grow with the sequence (forward), not to max_seq up front (Gemma 3: 32k positions).
  for (auto& s : seqs_) {
    s.k.assign(static_cast<size_t>(config_.n_layers), {});
    s.v.assign(static_cast<size_t>(config_.n_layers), {});
  }
}

kernels::Tensor ReferenceModel::forward(int64_t b, const TokenIds& tokens) {
  const ModelConfig& c = config_;
  const int64_t E = c.d_model, H = c.n_heads, K = c.n_kv_heads, D = c.d_head, F = c.d_ff,
                V = c.vocab, G = c.group_size();
  Sequence& seq = seqs_.at(static_cast<size_t>(b));
  const int64_t L = static_cast<int64_t>(tokens.size()), pos0 = seq.length;
  if (pos0 + L > c.max_seq)
    throw InputError("sequence " + std::to_string(b) + " would reach " + std::to_string(pos0 + L) +
                     " tokens, more than max_seq = " + std::to_string(c.max_seq) + " of model '" +
                     c.name + "'");
  for (int32_t t : tokens)
    if (t < 0 || t >= V)
      throw InputError("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                       std::to_string(V) + ") of model '" + c.name + "'");

  // x[i] = embed[token_i]: the residual stream, one E-vector per new position.
  std::vector<std::vector<float>> x(static_cast<size_t>(L));
  // Gemma: times sqrt(E) (in f32, as llama.cpp's gemma3 graph).
  const float embed_scale = c.scale_embeddings ? std::sqrt(float(E)) : 1.f;
  for (int64_t i = 0; i < L; ++i) {
    x[size_t(i)].assign(embed_.begin() + tokens[size_t(i)] * E, embed_.begin() + (tokens[size_t(i)] + 1) * E);
    if (c.scale_embeddings)
      for (float& e : x[size_t(i)]) e *= embed_scale;
  }

  const double scale = c.attention_scale();
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const Layer& W = layers_[size_t(l)];
    std::vector<float>& kc = seq.k[size_t(l)];
    std::vector<float>& vc = seq.v[size_t(l)];
    kc.resize(size_t((pos0 + L) * K * D));
    vc.resize(size_t((pos0 + L) * K * D));
    std::vector<std::vector<float>> h(static_cast<size_t>(L)), q(static_cast<size_t>(L));
    // Input projections; K and V of every new position go into the cache first (causal: position
    // i attends to cache entries 0 .. pos0 + i).
    for (int64_t i = 0; i < L; ++i) {
      h[size_t(i)] = normalize(c, x[size_t(i)], W.attn_norm_w, W.attn_norm_b);
      if (hook_) hook_(l, MatmulInput::attention_in, h[size_t(i)]);
      q[size_t(i)] = matvec(h[size_t(i)], W.wq, E, H * D);
      std::vector<float> k = matvec(h[size_t(i)], W.wk, E, K * D);
      std::vector<float> v = matvec(h[size_t(i)], W.wv, E, K * D);
      if (c.qk_norm) {
        head_rmsnorm(q[size_t(i)], D, W.q_norm_w, c.norm_eps);
        head_rmsnorm(k, D, W.k_norm_w, c.norm_eps);
      }
      rope(q[size_t(i)], H, D, pos0 + i, c.layer_rope_theta(l));
      rope(k, K, D, pos0 + i, c.layer_rope_theta(l));
      std::copy(k.begin(), k.end(), kc.begin() + (pos0 + i) * K * D);
      std::copy(v.begin(), v.end(), vc.begin() + (pos0 + i) * K * D);
    }
    for (int64_t i = 0; i < L; ++i) {
      const int64_t T = pos0 + i + 1;  // cache length up to this position (causal)
      // A local layer with a window w sees the w most recent positions, itself included, and the
      // first sink_tokens positions (models/config.hpp); a global layer every position.
      const bool windowed = c.sliding_window > 0 && c.is_local(l);
      auto visible = [&](int64_t t) {
        return !windowed || t > pos0 + i - c.sliding_window || t < c.sink_tokens;
      };
      std::vector<float> o(static_cast<size_t>(H * D));
      for (int64_t hq = 0; hq < H; ++hq) {
        const int64_t g = hq / G;  // the KV head this query head reads
        const float* qh = &q[size_t(i)][size_t(hq * D)];
        std::vector<double> s(static_cast<size_t>(T));
        double mx = -INFINITY;
        for (int64_t t = 0; t < T; ++t) {
          if (!visible(t)) {  // outside the local layer's window: weight exactly 0
            s[size_t(t)] = -INFINITY;
            continue;
          }
          const float* kt = &kc[size_t((t * K + g) * D)];
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += double(qh[d]) * kt[d];
          s[size_t(t)] = dot * scale;
          mx = std::max(mx, s[size_t(t)]);
        }
        double sum = 0;
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t t = 0; t < T; ++t) acc += s[size_t(t)] * vc[size_t((t * K + g) * D + d)];
          o[size_t(hq * D + d)] = float(acc / sum);
        }
      }
      if (hook_) hook_(l, MatmulInput::attention_out, o);
      std::vector<float> attn = matvec(o, W.wo, H * D, E);
      if (c.post_norms) attn = normalize(c, attn, W.post_attn_norm_w, W.post_attn_norm_b);
      auto ffn = [&](const std::vector<float>& in) {
        if (hook_) hook_(l, MatmulInput::ffn_in, in);
        std::vector<float> up = matvec(in, W.w_in, E, F);
        if (c.mlp == Mlp::swiglu) {
          std::vector<float> gate = matvec(in, W.w_gate, E, F);
          for (int64_t f = 0; f < F; ++f) up[size_t(f)] = float(silu(gate[size_t(f)]) * up[size_t(f)]);
        } else if (c.mlp == Mlp::geglu) {
          std::vector<float> gate = matvec(in, W.w_gate, E, F);
          for (int64_t f = 0; f < F; ++f) up[size_t(f)] = float(gelu_tanh(gate[size_t(f)]) * up[size_t(f)]);
        } else {
          for (auto& u : up) u = float(gelu(u));
        }
        if (hook_) hook_(l, MatmulInput::ffn_hidden, up);
        return matvec(up, W.w_out, F, E);
      };
      std::vector<float>& xi = x[size_t(i)];
      if (c.block == Block::parallel) {
        // y = x + Attn(N(x)) + FFN(N(x))
        std::vector<float> m = ffn(h[size_t(i)]);
        for (int64_t e = 0; e < E; ++e) xi[size_t(e)] = float(double(xi[size_t(e)]) + attn[size_t(e)] + m[size_t(e)]);
      } else {
        // y' = x + Attn(N1(x)); y = y' + FFN(N2(y'))
        for (int64_t e = 0; e < E; ++e) xi[size_t(e)] += attn[size_t(e)];
        std::vector<float> m = ffn(normalize(c, xi, W.ffn_norm_w, W.ffn_norm_b));
        if (c.post_norms) m = normalize(c, m, W.post_ffn_norm_w, W.post_ffn_norm_b);
        for (int64_t e = 0; e < E; ++e) xi[size_t(e)] += m[size_t(e)];
      }
    }
  }
  seq.length += L;

  kernels::Tensor logits({L, V}, kernels::DType::f32);
  float* out = logits.data<float>();
  for (int64_t i = 0; i < L; ++i) {
    std::vector<float> hf = normalize(c, x[size_t(i)], final_norm_w_, final_norm_b_);
    for (int64_t v = 0; v < V; ++v) {
      double acc = 0;
      if (c.tied_embeddings) {
        const float* ev = &(tied_unembed_.empty() ? embed_ : tied_unembed_)[size_t(v * E)];
        for (int64_t e = 0; e < E; ++e) acc += double(hf[size_t(e)]) * ev[e];
      } else {
        for (int64_t e = 0; e < E; ++e) acc += double(hf[size_t(e)]) * unembed_[size_t(e * V + v)];
      }
      out[i * V + v] = float(acc);
    }
  }
  return logits;
}

std::vector<kernels::Tensor> ReferenceModel::prefill(const std::vector<TokenIds>& prompts) {
  if (static_cast<int64_t>(prompts.size()) != batch())
    throw Error("prefill: " + std::to_string(prompts.size()) + " prompts for a batch of " +
                std::to_string(batch()));
  std::vector<kernels::Tensor> out;
  for (size_t b = 0; b < prompts.size(); ++b) {
    if (prompts[b].empty()) throw InputError("prompt " + std::to_string(b) + " is empty");
    out.push_back(forward(int64_t(b), prompts[b]));
  }
  return out;
}

kernels::Tensor ReferenceModel::decode(const TokenIds& tokens) {
  if (static_cast<int64_t>(tokens.size()) != batch())
    throw Error("decode: " + std::to_string(tokens.size()) + " tokens for a batch of " +
                std::to_string(batch()));
  const int64_t V = config_.vocab;
  kernels::Tensor logits({batch(), V}, kernels::DType::f32);
  for (size_t b = 0; b < tokens.size(); ++b) {
    kernels::Tensor row = forward(int64_t(b), {tokens[b]});
    std::copy(row.data<float>(), row.data<float>() + V, logits.data<float>() + int64_t(b) * V);
  }
  return logits;
}

int32_t argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

GreedyResult greedy_generate(ReferenceModel& model, const std::vector<TokenIds>& prompts,
                             int64_t max_new) {
  using clock = std::chrono::steady_clock;
  if (max_new < 1) throw InputError("--max-new-tokens must be >= 1, got " + std::to_string(max_new));
  const int64_t V = model.config().vocab, B = static_cast<int64_t>(prompts.size());
  GreedyResult r;
  r.generated.resize(size_t(B));
  model.reset(B);
  auto t0 = clock::now();
  r.prefill_logits = model.prefill(prompts);
  r.prefill_s = std::chrono::duration<double>(clock::now() - t0).count();
  TokenIds next(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const kernels::Tensor& lg = r.prefill_logits[size_t(b)];
    next[size_t(b)] = argmax(lg.data<float>() + (lg.size(0) - 1) * V, V);
    r.generated[size_t(b)].push_back(next[size_t(b)]);
  }
  auto t1 = clock::now();
  for (int64_t step = 1; step < max_new; ++step) {
    kernels::Tensor lg = model.decode(next);
    for (int64_t b = 0; b < B; ++b) {
      next[size_t(b)] = argmax(lg.data<float>() + b * V, V);
      r.generated[size_t(b)].push_back(next[size_t(b)]);
    }
    r.decode_logits.push_back(lg);
  }
  r.decode_s = std::chrono::duration<double>(clock::now() - t1).count();
  return r;
}

}  // namespace tori::models
