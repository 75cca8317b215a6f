// Padding maths (runtime/padding.hpp) and the padded weight source (runtime/padded_weights.hpp):
// every real head lands on exactly one padded head in its own KV group, padding heads and units
// read as zeros, padded shards are read box by box (never the whole padded tensor), and placements
// of padded models cover every padded head exactly once.
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <vector>

#include "kernels/error.hpp"
#include "models/synthetic_weights.hpp"
#include "runtime/padded_weights.hpp"
#include "runtime/placement.hpp"

using namespace tori::runtime;
using tori::collectives::Axes;
using tori::collectives::Coords;
using tori::collectives::TorusShape;
using tori::kernels::Tensor;
using tori::models::Box;
using tori::models::ModelConfig;

namespace {

ModelConfig with_heads(const char* preset, int64_t heads, int64_t kv) {
  ModelConfig c = tori::models::load_model_config(preset);
  c.n_heads = heads;
  c.n_kv_heads = kv;
  return c;
}

// A source that remembers how many elements each read returned.
class CountingSource final : public tori::models::WeightSource {
 public:
  explicit CountingSource(const tori::models::WeightSource& s) : s_(s) {}
  const ModelConfig& config() const override { return s_.config(); }
  Tensor read(const std::string& name, const Box& box) const override {
    Tensor t = s_.read(name, box);
    largest = std::max<int64_t>(largest, t.numel());
    total += t.numel();
    return t;
  }
  mutable int64_t largest = 0, total = 0;

 private:
  const tori::models::WeightSource& s_;
};

}  // namespace

TEST_CASE("SmolLM2's 9 query / 3 KV heads pad to the smallest count each rank count splits", "[padding]") {
  const ModelConfig c = tori::models::load_model_config("smollm-tiny");
  REQUIRE(c.n_heads == 9);
  REQUIRE(c.n_kv_heads == 3);
  struct Want {
    int64_t n, heads, kv;
  };
  // n = 2, 4: 4 KV groups of 3 (12 heads); n = 8: 4 groups of 4 (16) beats 8 groups of 3 (24).
  for (Want w : {Want{1, 9, 3}, Want{2, 12, 4}, Want{4, 12, 4}, Want{8, 16, 4}}) {
    INFO("n = " << w.n);
    const Padding p = plan_padding(c, w.n);
    CHECK(p.padded_heads == w.heads);
    CHECK(p.padded_kv_heads == w.kv);
    CHECK(p.padded_d_ff == c.d_ff);    // 384 divides by 8
    CHECK(p.padded_vocab == c.vocab);  // 512 divides by 8
  }
  CHECK_FALSE(plan_padding(c, 1).any());
  CHECK(plan_padding(c, 1).describe().empty());
  CHECK(plan_padding(c, 8).describe() ==
        "padding 9 query heads to 16 and 3 KV heads to 4 for 8 head shards: +78% attention FLOPs");
  CHECK(plan_padding(c, 2).describe() ==
        "padding 9 query heads to 12 and 3 KV heads to 4 for 2 head shards: +33% attention FLOPs");
}

TEST_CASE("multiquery and odd multihead models pad their query heads", "[padding]") {
  // PaLM 540B: 48 multiquery heads on 64 chips run as 64 heads (the paper's padding).
  const Padding palm = plan_padding(tori::models::load_model_config("palm-540b"), 64);
  CHECK(palm.padded_heads == 64);
  CHECK(palm.padded_kv_heads == 1);
  // Multiquery, 9 heads: one KV head, 16 query heads on 8 ranks, 10 on 2.
  CHECK(plan_padding(with_heads("palm-tiny", 9, 1), 8).padded_heads == 16);
  CHECK(plan_padding(with_heads("palm-tiny", 9, 1), 2).padded_heads == 10);
  CHECK(plan_padding(with_heads("palm-tiny", 9, 1), 8).padded_kv_heads == 1);
  // Multihead, 9 heads: every query head its own KV head; padded KV heads match.
  for (int64_t n : {2, 4, 8}) {
    const Padding p = plan_padding(with_heads("gpt-tiny", 9, 9), n);
    CHECK(p.padded_heads == (n == 2 ? 10 : n == 4 ? 12 : 16));
    CHECK(p.padded_kv_heads == p.padded_heads);
  }
  // Fewer heads than ranks: 4 multiquery heads on 8 ranks -> 8.
  CHECK(plan_padding(with_heads("palm-tiny", 4, 1), 8).padded_heads == 8);
}

TEST_CASE("every real head is covered exactly once, in its own KV group", "[padding]") {
  for (int64_t n : {1, 2, 3, 4, 6, 8, 16})
    for (int64_t H = 1; H <= 12; ++H)
      for (int64_t K = 1; K <= H; ++K) {
        if (H % K != 0) continue;
        INFO("H = " << H << ", K = " << K << ", n = " << n);
        const Padding p = plan_padding(with_heads("llama-tiny", H, K), n);
        const int64_t Hp = p.padded_heads, Kp = p.padded_kv_heads, Gp = p.padded_group();
        REQUIRE(Hp % Kp == 0);
        CHECK(Hp >= H);
        CHECK(Kp >= K);
        CHECK(Hp % n == 0);
        // Nothing padded when the heads already split.
        if (H % n == 0 && (K % n == 0 || (n % K == 0 && (H / K) % (n / K) == 0))) CHECK_FALSE(p.pads_heads());
        std::multiset<int64_t> seen;
        for (int64_t h = 0; h < Hp; ++h) {
          const int64_t r = p.real_head(h);
          if (r < 0) continue;
          seen.insert(r);
          CHECK(p.padded_head(r) == h);
          CHECK(r / p.group() == h / Gp);  // the GQA mapping survives: same KV head
          CHECK(p.real_kv_head(h / Gp) == r / p.group());
        }
        CHECK(seen.size() == size_t(H));
        CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == size_t(H));
        // A padded KV head is read only by padding query heads.
        for (int64_t h = 0; h < Hp; ++h)
          if (p.real_kv_head(h / Gp) < 0) CHECK(p.real_head(h) < 0);
        // Each block of Hp/n heads holds whole KV groups or lies inside one.
        const int64_t Hb = Hp / n;
        CHECK((Hb % Gp == 0 || Gp % Hb == 0));
        // The padding is the smallest such: no smaller K'·G' (K' >= K, G' >= G) works.
        for (int64_t k = K; k <= K + n; ++k)
          for (int64_t g = H / K; k * g < Hp; ++g) {
            const bool splits = (k * g) % n == 0 && (k % n == 0 || (n % k == 0 && g % (n / k) == 0));
            CHECK_FALSE(splits);
          }
        // Idempotent: the padded model needs no more padding.
        const ModelConfig once = padded_config(with_heads("llama-tiny", H, K), n);
        CHECK_FALSE(plan_padding(once, n).any());
      }
}

TEST_CASE("no preset in the verify table pads where it runs today", "[padding]") {
  for (const char* m : {"palm-tiny", "gpt-tiny", "llama-tiny", "falcon-tiny", "palm-8b", "palm-62b"})
    for (int64_t n : {1, 2, 4, 8}) {
      INFO(m << " n = " << n);
      CHECK_FALSE(plan_padding(tori::models::load_model_config(m), n).any());
    }
}

TEST_CASE("d_ff and vocab pad to a multiple of the shard count", "[padding]") {
  ModelConfig c = tori::models::load_model_config("gpt-tiny");
  c.d_ff = 1000;
  c.vocab = 509;
  const Padding p = plan_padding(c, 8);
  CHECK(p.padded_d_ff == 1000);  // 1000 = 8 · 125
  CHECK(p.padded_vocab == 512);
  c.d_ff = 1001;
  CHECK(plan_padding(c, 8).padded_d_ff == 1008);
  CHECK(plan_padding(c, 8).describe() ==
        "padding d_ff 1001 to 1008 for 8 shards: +1% feed-forward FLOPs; padding vocab 509 to 512 for 8 shards: +1% "
        "unembedding FLOPs");
}

TEST_CASE("padded weights: real heads read through, padding reads as zero, shards box by box", "[padding]") {
  ModelConfig c = tori::models::load_model_config("smollm-tiny");
  c.d_ff = 380;   // 380 -> 384 on 8 shards
  c.vocab = 509;  // 509 -> 512
  c.tied_embeddings = false;
  const tori::models::SyntheticWeights real(c, 7);
  const int64_t n = 8, D = c.d_head, E = c.d_model;
  CountingSource counting(real);
  const PaddedWeights padded(counting, n);
  const Padding& p = padded.padding();
  const ModelConfig& pc = padded.config();
  REQUIRE(pc.n_heads == 16);
  REQUIRE(pc.n_kv_heads == 4);
  REQUIRE(pc.d_ff == 384);
  REQUIRE(pc.vocab == 512);

  const Tensor wq = real.read_full("layers.1.wq"), wq_p = padded.read_full("layers.1.wq");
  const Tensor wo = real.read_full("layers.1.wo"), wo_p = padded.read_full("layers.1.wo");
  const Tensor wk = real.read_full("layers.1.wk"), wk_p = padded.read_full("layers.1.wk");
  REQUIRE(wq_p.size(1) == 16 * D);
  REQUIRE(wo_p.size(0) == 16 * D);
  REQUIRE(wk_p.size(1) == 4 * D);
  for (int64_t h = 0; h < 16; ++h) {
    const int64_t r = p.real_head(h);
    for (int64_t e = 0; e < E; e += 7)
      for (int64_t d = 0; d < D; ++d) {
        // W_q [E, H·D] columns and W_o [H·D, E] rows of head h: the real head's, or zero.
        CHECK(wq_p.get(e * 16 * D + h * D + d) == (r < 0 ? 0.f : wq.get(e * 9 * D + r * D + d)));
        CHECK(wo_p.get((h * D + d) * E + e) == (r < 0 ? 0.f : wo.get((r * D + d) * E + e)));
      }
  }
  for (int64_t k = 0; k < 4; ++k)
    for (int64_t e = 0; e < E; e += 5)
      for (int64_t d = 0; d < D; ++d)
        CHECK(wk_p.get(e * 4 * D + k * D + d) == (k < 3 ? wk.get(e * 3 * D + k * D + d) : 0.f));
  // F and V: real prefix, zero tail.
  const Tensor w_out_p = padded.read_full("layers.0.w_out"), unembed_p = padded.read_full("unembed");
  const Tensor w_out = real.read_full("layers.0.w_out"), unembed = real.read_full("unembed");
  for (int64_t f = 0; f < 384; ++f) CHECK(w_out_p.get(f * E + 3) == (f < 380 ? w_out.get(f * E + 3) : 0.f));
  for (int64_t v = 0; v < 512; ++v) CHECK(unembed_p.get(2 * 512 + v) == (v < 509 ? unembed.get(2 * 509 + v) : 0.f));

  // A shard equals the same box of the full padded tensor, and reads no more than its own size.
  const int64_t w = 16 * D / n;
  for (int64_t b = 0; b < n; ++b) {
    counting.largest = counting.total = 0;
    const Tensor shard = padded.read("layers.1.wq", Box{{E / 2, b * w}, {E / 2, w}});
    CHECK(counting.total <= shard.numel());
    for (int64_t i = 0; i < E / 2; ++i)
      for (int64_t j = 0; j < w; ++j) CHECK(shard.get(i * w + j) == wq_p.get((E / 2 + i) * 16 * D + b * w + j));
  }
  // Untouched tensors pass straight through.
  counting.largest = counting.total = 0;
  const Tensor norm = padded.read_full("layers.0.attn_norm.weight");
  CHECK(counting.total == E);
  CHECK_THROWS_AS(padded.read("layers.0.wq", Box{{0, 0}, {E, 17 * D}}), tori::Error);
}

TEST_CASE("placements of padded models cover every padded head exactly once", "[padding][placement]") {
  const char* shapes[] = {"1x1x1", "2x1x1", "2x2x1", "2x2x2", "4x2x1", "1x2x4", "8x1x1", "3x1x1", "3x2x1", "1x3x2", "2x3x1"};
  for (const char* s : shapes) {
    const TorusShape shape = TorusShape::parse(s);
    const int n = shape.ranks();
    for (auto [H, K] : std::vector<std::pair<int64_t, int64_t>>{{9, 3}, {9, 1}, {9, 9}, {6, 2}}) {
      ModelConfig c = with_heads("llama-tiny", H, K);
      c.d_model = 144;
      const Padding pad = plan_padding(c, n);
      for (const PhasePlan& p : valid_phase_plans(c, shape, 8)) {
        INFO(s << " " << p.str() << " H=" << H << " K=" << K);
        std::map<int64_t, std::multiset<int64_t>> heads_by_sequence;
        for (int r = 0; r < n; ++r) {
          const Placement pl = make_placement(c, shape, tori::collectives::coords_of(shape, r), p, 8);
          CHECK(pl.padding.padded_heads == pad.padded_heads);
          for (int64_t b = pl.attn_batch_offset; b < pl.attn_batch_offset + pl.attn_batch_local; ++b)
            heads_by_sequence[b].insert(pl.heads.begin(), pl.heads.end());
          for (size_t k = 0; k < pl.heads.size(); ++k)
            CHECK(pl.kv_heads[k / size_t(pl.heads_per_kv)] == pl.heads[k] / pad.padded_group());
        }
        CHECK(heads_by_sequence.size() == 8);
        for (auto& [b, h] : heads_by_sequence) {
          CHECK(h.size() == size_t(pad.padded_heads));
          CHECK(std::set<int64_t>(h.begin(), h.end()).size() == size_t(pad.padded_heads));
          int64_t real = 0;
          for (int64_t x : h) real += pad.real_head(x) >= 0;
          CHECK(real == H);
        }
      }
    }
  }
}
