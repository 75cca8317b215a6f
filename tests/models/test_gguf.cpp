// GGUF: the container (every metadata type, versions 2 and 3, alignment), the block codecs
// (F32/F16/BF16/Q8_0/Q4_0/Q4_1 round trips; Q5_0/Q5_1 and the k-quants by hand-packed blocks), the
// llama mapping to ModelConfig and our tensor names, the Q/K un-permutation against an independent
// implementation of convert_hf_to_gguf.py's permute(), box reads, and malformed files (specific
// errors and a fuzz of byte flips and truncations).
#include <catch2/catch.hpp>

#include "tests/support/temp_files.hpp"
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "kernels/bf16.hpp"
#include "kernels/embedding.hpp"
#include "kernels/error.hpp"
#include "models/f16.hpp"
#include "models/gguf_checkpoint.hpp"
#include "models/gguf_writer.hpp"
#include "models/hf_checkpoint.hpp"
#include "models/synthetic_weights.hpp"
#include "models/weight_names.hpp"

using namespace tori::models;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {
using tori::test::slurp;
using tori::test::spit;
fs::path gguf_temp_dir(const std::string& name) { return tori::test::temp_dir("gguf_" + name); }

// A small Llama: 2 layers, GQA (4 query heads over 2 KV heads), D = 32, all dims multiples of 32.
ModelConfig small_llama(bool tied = false) {
  ModelConfig c = load_model_config("llama-tiny");
  c.name = "gguf-small";
  c.n_layers = 2;
  c.d_model = 64;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.d_head = 32;
  c.d_ff = 96;
  c.vocab = 64;
  c.max_seq = 128;
  c.rope_theta = 50000;
  c.tied_embeddings = tied;
  return c;
}

// convert_hf_to_gguf.py's permute(), written out as numpy would do it: w (rows = n_head * D, cols)
// viewed as [n_head][2][D/2][cols], axes 1 and 2 swapped, flattened back.
std::vector<float> numpy_permute(const std::vector<float>& w, int64_t n_head, int64_t rows, int64_t cols) {
  const int64_t half = rows / n_head / 2;
  std::vector<float> out(w.size());
  int64_t flat = 0;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < half; ++i)       // new axis 1 (was axis 2)
      for (int64_t a = 0; a < 2; ++a)        // new axis 2 (was axis 1)
        for (int64_t k = 0; k < cols; ++k) out[size_t(flat++)] = w[size_t(((h * 2 + a) * half + i) * cols + k)];
  return out;
}

double step_of(GgmlType t, double amax) {
  switch (t) {
    case GgmlType::f32: return 0;
    case GgmlType::f16: return amax / 1024;
    case GgmlType::bf16: return amax / 128;
    case GgmlType::q8_0: return amax / 127;
    case GgmlType::q4_0: return amax / 8 * 1.01;
    case GgmlType::q4_1: return 2 * amax / 15 * 1.01;
    default: break;  // read-only types: tested bit for bit, not by round trips
  }
  return 0;
}
const GgmlType kAllTypes[] = {GgmlType::f32, GgmlType::f16, GgmlType::bf16,
                              GgmlType::q8_0, GgmlType::q4_0, GgmlType::q4_1};
}  // namespace

TEST_CASE("GGML block codecs: known bytes and quantise/dequantise round trips", "[gguf]") {
  // Q4_0 by hand: d = 0.5, byte j = (low j & 15) | (high (15 - j) << 4).
  unsigned char q40[18];
  const uint16_t d = float_to_half(0.5f);
  std::memcpy(q40, &d, 2);
  for (int j = 0; j < 16; ++j) q40[2 + j] = static_cast<unsigned char>(j | (15 - j) << 4);
  float out[32];
  ggml_dequantize(GgmlType::q4_0, q40, 1, out);
  for (int j = 0; j < 16; ++j) {
    CHECK(out[j] == (j - 8) * 0.5f);             // low nibbles: elements 0..15
    CHECK(out[j + 16] == ((15 - j) - 8) * 0.5f);  // high nibbles: elements 16..31
  }
  // Q4_1: d = 0.25, m = -1.
  unsigned char q41[20];
  const uint16_t m = float_to_half(-1.f), d4 = float_to_half(0.25f);
  std::memcpy(q41, &d4, 2);
  std::memcpy(q41 + 2, &m, 2);
  for (int j = 0; j < 16; ++j) q41[4 + j] = static_cast<unsigned char>(j | (15 - j) << 4);
  ggml_dequantize(GgmlType::q4_1, q41, 1, out);
  for (int j = 0; j < 16; ++j) {
    CHECK(out[j] == j * 0.25f - 1.f);
    CHECK(out[j + 16] == (15 - j) * 0.25f - 1.f);
  }
  // Q8_0: d = 2, q = j - 16.
  unsigned char q80[34];
  const uint16_t d8 = float_to_half(2.f);
  std::memcpy(q80, &d8, 2);
  for (int j = 0; j < 32; ++j) q80[2 + j] = static_cast<unsigned char>(int8_t(j - 16));
  ggml_dequantize(GgmlType::q8_0, q80, 1, out);
  for (int j = 0; j < 32; ++j) CHECK(out[j] == float(j - 16) * 2.f);

  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(32 * 16);
  for (auto& v : x) v = nd(rng);
  for (GgmlType t : kAllTypes) {
    std::vector<unsigned char> buf(size_t(int64_t(x.size()) / ggml_block_elems(t) * ggml_block_bytes(t)));
    ggml_quantize(t, x.data(), int64_t(x.size()), buf.data());
    std::vector<float> y(x.size());
    ggml_dequantize(t, buf.data(), int64_t(x.size()) / ggml_block_elems(t), y.data());
    for (size_t b = 0; b < x.size(); b += 32) {
      double amax = 0;
      for (size_t j = b; j < b + 32; ++j) amax = std::max(amax, double(std::fabs(x[j])));
      for (size_t j = b; j < b + 32; ++j) {
        INFO(ggml_type_name(uint32_t(t)) << " element " << j);
        // Within half a step for rounding formats; a step for the 4-bit ones (their scale is f16).
        // (Q8_0's scale is rounded to f16, which can move q * d by up to 127 * amax/127 * 2^-11.)
        const double tol = t == GgmlType::q4_0 || t == GgmlType::q4_1 ? step_of(t, amax)
                                                                       : step_of(t, amax) / 2 + amax / 2048;
        REQUIRE(std::fabs(y[j] - x[j]) <= tol + 1e-7);
      }
    }
  }
}

// The read-only types (Q5_0, Q5_1 and the k-quants), one hand-packed block each, following the
// format's description (models/ggml_types.hpp, models/ggml_kquants.hpp) with integers and scales
// chosen so every expected value is exact; scales and mins above 15 and 31 exercise the high bits
// of the 6-bit packing, negative Q6_K scales the int8 sign. (Random blocks of every type are
// compared bit for bit with the `gguf` package by models:gguf_dequant_check.)
TEST_CASE("GGML Q5 and k-quant blocks decode as the format specifies", "[gguf]") {
  auto put_half = [](unsigned char* p, float v) {
    const uint16_t h = float_to_half(v);
    std::memcpy(p, &h, 2);
  };
  SECTION("Q5_0 and Q5_1: fifth bit of element j is bit j of qh") {
    for (GgmlType t : {GgmlType::q5_0, GgmlType::q5_1}) {
      const bool asym = t == GgmlType::q5_1;
      unsigned char b[24] = {};
      REQUIRE(ggml_block_bytes(t) == (asym ? 24 : 22));
      put_half(b, 0.5f);
      if (asym) put_half(b + 2, -3.f);
      unsigned char* qh = b + (asym ? 4 : 2);
      unsigned char* qs = qh + 4;
      int q[32];
      for (int j = 0; j < 32; ++j) {
        q[j] = (j * 11 + 5) % 32;
        qs[j % 16] |= static_cast<unsigned char>((q[j] & 15) << (j < 16 ? 0 : 4));
        qh[j / 8] |= static_cast<unsigned char>((q[j] >> 4) << (j % 8));
      }
      float out[32];
      ggml_dequantize(t, b, 1, out);
      for (int j = 0; j < 32; ++j) {
        INFO(ggml_type_name(uint32_t(t)) << " element " << j);
        CHECK(out[j] == (asym ? q[j] * 0.5f - 3.f : (q[j] - 16) * 0.5f));
      }
    }
  }
  SECTION("Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins") {
    for (GgmlType t : {GgmlType::q4_k, GgmlType::q5_k}) {
      const bool five = t == GgmlType::q5_k;
      std::vector<unsigned char> b(size_t(ggml_block_bytes(t)), 0);
      REQUIRE(ggml_block_elems(t) == 256);
      REQUIRE(b.size() == (five ? 176u : 144u));
      put_half(b.data(), 0.25f);
      put_half(b.data() + 2, 0.5f);
      int scale[8], min[8];
      for (int s = 0; s < 8; ++s) scale[s] = s < 4 ? s + 1 : 33 + 7 * (s - 4), min[s] = s < 4 ? 60 - s : 17 + 5 * s;
      unsigned char* sc = b.data() + 4;
      for (int s = 0; s < 4; ++s) {
        sc[s] = static_cast<unsigned char>(scale[s] | (scale[s + 4] >> 4) << 6);
        sc[s + 4] = static_cast<unsigned char>(min[s] | (min[s + 4] >> 4) << 6);
        sc[s + 8] = static_cast<unsigned char>((scale[s + 4] & 15) | (min[s + 4] & 15) << 4);
      }
      unsigned char* qh = b.data() + 16;
      unsigned char* qs = b.data() + 16 + (five ? 32 : 0);
      std::vector<int> q(256);
      for (int e = 0; e < 256; ++e) {
        q[size_t(e)] = (e * 7 + e / 32) % (five ? 32 : 16);
        qs[32 * (e / 64) + e % 32] |= static_cast<unsigned char>((q[size_t(e)] & 15) << (e % 64 < 32 ? 0 : 4));
        if (five) qh[e % 32] |= static_cast<unsigned char>((q[size_t(e)] >> 4) << (e / 32));
      }
      std::vector<float> out(256);
      ggml_dequantize(t, b.data(), 1, out.data());
      for (int e = 0; e < 256; ++e) {
        INFO(ggml_type_name(uint32_t(t)) << " element " << e);
        CHECK(out[size_t(e)] == 0.25f * scale[e / 32] * q[size_t(e)] - 0.5f * min[e / 32]);
      }
    }
  }
  SECTION("Q6_K: 16 sub-blocks of 16 with int8 scales, 4 + 2 bits per value") {
    std::vector<unsigned char> b(210, 0);
    REQUIRE(ggml_block_bytes(GgmlType::q6_k) == 210);
    put_half(b.data() + 208, 0.125f);
    int scale[16];
    for (int s = 0; s < 16; ++s) scale[s] = s % 2 ? -3 * s : 2 * s + 1, b[size_t(192 + s)] = static_cast<unsigned char>(int8_t(scale[s]));
    std::vector<int> q(256);
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, f = e % 128;
      q[size_t(e)] = (e * 5 + e / 64) % 64;
      b[size_t(64 * h + f % 64)] |= static_cast<unsigned char>((q[size_t(e)] & 15) << (f < 64 ? 0 : 4));
      b[size_t(128 + 32 * h + f % 32)] |= static_cast<unsigned char>((q[size_t(e)] >> 4) << (2 * (f / 32)));
    }
    std::vector<float> out(256);
    ggml_dequantize(GgmlType::q6_k, b.data(), 1, out.data());
    for (int e = 0; e < 256; ++e) {
      INFO("Q6_K element " << e);
      CHECK(out[size_t(e)] == 0.125f * scale[e / 16] * (q[size_t(e)] - 32));
    }
  }
  SECTION("Q2_K and Q3_K: 16 sub-blocks of 16, 2-bit fields (Q3_K: a high bit, signed 6-bit scales)") {
    for (GgmlType t : {GgmlType::q2_k, GgmlType::q3_k}) {
      const bool three = t == GgmlType::q3_k;
      std::vector<unsigned char> b(size_t(ggml_block_bytes(t)), 0);
      REQUIRE(b.size() == (three ? 110u : 84u));
      int scale[16], min[16];
      for (int s = 0; s < 16; ++s) scale[s] = three ? (s * 37 + 5) % 64 : (s * 7 + 3) % 16, min[s] = (s * 5 + 1) % 16;
      unsigned char* qs = b.data() + (three ? 32 : 16);
      if (three) {
        put_half(b.data() + 108, 0.5f);
        for (int s = 0; s < 16; ++s) {
          b[size_t(96 + s % 8)] |= static_cast<unsigned char>((scale[s] & 15) << (s < 8 ? 0 : 4));
          b[size_t(104 + s % 4)] |= static_cast<unsigned char>((scale[s] >> 4) << (2 * (s / 4)));
        }
      } else {
        put_half(b.data() + 80, 0.5f);
        put_half(b.data() + 82, 0.25f);
        for (int s = 0; s < 16; ++s) b[size_t(s)] = static_cast<unsigned char>(scale[s] | min[s] << 4);
      }
      std::vector<int> q(256), high(256);
      for (int e = 0; e < 256; ++e) {
        const int f = e % 128;
        q[size_t(e)] = (e * 3 + e / 16) % 4;
        high[size_t(e)] = (e * 5 + e / 64) % 3 == 0;
        qs[32 * (e / 128) + f % 32] |= static_cast<unsigned char>(q[size_t(e)] << (2 * (f / 32)));
        if (three) b[size_t(e % 32)] |= static_cast<unsigned char>(high[size_t(e)] << (e / 32));
      }
      std::vector<float> out(256);
      ggml_dequantize(t, b.data(), 1, out.data());
      for (int e = 0; e < 256; ++e) {
        INFO(ggml_type_name(uint32_t(t)) << " element " << e);
        const int s = e / 16;
        CHECK(out[size_t(e)] == (three ? 0.5f * (scale[s] - 32) * (q[size_t(e)] - (high[size_t(e)] ? 0 : 4))
                                       : 0.5f * scale[s] * q[size_t(e)] - 0.25f * min[s]));
      }
    }
  }
  SECTION("the read-only types are refused by the quantiser") {
    std::vector<float> x(256, 1.f);
    std::vector<unsigned char> buf(256);
    for (GgmlType t : {GgmlType::q5_0, GgmlType::q5_1, GgmlType::q2_k, GgmlType::q3_k, GgmlType::q4_k, GgmlType::q5_k,
                       GgmlType::q6_k})
      CHECK_THROWS_WITH(ggml_quantize(t, x.data(), 256, buf.data()), Contains("cannot encode GGML type"));
  }
}

TEST_CASE("GGUF metadata of every type round-trips, versions 2 and 3, any alignment", "[gguf]") {
  fs::path d = gguf_temp_dir("meta");
  for (uint32_t version : {2u, 3u})
    for (uint32_t alignment : {32u, 64u, 8u}) {
      GgufWriter w;
      auto scalar = [&](const std::string& k, GgufType t, int64_t i, double f = 0) {
        GgufValue v;
        v.type = t;
        v.i = i;
        v.f = f;
        w.add(k, v);
      };
      scalar("t.u8", GgufType::u8, 250);
      scalar("t.i8", GgufType::i8, -100);
      scalar("t.u16", GgufType::u16, 65000);
      scalar("t.i16", GgufType::i16, -32000);
      scalar("t.u32", GgufType::u32, 4000000000LL);
      scalar("t.i32", GgufType::i32, -2000000000LL);
      scalar("t.u64", GgufType::u64, 1LL << 40);
      scalar("t.i64", GgufType::i64, -(1LL << 50));
      scalar("t.f32", GgufType::f32, 0, 0.5);
      scalar("t.f64", GgufType::f64, 0, 1e-300);
      scalar("t.bool", GgufType::boolean, 1);
      w.add_string("t.str", std::string("h\xc3\xa9llo\0x", 8));
      w.add_strings("t.strs", {"a", "", "ccc"});
      w.add_i32s("t.i32s", {1, -2, 3});
      GgufValue fl;
      fl.type = GgufType::array;
      fl.elem = GgufType::f32;
      fl.floats = {0.25, -4};
      w.add("t.f32s", fl);
      GgufValue nest;
      nest.type = GgufType::array;
      nest.elem = GgufType::array;
      nest.arrays = {fl, fl};
      w.add("t.nested", nest);
      w.add_tensor("x", {32, 3}, GgmlType::q8_0, std::vector<float>(96, 1.f));
      w.add_tensor("y", {5}, GgmlType::f32, {1, 2, 3, 4, 5});
      const fs::path p = d / "meta.gguf";
      w.write(p.string(), version, alignment);
      GgufFile f(p.string());
      CHECK(f.version() == version);
      CHECK(f.alignment() == alignment);
      CHECK(f.get_int("t.u8") == 250);
      CHECK(f.get_int("t.i8") == -100);
      CHECK(f.get_int("t.u16") == 65000);
      CHECK(f.get_int("t.i16") == -32000);
      CHECK(f.get_int("t.u32") == 4000000000LL);
      CHECK(f.get_int("t.i32") == -2000000000LL);
      CHECK(f.get_int("t.u64") == 1LL << 40);
      CHECK(f.get_int("t.i64") == -(1LL << 50));
      CHECK(f.get_float("t.f32") == 0.5);
      CHECK(f.get_float("t.f64") == 1e-300);
      CHECK(f.get_int("t.bool") == 1);
      CHECK(f.get_string("t.str") == std::string("h\xc3\xa9llo\0x", 8));
      CHECK(f.get_array("t.strs", GgufType::string).strings == std::vector<std::string>{"a", "", "ccc"});
      CHECK(f.get_array("t.i32s", GgufType::i32).ints == std::vector<int64_t>{1, -2, 3});
      CHECK(f.get_array("t.f32s", GgufType::f32).floats == std::vector<double>{0.25, -4});
      CHECK(f.get_array("t.nested", GgufType::array).arrays.size() == 2);
      CHECK(f.get_array("t.nested", GgufType::array).arrays[1].floats == std::vector<double>{0.25, -4});
      CHECK(f.get_int("missing", 7) == 7);
      CHECK_THROWS_WITH(f.get_int("missing"), Contains("missing metadata key 'missing'"));
      CHECK_THROWS_WITH(f.get_string("t.u8"), Contains("key 't.u8' is a u8, expected a string"));
      CHECK(f.info("x").dims == std::vector<int64_t>{32, 3});
      CHECK(f.info("x").offset % alignment == 0);
      auto y = f.read_rows("y", 0, 1, 1, 3);
      CHECK(y.get(0) == 2.f);
      CHECK(y.get(2) == 4.f);
      CHECK(f.read_rows("x", {2, 0}, 5, 20).get(19) == Approx(1.f).epsilon(1e-3));  // Q8_0: d = 1/127 in f16
    }
  fs::remove_all(d);
}

TEST_CASE("llama GGUF: config mapping and exact reads, box by box", "[gguf]") {
  fs::path d = gguf_temp_dir("export");
  for (bool tied : {false, true}) {
    SyntheticWeights src(small_llama(tied), 5);
    const fs::path p = d / (tied ? "tied.gguf" : "untied.gguf");
    export_llama_gguf(src, p.string(), GgmlType::f32, {});
    auto opened = open_model(p.string(), 0);  // open_model() dispatches on .gguf
    const GgufCheckpoint& ck = dynamic_cast<const GgufCheckpoint&>(*opened);
    const ModelConfig& c = ck.config(), &want = src.config();
    CHECK(c.name == "gguf-small");
    CHECK(c.n_layers == want.n_layers);
    CHECK(c.d_model == want.d_model);
    CHECK(c.n_heads == want.n_heads);
    CHECK(c.n_kv_heads == want.n_kv_heads);
    CHECK(c.d_head == want.d_head);
    CHECK(c.d_ff == want.d_ff);
    CHECK(c.vocab == want.vocab);
    CHECK(c.max_seq == want.max_seq);
    CHECK(c.rope_theta == want.rope_theta);
    CHECK(c.norm_eps == Approx(want.norm_eps));
    CHECK(c.tied_embeddings == tied);
    CHECK(c.block == Block::serial);
    CHECK(c.mlp == Mlp::swiglu);
    CHECK(c.norm == Norm::rmsnorm);
    for (const TensorSpec& s : model_tensors(want)) {
      Box box = Box::full(s.shape);
      if (s.shape.size() == 2) box = {{s.shape[0] / 3, s.shape[1] / 4}, {s.shape[0] / 2, s.shape[1] / 2 + 1}};
      else box = {{3}, {s.shape[0] - 5}};
      for (const Box& b : {box, Box::full(s.shape)}) {
        auto a = ck.read(s.name, b), e = src.read(s.name, b);
        INFO(s.name);
        REQUIRE(a.shape() == e.shape());
        REQUIRE(std::memcmp(a.raw(), e.raw(), a.nbytes()) == 0);
      }
    }
  }
  fs::remove_all(d);
}

TEST_CASE("llama GGUF: Q/K rows permuted as convert_hf_to_gguf.py does are read back in HF layout", "[gguf]") {
  // Hand-built file (not export_llama_gguf): HF-layout q_proj / k_proj [out, in] with known values,
  // permuted by an independent transcription of the Python permute(), written as attn_q / attn_k.
  SyntheticWeights src(small_llama(), 9);
  const ModelConfig& c = src.config();
  const int64_t E = c.d_model, HD = c.n_heads * c.d_head, KD = c.n_kv_heads * c.d_head;
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", uint32_t(c.n_layers));
  w.add_u32("llama.embedding_length", uint32_t(E));
  w.add_u32("llama.feed_forward_length", uint32_t(c.d_ff));
  w.add_u32("llama.attention.head_count", uint32_t(c.n_heads));
  w.add_u32("llama.attention.head_count_kv", uint32_t(c.n_kv_heads));
  w.add_u32("llama.attention.key_length", uint32_t(c.d_head));  // not d_model / n_heads here
  w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  std::vector<std::string> tokens;
  for (int64_t i = 0; i < c.vocab; ++i) {
    std::string tok = "t";
    tok += std::to_string(i);
    tokens.push_back(tok);
  }
  w.add_strings("tokenizer.ggml.tokens", tokens);
  auto values = [](const tori::kernels::Tensor& t) {
    return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
  };
  std::vector<float> hf_q, hf_k;
  for (const TensorSpec& s : model_tensors(c)) {
    const GgufLocation at = gguf_locate(c, s.name);
    auto t = src.read_full(s.name);
    if (s.shape.size() == 1) {
      w.add_tensor(at.name, {s.shape[0]}, GgmlType::f32, values(t));
      continue;
    }
    if (!at.transposed) {
      w.add_tensor(at.name, {s.shape[1], s.shape[0]}, GgmlType::f32, values(t));
      continue;
    }
    std::vector<float> hf = values(tori::kernels::transpose2d(t));  // HF [out, in]
    if (s.name.ends_with(".wq")) hf = numpy_permute(hf, c.n_heads, HD, E);
    if (s.name.ends_with(".wk")) hf = numpy_permute(hf, c.n_kv_heads, KD, E);  // permute(w, n_head, n_kv) uses n_kv
    w.add_tensor(at.name, {s.shape[0], s.shape[1]}, GgmlType::f32, hf);
  }
  fs::path d = gguf_temp_dir("perm");
  w.write((d / "perm.gguf").string());
  GgufCheckpoint ck((d / "perm.gguf").string());
  CHECK(ck.config().vocab == c.vocab);
  CHECK(ck.config().d_head == 32);
  CHECK(ck.config().max_seq == 2048);  // llama.context_length absent: default
  for (const char* name : {"layers.0.wq", "layers.1.wk", "layers.1.wv", "layers.0.wo"}) {
    auto a = ck.read_full(name), e = src.read_full(name);
    INFO(name);
    REQUIRE(std::memcmp(a.raw(), e.raw(), a.nbytes()) == 0);
    // A box straddling head and half-head boundaries.
    Box b{{5, 13}, {20, 40}};
    auto ab = ck.read(name, b), eb = src.read(name, b);
    REQUIRE(std::memcmp(ab.raw(), eb.raw(), ab.nbytes()) == 0);
  }
  // The un-permutation is really doing something: the raw attn_q rows differ from HF's.
  auto raw = ck.file().read_rows("blk.0.attn_q.weight", 0, 2, 0, E);
  auto hf = tori::kernels::transpose2d(src.read_full("layers.0.wq"));
  CHECK(std::memcmp(raw.data<float>() + E, hf.data<float>() + E, size_t(E) * 4) != 0);
  CHECK(gguf_qk_gguf_row(gguf_qk_hf_row(77, 32), 32) == 77);
  fs::remove_all(d);
}

TEST_CASE("llama GGUF: every weight type decodes within its step; boxes equal the full read", "[gguf]") {
  SyntheticWeights src(small_llama(), 11);
  fs::path d = gguf_temp_dir("types");
  for (GgmlType t : kAllTypes) {
    const fs::path p = d / (ggml_type_name(uint32_t(t)) + ".gguf");
    export_llama_gguf(src, p.string(), t, {});
    GgufCheckpoint ck(p.string());
    for (const TensorSpec& s : model_tensors(src.config())) {
      if (s.shape.size() != 2) continue;
      auto got = ck.read_full(s.name), want = src.read_full(s.name);
      double amax = 0;
      for (int64_t i = 0; i < want.numel(); ++i) amax = std::max(amax, double(std::fabs(want.get(i))));
      const double tol = step_of(t, amax) + 1e-7;
      INFO(ggml_type_name(uint32_t(t)) << " " << s.name);
      double worst = 0;
      for (int64_t i = 0; i < want.numel(); ++i) worst = std::max(worst, double(std::fabs(got.get(i) - want.get(i))));
      CHECK(worst <= tol);
      if (t == GgmlType::f32) CHECK(worst == 0);
      if (t == GgmlType::bf16)
        for (int64_t i = 0; i < want.numel(); ++i) REQUIRE(got.get(i) == tori::kernels::round_to_bf16(want.get(i)));
      // Boxes (columns not on block boundaries) are exactly the slice of the full read.
      const int64_t r0 = s.shape[0] / 3, c0 = s.shape[1] / 5 + 1, nr = s.shape[0] / 2 - 1, nc = s.shape[1] / 2 + 3;
      auto box = ck.read(s.name, {{r0, c0}, {nr, nc}});
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t k = 0; k < nc; ++k)
          REQUIRE(box.get(r * nc + k) == got.get((r0 + r) * s.shape[1] + c0 + k));
    }
  }
  fs::remove_all(d);
}

TEST_CASE("malformed GGUF files are clear errors", "[gguf]") {
  fs::path d = gguf_temp_dir("bad");
  SyntheticWeights src(small_llama(), 3);
  export_llama_gguf(src, (d / "good.gguf").string(), GgmlType::q8_0, {});
  const std::string good = slurp(d / "good.gguf");
  auto open_variant = [&](const std::string& bytes) {
    spit(d / "v.gguf", bytes);
    GgufCheckpoint ck((d / "v.gguf").string());
  };
  auto patched = [&](size_t at, const void* p, size_t n) {
    std::string s = good;
    std::memcpy(s.data() + at, p, n);
    return s;
  };
  CHECK_THROWS_WITH(open_variant("GGUF"), Contains("shorter than the 24-byte GGUF header"));
  CHECK_THROWS_WITH(open_variant("GGML" + good.substr(4)), Contains("bad magic"));
  const uint32_t v1 = 1, v4 = 4;
  CHECK_THROWS_WITH(open_variant(patched(4, &v1, 4)), Contains("version 1 is not supported (allowed: 2, 3)"));
  CHECK_THROWS_WITH(open_variant(patched(4, &v4, 4)), Contains("version 4"));
  const uint64_t huge = uint64_t(1) << 40;
  CHECK_THROWS_WITH(open_variant(patched(8, &huge, 8)), Contains("tensor count"));
  CHECK_THROWS_WITH(open_variant(patched(16, &huge, 8)), Contains("metadata count"));
  // The first key's length (bytes 24..31) past the end.
  CHECK_THROWS_WITH(open_variant(patched(24, &huge, 8)), Contains("string length"));
  CHECK_THROWS_WITH(open_variant(good.substr(0, good.size() - 100)), Contains("runs past the end of the data section"));
  CHECK_THROWS_WITH(open_variant(good.substr(0, 200)), Contains("cannot fit in the file"));
  CHECK_THROWS_WITH(open_variant(good.substr(0, 1000)), Contains("runs past the end of the file"));
  {  // A tensor of a type we do not decode, and one at a misaligned offset.
    GgufWriter w;
    w.add_tensor("a", {32}, GgmlType::f32, std::vector<float>(32, 0.f));
    std::string s = w.bytes();
    const size_t type_at = s.find('a') + 1 + 4 + 8;  // name, n_dims, dims[0]
    const uint32_t iq2xxs = 16;
    std::memcpy(s.data() + type_at, &iq2xxs, 4);
    CHECK_THROWS_WITH(open_variant(s), Contains("tensor 'a' has type IQ2_XXS (supported: F32, F16, BF16, Q8_0, Q4_0, "
                                                "Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)"));
    s = w.bytes();
    const uint64_t off = 4;
    std::memcpy(s.data() + type_at + 4, &off, 8);
    CHECK_THROWS_WITH(open_variant(s), Contains("offset 4 is not a multiple of the alignment 32"));
  }
  {  // Not llama, and a missing tensor.
    GgufWriter w;
    w.add_string("general.architecture", "falcon");
    CHECK_THROWS_WITH(open_variant(w.bytes()), Contains("general.architecture = 'falcon' is not supported (allowed: llama, gemma3)"));
  }
  CHECK_THROWS_WITH(GgufCheckpoint((d / "nope.gguf").string()), Contains("cannot open"));
  fs::remove_all(d);
}

TEST_CASE("fuzz: corrupted GGUF headers only ever throw tori::Error", "[gguf]") {
  fs::path d = gguf_temp_dir("fuzz");
  ModelConfig c = small_llama();
  c.n_layers = 1;
  c.vocab = 32;
  SyntheticWeights src(c, 3);
  export_llama_gguf(src, (d / "good.gguf").string(), GgmlType::q4_1, {});
  const std::string good = slurp(d / "good.gguf");
  // The header ends where the first tensor's data begins; flip bytes there mostly.
  const size_t header = std::min<size_t>(good.size(), GgufFile((d / "good.gguf").string()).tensors().size() * 64 + 900);
  std::mt19937_64 rng(12345);
  int opened = 0, errors = 0;
  const fs::path p = d / "v.gguf";
  for (int iter = 0; iter < 600; ++iter) {
    std::string s = good;
    const int kind = iter % 3;
    if (kind == 0) {  // a few random byte flips in the header
      for (int k = 0, n = 1 + int(rng() % 4); k < n; ++k) s[rng() % header] = char(rng());
    } else if (kind == 1) {  // truncation
      s.resize(rng() % good.size());
    } else {  // a random u32/u64-sized overwrite with a large or small value
      const size_t at = rng() % (header - 8);
      const uint64_t v = (rng() & 1) ? rng() : rng() % 64;
      std::memcpy(s.data() + at, &v, (rng() & 1) ? 8 : 4);
    }
    spit(p, s);
    try {
      GgufCheckpoint ck(p.string());
      for (const TensorSpec& t : model_tensors(ck.config())) ck.read_full(t.name);
      ++opened;
    } catch (const tori::Error&) {
      ++errors;
    } catch (const std::exception& e) {
      FAIL("iteration " << iter << ": not a tori::Error: " << e.what());
    }
  }
  CHECK(errors > 300);
  INFO("opened " << opened);
  fs::remove_all(d);
}

TEST_CASE("GGUF written by llama.cpp's gguf-py decodes exactly as gguf-py dequantises it", "[gguf]") {
  // tests/models/data/gguf_pyref.gguf, made by make_gguf_pyref.py (gguf 0.19.0, numpy 2.4.6).
  const fs::path p = fs::path(__FILE__).parent_path() / "data" / "gguf_pyref.gguf";
  GgufFile f(p.string());
  CHECK(f.version() == 3);
  CHECK(f.get_string("general.architecture") == "llama");
  CHECK(f.get_int("ref.u32") == 123456);
  CHECK(f.get_int("ref.i8") == -7);
  CHECK(f.get_float("ref.f64") == 2.5);
  CHECK(f.get_int("ref.bool") == 1);
  CHECK(f.get_string("ref.str") == "h\xc3\xa9llo");
  CHECK(f.get_array("ref.strs", GgufType::string).strings == std::vector<std::string>{"a", "bc", ""});
  CHECK(f.get_array("ref.ints", GgufType::i32).ints == std::vector<int64_t>{1, -2, 300});
  const auto x = f.read_rows("x.f32", 0, 4, 0, 64);
  for (const char* t : {"q8_0", "q4_0", "q4_1", "f16", "bf16"}) {
    const std::string name = std::string("x.") + t;
    INFO(name);
    CHECK(f.info(name).dims == std::vector<int64_t>{64, 4});
    auto got = f.read_rows(name, 0, 4, 0, 64), want = f.read_rows(name + ".expected", 0, 4, 0, 64);
    REQUIRE(std::memcmp(got.raw(), want.raw(), got.nbytes()) == 0);
    auto box = f.read_rows(name, {3, 1}, 7, 40);  // crossing a block boundary
    for (int64_t k = 0; k < 40; ++k) REQUIRE(box.get(k) == want.get(3 * 64 + 7 + k));
    // Our quantiser (the llama.cpp reference) agrees with gguf-py's on these values.
    const GgmlType type = f.info(name).type;
    std::vector<unsigned char> ours(size_t(256 / ggml_block_elems(type) * ggml_block_bytes(type)));
    ggml_quantize(type, x.data<float>(), 256, ours.data());
    std::vector<float> back(256);
    ggml_dequantize(type, ours.data(), 256 / ggml_block_elems(type), back.data());
    int same = 0;
    for (int64_t i = 0; i < 256; ++i) same += back[size_t(i)] == want.get(i);
    CHECK(same == 256);
  }
}
