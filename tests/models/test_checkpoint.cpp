#include <catch2/catch.hpp>

#include "tests/support/temp_files.hpp"
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/bf16.hpp"
#include "kernels/error.hpp"
#include "models/hf_checkpoint.hpp"
#include "models/synthetic_weights.hpp"
#include "models/weight_names.hpp"

using namespace tori::models;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {
using tori::test::slurp;
using tori::test::spit;
using tori::test::temp_dir;
}  // namespace

TEST_CASE("exported checkpoints read back exactly, box by box", "[checkpoint]") {
  for (const char* model : {"llama-tiny", "falcon-tiny"}) {
    SyntheticWeights src(load_model_config(model), 3);
    fs::path d = temp_dir(std::string("export_") + model);
    export_hf_checkpoint(src, d.string(), "f32", model == std::string("falcon-tiny") ? 1 << 20 : 0);
    HfCheckpoint ck(d.string());
    CHECK(ck.config().n_heads == src.config().n_heads);
    CHECK(ck.config().n_kv_heads == src.config().n_kv_heads);
    CHECK(ck.config().block == src.config().block);
    for (const TensorSpec& s : model_tensors(src.config())) {
      Box box = Box::full(s.shape);
      if (s.shape.size() == 2) box = {{s.shape[0] / 3, s.shape[1] / 4}, {s.shape[0] / 2, s.shape[1] / 2 + 1}};
      auto a = ck.read(s.name, box), b = src.read(s.name, box);
      REQUIRE(a.shape() == b.shape());
      CHECK(std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
    }
    fs::remove_all(d);
  }
}

TEST_CASE("bf16 and f16 checkpoints hold the rounded values", "[checkpoint]") {
  SyntheticWeights src(load_model_config("llama-tiny"), 3);
  fs::path d = temp_dir("export16");
  export_hf_checkpoint(src, (d / "bf16").string(), "bf16");
  export_hf_checkpoint(src, (d / "f16").string(), "f16");
  HfCheckpoint b(( d / "bf16").string()), h((d / "f16").string());
  auto want = src.read_full("layers.1.wq");
  auto gb = b.read_full("layers.1.wq"), gh = h.read_full("layers.1.wq");
  for (int64_t i = 0; i < want.numel(); ++i) {
    REQUIRE(gb.get(i) == tori::kernels::round_to_bf16(want.get(i)));
    // f16 keeps 11 significant bits: relative error <= 2^-11 for normal values.
    REQUIRE(std::abs(gh.get(i) - want.get(i)) <= std::abs(want.get(i)) * (1.0 / 2048) + 1e-7);
  }
  fs::remove_all(d);
}

TEST_CASE("malformed checkpoints are clear errors, never crashes", "[checkpoint]") {
  SyntheticWeights src(load_model_config("llama-tiny"), 3);
  fs::path good = temp_dir("good");
  export_hf_checkpoint(src, good.string(), "f32");
  const std::string file = slurp(good / "model.safetensors");
  const std::string config = slurp(good / "config.json");
  auto variant = [&](const std::string& name, const std::string& st, const std::string& cfg) {
    fs::path d = temp_dir(name);
    spit(d / "model.safetensors", st);
    spit(d / "config.json", cfg);
    return d.string();
  };
  uint64_t hlen;
  std::memcpy(&hlen, file.data(), 8);
  const std::string header = file.substr(8, hlen);

  std::string huge = file;
  const uint64_t big = uint64_t(1) << 40;
  std::memcpy(huge.data(), &big, 8);
  CHECK_THROWS_WITH(HfCheckpoint(variant("huge", huge, config)), Contains("header length") && Contains("past the end"));
  CHECK_THROWS_WITH(HfCheckpoint(variant("short", file.substr(0, 5), config)), Contains("shorter than"));
  CHECK_THROWS_WITH(HfCheckpoint(variant("trunc", file.substr(0, file.size() - 1000), config)),
                    Contains("past the end of the data"));
  std::string garbage = file;
  garbage[9] = '#';
  CHECK_THROWS_WITH(HfCheckpoint(variant("json", garbage, config)), Contains("not valid JSON"));
  std::string i64 = file;
  auto p = i64.find("\"F32\"");
  i64.replace(p, 5, "\"I64\"");
  CHECK_THROWS_WITH(HfCheckpoint(variant("dtype", i64, config)), Contains("I64") && Contains("allowed: F32, F16, BF16"));
  // config says a different d_ff: every FFN tensor has the wrong shape
  nlohmann::json cj = nlohmann::json::parse(config);
  cj["intermediate_size"] = 1024;
  CHECK_THROWS_WITH(HfCheckpoint(variant("mismatch", file, cj.dump())), Contains("checkpoint/config mismatch"));
  cj = nlohmann::json::parse(config);
  cj["num_hidden_layers"] = 5;
  CHECK_THROWS_WITH(HfCheckpoint(variant("missing", file, cj.dump())), Contains("missing tensor 'model.layers.4."));
  cj = nlohmann::json::parse(config);
  cj["architectures"] = {"GPT2LMHeadModel"};
  cj["model_type"] = "gpt2";
  CHECK_THROWS_AS(HfCheckpoint(variant("arch", file, cj.dump())), tori::InputError);
  CHECK_THROWS_WITH(HfCheckpoint(variant("arch2", file, cj.dump())), Contains("LlamaForCausalLM, FalconForCausalLM"));
  CHECK_THROWS_WITH(HfCheckpoint(variant("badcfg", file, "{nope")), Contains("config.json") && Contains("not valid JSON"));
  CHECK_THROWS_WITH(export_hf_checkpoint(SyntheticWeights(load_model_config("palm-tiny"), 1), (good / "x").string(), "f32"),
                    Contains("no Hugging Face layout"));
  // Fuzz-style: flip bytes of the header one at a time; every result is a clean error or a valid read.
  for (size_t i = 8; i < 8 + std::min<size_t>(hlen, 400); i += 7) {
    std::string f = file;
    f[i] = static_cast<char>(f[i] ^ 0x5a);
    try {
      HfCheckpoint ck(variant("fuzz", f, config));
      (void)ck.read_full("embed");
    } catch (const tori::Error&) {
    }
  }
  (void)header;
}

TEST_CASE("safetensors headers with float or wrapping shapes are clear errors", "[checkpoint]") {
  // Found by the safetensors fuzz target: a shape entry past int64 (JSON reads it as a float) was
  // converted with undefined behaviour, and a shape whose byte count wraps around 2^64 matched
  // empty data_offsets and was accepted.
  auto file_with = [](const std::string& header) {
    const fs::path p = temp_dir("st_header") / "model.safetensors";
    std::string bytes(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(bytes.data(), &n, 8);
    spit(p, bytes + header);
    return p.string();
  };
  CHECK_THROWS_WITH(
      SafetensorsFile(file_with(R"({"w":{"dtype":"F32","shape":[3,11111111111111111111111111111111114],"data_offsets":[0,48]}})")),
      Contains("tensor 'w' has a shape that is not a list of integers"));
  CHECK_THROWS_WITH(SafetensorsFile(file_with(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})")),
                    Contains("not a list of integers"));
  CHECK_THROWS_WITH(SafetensorsFile(file_with(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})")),
                    Contains("malformed data_offsets"));
  CHECK_THROWS_WITH(
      SafetensorsFile(file_with(R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})")),
      Contains("tensor 'w': its shape needs more than 2^64 bytes"));
  CHECK_NOTHROW(SafetensorsFile(file_with(R"({"w":{"dtype":"F16","shape":[0,4611686018427387904],"data_offsets":[0,0]}})")));
}
