#include "runtime/padding.hpp"

#include <cmath>

#include "kernels/error.hpp"

namespace tori::runtime {

namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Whether H' = K'·G' query heads in n blocks give every block whole KV groups or a part of one.
bool groups_evenly(int64_t kv, int64_t group, int64_t n) {
  if ((kv * group) % n != 0) return false;
  return kv % n == 0 || (n % kv == 0 && group % (n / kv) == 0);
}

std::string percent_more(int64_t padded, int64_t real) {
  std::string out(1, '+');  // (appending, not "+" + ...: avoids GCC 12's false -Wrestrict)
  out += std::to_string(static_cast<int64_t>(std::lround(100.0 * double(padded - real) / double(real))));
  return out + "%";
}

}  // namespace

int64_t Padding::real_head(int64_t padded) const {
  const int64_t k = padded / padded_group(), r = padded % padded_group();
  return k < n_kv_heads && r < group() ? k * group() + r : -1;
}

std::string Padding::describe() const {
  std::string s;
  auto add = [&](const std::string& part) { s += (s.empty() ? "padding " : "; padding ") + part; };
  if (pads_heads()) {
    std::string what = std::to_string(n_heads) + " query heads to " + std::to_string(padded_heads);
    if (padded_kv_heads != n_kv_heads)
      what += " and " + std::to_string(n_kv_heads) + " KV heads to " + std::to_string(padded_kv_heads);
    add(what + " for " + std::to_string(shards) + " head shards: " + percent_more(padded_heads, n_heads) +
        " attention FLOPs");
  }
  if (padded_d_ff != d_ff)
    add("d_ff " + std::to_string(d_ff) + " to " + std::to_string(padded_d_ff) + " for " + std::to_string(shards) +
        " shards: " + percent_more(padded_d_ff, d_ff) + " feed-forward FLOPs");
  if (padded_vocab != vocab)
    add("vocab " + std::to_string(vocab) + " to " + std::to_string(padded_vocab) + " for " +
        std::to_string(shards) + " shards: " + percent_more(padded_vocab, vocab) + " unembedding FLOPs");
  return s;
}

Padding plan_padding(const models::ModelConfig& c, int64_t n) {
  if (n < 1) throw Error("padding for " + std::to_string(n) + " shards");
  Padding p;
  p.shards = n;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.d_ff = c.d_ff;
  p.vocab = c.vocab;
  p.padded_d_ff = round_up(c.d_ff, n);
  p.padded_vocab = round_up(c.vocab, n);
  // Smallest K'·G' (then smallest K'). K' = K rounded up to a multiple of n with G' = G always
  // works, so K' <= K + n - 1; with n divisible by K', G' <= G + n/K' - 1.
  const int64_t K = c.n_kv_heads, G = c.group_size();
  p.padded_heads = 0;
  for (int64_t kv = K; kv < K + n; ++kv)
    for (int64_t g = G; g < G + n; ++g)
      if (groups_evenly(kv, g, n) && (p.padded_heads == 0 || kv * g < p.padded_heads)) {
        p.padded_heads = kv * g;
        p.padded_kv_heads = kv;
      }
  return p;
}

models::ModelConfig padded_config(const models::ModelConfig& c, int64_t n) {
  const Padding p = plan_padding(c, n);
  models::ModelConfig out = c;
  out.n_heads = p.padded_heads;
  out.n_kv_heads = p.padded_kv_heads;
  out.d_ff = p.padded_d_ff;
  out.vocab = p.padded_vocab;
  return out;
}

}  // namespace tori::runtime
