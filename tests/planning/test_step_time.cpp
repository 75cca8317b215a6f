// Pricing a step on a calibrated CPU profile (planning/step_time.hpp, planning/hardware_profile.hpp):
// matmuls by shape (the K = N = 256 and 1024 curves), collectives call by call from the measured
// collective_us curves (and never faster than the link model) plus collective_sync_us per call,
// plus collective_step_gbps per byte, with rank_imbalance's waiting for the slowest rank, the
// overheads by phase and by weight format, the profile keys that carry them, and the cost model's
// per-shape and per-call lists adding up to its totals.
#include <catch2/catch.hpp>
#include <cmath>

#include "kernels/error.hpp"
#include "models/config.hpp"
#include "planning/cost_model.hpp"
#include "planning/step_time.hpp"
#include "runtime/attention_kernel.hpp"

using namespace tori::runtime;
using namespace tori::planning;
using tori::collectives::Collective;
using tori::kernels::WeightFormat;

namespace {

const char* kProfile = R"(
name: test-cpu
peak_tflops_f32: 0.1
peak_tflops_bf16: 0.2
peak_tflops_int8: 0.2
hbm_gib: 16
hbm_gbps: 20
link_gbps_x: 5
link_gbps_y: 5
link_gbps_z: 5
link_latency_us: 10
collective_sync_us: 2
collective_us: {all_gather: {1000: 10, 1000000: 110, 10000000: 3110}, reduce_scatter: {1000: 20}}
cpu:
  - threads: 1
    matmul_gflops_f32: {1: 10, 100: 100}
    matmul_gflops_bf16: {1: 20, 100: 200}
    matmul_gflops_int8: {1: 20, 100: 200}
    matmul_small_gflops_f32: {1: 2.5, 100: 25}
    matmul_small_gflops_bf16: {1: 5, 100: 50}
    matmul_small_gflops_int8: {1: 5, 100: 50}
    attention_gflops: 50
    read_gbps: 20
    cache_read_gbps: 60
    cache_mib: 16
    layer_overhead_us: 0
    prefill_overhead_us: 0
    row_overhead_ns: 0
)";

}  // namespace

TEST_CASE("collective_us: a call's time from its kind's curve by the bytes it sends") {
  const HardwareProfile hw = parse_hardware_profile(kProfile, "test.yaml");
  // Below the first point: its time (the latency floor); between points: linear in bytes; above the
  // last: the last segment extended.
  CHECK(hw.collective_seconds(Collective::all_gather, 10) == Approx(10e-6));
  CHECK(hw.collective_seconds(Collective::all_gather, 500500) == Approx(60e-6));
  CHECK(hw.collective_seconds(Collective::all_gather, 5500000) == Approx(1610e-6));
  CHECK(hw.collective_seconds(Collective::all_gather, 19000000) == Approx(6110e-6));
  CHECK(hw.collective_seconds(Collective::reduce_scatter, 1e9) == Approx(20e-6));  // one point: constant
  CHECK(hw.collective_seconds(Collective::all_to_all, 1000) < 0);                  // no curve
}

TEST_CASE("matmul_rate: by rows, and by size between the K = N = 256 and 1024 curves") {
  const HardwareProfile hw = parse_hardware_profile(kProfile, "test.yaml");
  const CpuCalibration& c = hw.cpu.front();
  CHECK(c.matmul_rate(WeightFormat::f32, 10) == Approx(std::sqrt(10.0) * 10));  // log-log in M
  CHECK(c.matmul_rate(WeightFormat::f32, 100, 1024, 4096) == Approx(100));      // >= 1024: the big curve
  CHECK(c.matmul_rate(WeightFormat::f32, 100, 128, 256) == Approx(25));         // <= 256: the small one
  CHECK(c.matmul_rate(WeightFormat::f32, 100, 512, 512) == Approx(50));         // halfway in log size
}

TEST_CASE("step_time prices each matmul shape and each collective call") {
  const HardwareProfile hw = parse_hardware_profile(kProfile, "test.yaml");
  StepCost c;
  c.layers = 1;
  c.rows = 100;
  c.step.matmuls = {{100, 1024, 1024, 2.0}, {100, 256, 256, 4.0}};
  c.step.matmul_flops = 2 * 2.0 * 100 * 1024 * 1024 + 4 * 2.0 * 100 * 256 * 256;
  CommCall ag;
  ag.kind = Collective::all_gather;
  ag.traffic[0] = {1000000, 1};
  ag.count = 3;
  CommCall a2a;  // no curve: latency + bytes / link
  a2a.kind = Collective::all_to_all;
  a2a.traffic[1] = {5000000, 2};
  a2a.count = 1;
  c.step.calls = {ag, a2a};
  const StepTime t = step_time(c, hw, WeightFormat::f32, 2, 1.0, {1, 1});
  const double compute = 2 * 2.0 * 100 * 1024 * 1024 / 100e9 + 4 * 2.0 * 100 * 256 * 256 / 25e9;
  CHECK(t.compute_s == Approx(compute));
  // + collective_sync_us per call (4 calls)
  CHECK(t.comm_s == Approx(3 * 110e-6 + (2 * 10e-6 + 5000000 / 5e9) + 4 * 2e-6));

  // The link model: a call takes the longer of its curve and the modelled link.
  const HardwareProfile slow = with_link_model(hw, 0.1, 20);
  const StepTime s = step_time(c, slow, WeightFormat::f32, 2, 1.0, {1, 1});
  CHECK(s.comm_s == Approx(3 * (20e-6 + 1000000 / 0.1e9) + (2 * 20e-6 + 5000000 / 0.1e9) + 4 * 2e-6));
}

TEST_CASE("step_time: collective_step_gbps adds to the curves per byte, rank_imbalance adds waiting for the slowest") {
  std::string text = kProfile;
  text.replace(text.find("collective_sync_us: 2\n"), 22,
               "collective_sync_us: 2\ncollective_step_gbps: 10\nrank_imbalance: 0.1\n");
  const HardwareProfile hw = parse_hardware_profile(text, "test.yaml");
  StepCost c;
  c.layers = 1;
  c.rows = 100;
  c.step.matmuls = {{100, 1024, 1024, 1.0}};
  CommCall ag;
  ag.kind = Collective::all_gather;
  ag.traffic[0] = {1000000, 1};
  ag.count = 3;
  CommCall a2a;  // no curve: latency + bytes / link (the step's extra is measured against the curves)
  a2a.kind = Collective::all_to_all;
  a2a.traffic[1] = {5000000, 2};
  a2a.count = 1;
  c.step.calls = {ag, a2a};
  const StepTime t = step_time(c, hw, WeightFormat::f32, 2, 1.0, {1, 1});
  const double chip = 2.0 * 100 * 1024 * 1024 / 100e9;
  CHECK(t.compute_s == Approx(chip));
  CHECK(t.wait_s == Approx(0.1 * chip));
  const double transfers = 3 * (110e-6 + 1000000 / 10e9) + (2 * 10e-6 + 5000000 / 5e9) + 4 * 2e-6;
  CHECK(t.comm_s == Approx(transfers + 0.1 * chip));
  CHECK(t.serial_s == Approx(chip * 1.1 + transfers));
  // Overlapped: the transfers hide behind compute, the waiting for the slowest rank does not.
  CHECK(t.overlap_s == Approx(std::max(chip, transfers) + 0.1 * chip));
  // Under the link model a call still takes at least the modelled link's time.
  const HardwareProfile slow = with_link_model(hw, 0.1, 20);
  CHECK(step_time(c, slow, WeightFormat::f32, 2, 1.0, {1, 1}).comm_s ==
        Approx(3 * (20e-6 + 1000000 / 0.1e9) + (2 * 20e-6 + 5000000 / 0.1e9) + 4 * 2e-6 + 0.1 * chip));
  // One chip (no collectives): no waiting.
  c.step.calls.clear();
  CHECK(step_time(c, hw, WeightFormat::f32, 1, 1.0, {1, 1}).wait_s == 0);
  CHECK(step_time(c, hw, WeightFormat::f32, 1, 1.0, {1, 1}).serial_s == Approx(chip));

  // The keys round-trip, default to 1 and 0, and are checked.
  const HardwareProfile back = parse_hardware_profile(hardware_profile_yaml(hw, "round trip"), "back.yaml");
  CHECK(back.collective_step_bandwidth == Approx(10e9));
  CHECK(back.rank_imbalance == Approx(0.1));
  const HardwareProfile plain = parse_hardware_profile(kProfile, "test.yaml");
  CHECK(plain.collective_step_bandwidth == 0);
  CHECK(plain.rank_imbalance == 0);
  std::string bad = text;
  bad.replace(bad.find("collective_step_gbps: 10"), 24, "collective_step_gbps: fast");
  CHECK_THROWS_WITH(parse_hardware_profile(bad, "bad.yaml"),
                    Catch::Contains("bad.yaml") && Catch::Contains("collective_step_gbps"));
  bad = text;
  bad.replace(bad.find("rank_imbalance: 0.1"), 19, "rank_imbalance: -1");
  CHECK_THROWS_WITH(parse_hardware_profile(bad, "bad.yaml"), Catch::Contains("bad.yaml") && Catch::Contains("rank_imbalance"));
}

TEST_CASE("step_time prices weight-gathered repacking at cache speed when the gathered weights fit") {
  const HardwareProfile hw = parse_hardware_profile(kProfile, "test.yaml");  // 16 MiB cache: 60 vs 20 GB/s
  StepCost c;
  c.layers = 1;
  c.step.repack_bytes = 1e8;
  c.step.repack_block_bytes = 8 << 20;  // fits: just written by its gather, read from the cache
  CHECK(step_time(c, hw, WeightFormat::f32, 2, 1.0, {1, 1}).overhead_s == Approx(1e8 / 60e9));
  // Two ranks' blocks still fit together; three do not (the host's cache is shared).
  CHECK(step_time(c, hw, WeightFormat::f32, 2, 1.0, {1, 2}).overhead_s == Approx(1e8 / 60e9));
  CHECK(step_time(c, hw, WeightFormat::f32, 2, 1.0, {1, 3}).overhead_s == Approx(1e8 / (20e9 / 3)));
  c.step.repack_block_bytes = 32 << 20;  // does not fit: memory speed
  CHECK(step_time(c, hw, WeightFormat::f32, 2, 1.0, {1, 1}).overhead_s == Approx(1e8 / 20e9));

  // The cost model books it for weight-gathered layouts only: f32 one read per gathered element
  // (read in place), bf16 a pack (read 4, write 2) plus the blocks' placement copies.
  const auto cfg = tori::models::load_model_config("palm-tiny");
  StepQuery q;
  q.config = cfg;
  q.shape = tori::collectives::TorusShape{{2, 1, 1}};
  q.plan = parse_plan("wg_x/heads", "test").prefill;
  q.decode_plan = q.plan;
  q.batch = 4;
  q.tokens = 1;
  q.cached = 8;
  q.weights = WeightFormat::f32;
  const StepCost f32 = predict_step(q);
  q.weights = WeightFormat::bf16;
  const StepCost bf16 = predict_step(q);
  q.plan = parse_plan("ws1d/heads", "test").prefill;
  q.decode_plan = q.plan;
  CHECK(predict_step(q).step.repack_bytes == 0);
  const double E = double(cfg.d_model);
  const double w_out = (cfg.d_head * double(cfg.n_heads) + double(cfg.d_ff)) * E;  // x on its columns: placed
  REQUIRE(f32.step.repack_bytes > 0);
  // f32: 4 bytes per gathered element, blocks multiplied where they lie; bf16: every gathered
  // element packed, plus placing W_out's blocks (x on its columns: 8 bytes per element).
  CHECK(f32.step.pack_elements == 0);
  CHECK(bf16.step.pack_elements == Approx(f32.step.repack_bytes / 4.0));
  CHECK(bf16.step.repack_bytes == Approx(8.0 * w_out * double(cfg.n_layers)));
  CHECK(f32.step.repack_block_bytes > 0);
  CHECK(f32.step.repack_block_bytes == bf16.step.repack_block_bytes);

  // Packing: at the calibrated pack rate (f32 bytes in per second) when the profile has one, else
  // as a read of 4 and a write of 2 bytes per element at the bandwidth.
  StepCost p;
  p.layers = 1;
  p.step.pack_elements = 1e7;
  p.step.repack_block_bytes = 32 << 20;  // memory speed: 20 GB/s
  CHECK(step_time(p, hw, WeightFormat::bf16, 2, 1.0, {1, 1}).overhead_s == Approx(1e7 * 6.0 / 20e9));
  std::string text = kProfile;
  text.replace(text.find("    row_overhead_ns: 0\n"), 23, "    row_overhead_ns: 0\n    pack_gbps_bf16: 2.5\n");
  const HardwareProfile packs = parse_hardware_profile(text, "test.yaml");
  CHECK(step_time(p, packs, WeightFormat::bf16, 2, 1.0, {1, 1}).overhead_s == Approx(1e7 * 4.0 / 2.5e9));
  const HardwareProfile back = parse_hardware_profile(hardware_profile_yaml(packs, "round trip"), "back.yaml");
  CHECK(back.cpu.front().pack_gbps[size_t(WeightFormat::bf16)] == Approx(2.5));
  CHECK(back.cpu.front().pack_gbps[size_t(WeightFormat::int8)] == 0);
}

TEST_CASE("profile keys: collective_us and matmul_small_* are checked and round-trip") {
  const HardwareProfile hw = parse_hardware_profile(kProfile, "test.yaml");
  const HardwareProfile back = parse_hardware_profile(hardware_profile_yaml(hw, "round trip"), "back.yaml");
  CHECK(back.collective_time == hw.collective_time);
  CHECK(back.collective_sync == Approx(2e-6));
  CHECK(back.cpu.front().matmul_small_gflops == hw.cpu.front().matmul_small_gflops);
  std::string bad = kProfile;
  bad.replace(bad.find("reduce_scatter: {1000: 20}"), 26, "reduce_gather: {1000: 20}");
  CHECK_THROWS_WITH(parse_hardware_profile(bad, "bad.yaml"),
                    Catch::Contains("bad.yaml") && Catch::Contains("collective_us") && Catch::Contains("reduce_gather"));
}

TEST_CASE("cost model: the per-shape matmuls and per-call traffic add up to the totals") {
  const auto cfg = tori::models::load_model_config("palm-tiny");
  for (const char* plan : {"ws1d/heads", "ws2d/batch:xyz", "wg_xy/batch:xyz"}) {
    for (bool prefill : {true, false}) {
      StepQuery q;
      q.config = cfg;
      q.shape = tori::collectives::TorusShape{{2, 2, 1}};
      q.plan = parse_plan(plan, "test").prefill;
      q.prefill = prefill;
      q.batch = 8;
      q.tokens = prefill ? 16 : 1;
      q.cached = prefill ? 0 : 16;
      const StepCost c = predict_step(q);
      double flops = 0;
      for (const MatmulShape& m : c.step.matmuls) flops += m.count * 2.0 * double(m.M) * double(m.K) * double(m.N);
      CHECK(flops == Approx(c.step.matmul_flops));
      TrafficTable sum{};
      for (const CommCall& call : c.step.calls)
        for (size_t a = 0; a < 3; ++a) {
          sum[size_t(call.kind)][a].bytes += uint64_t(call.count) * call.traffic[a].bytes;
          sum[size_t(call.kind)][a].messages += uint64_t(call.count) * call.traffic[a].messages;
        }
      CHECK(sum == c.step.traffic);
    }
  }
}

TEST_CASE("step_time: per-row overhead by phase, decode_row_overhead_ns optional (default: row_overhead_ns)") {
  // Prefill: per row, split over the ranks not splitting the batch (row_split).
  const auto with = [](const std::string& keys) {
    std::string text = kProfile;
    const std::string key = "    row_overhead_ns: 0\n";
    return text.replace(text.find(key), key.size(), keys);
  };
  const HardwareProfile same = parse_hardware_profile(with("    row_overhead_ns: 1000\n"), "test.yaml");
  CHECK(same.cpu.front().overhead.decode_row_s == Approx(1e-6));
  const HardwareProfile hw =
      parse_hardware_profile(with("    row_overhead_ns: 1000\n    decode_row_overhead_ns: 3000\n"), "test.yaml");
  StepCost c;
  c.layers = 2;
  c.rows = 8;
  c.row_split = 2;  // 4 rows per rank
  c.prefill = true;
  CHECK(step_time(c, hw, WeightFormat::f32, 2, 1.0, {1, 1}).overhead_s == Approx(2 * 4 * 1e-6));
  // Decode: half per sequence attended (an attention call and a cache append each, however the
  // heads are split: heads-sharded attention attends all 8 here, batch-sharded 4), half per row
  // split as prefill's (4).
  c.prefill = false;
  c.sequences = 8;
  CHECK(step_time(c, hw, WeightFormat::f32, 2, 1.0, {1, 1}).overhead_s == Approx(2 * 6 * 3e-6));
  c.sequences = 4;
  CHECK(step_time(c, hw, WeightFormat::f32, 2, 1.0, {1, 1}).overhead_s == Approx(2 * 4 * 3e-6));
  // decode_sequence_share φ: rows = φ·sequences + (1 - φ)·rows/split.
  CHECK(hw.decode_sequence_share == 0.5);  // without the key
  HardwareProfile shared = hw;
  shared.decode_sequence_share = 0.25;
  c.sequences = 8;
  CHECK(step_time(c, shared, WeightFormat::f32, 2, 1.0, {1, 1}).overhead_s == Approx(2 * (0.25 * 8 + 0.75 * 4) * 3e-6));
  shared.decode_sequence_share = 0;  // wholly per head: the sequences attended do not matter
  CHECK(step_time(c, shared, WeightFormat::f32, 2, 1.0, {1, 1}).overhead_s == Approx(2 * 4 * 3e-6));
  c.prefill = true;  // prefill rows are not touched by it
  CHECK(step_time(c, shared, WeightFormat::f32, 2, 1.0, {1, 1}).overhead_s == Approx(2 * 4 * 1e-6));
  c.prefill = false;
  const HardwareProfile share_back = parse_hardware_profile(hardware_profile_yaml(shared, "test"), "again.yaml");
  CHECK(share_back.decode_sequence_share == 0);
  CHECK(parse_hardware_profile(std::string(kProfile) + "decode_sequence_share: 0.2\n", "t.yaml").decode_sequence_share ==
        Approx(0.2));
  for (const char* bad : {"1.5", "-0.1", "half"})
    CHECK_THROWS_WITH(
        parse_hardware_profile(std::string(kProfile) + "decode_sequence_share: " + bad + "\n", "t.yaml"),
        Catch::Contains("t.yaml") && Catch::Contains("decode_sequence_share"));
  // The cost model's count: palm-tiny decode of 4 sequences on 2 chips.
  StepQuery q;
  q.config = tori::models::load_model_config("palm-tiny");
  q.shape = tori::collectives::TorusShape{{2, 1, 1}};
  q.batch = 4;
  q.tokens = 1;
  q.cached = 8;
  q.plan = parse_plan("ws1d/heads", "test").decode;
  CHECK(predict_step(q).sequences == 4);
  q.plan = parse_plan("ws1d/batch:xyz", "test").decode;
  CHECK(predict_step(q).sequences == 2);
  // Written back and read again, the key survives.
  const HardwareProfile again = parse_hardware_profile(hardware_profile_yaml(hw, "test"), "again.yaml");
  CHECK(again.cpu.front().overhead.decode_row_s == Approx(3e-6));
  CHECK_THROWS_WITH(parse_hardware_profile(with("    row_overhead_ns: 1\n    decode_row_overhead_ns: -1\n"), "t.yaml"),
                    Catch::Contains("decode_row_overhead_ns") && Catch::Contains(">= 0"));
}

TEST_CASE("step_time: a weight format's own overheads (overheads_bf16|int8), else the f32 ones") {
  const auto with = [](const std::string& keys) {
    std::string text = kProfile;
    const std::string key = "    row_overhead_ns: 0\n";
    return text.replace(text.find(key), key.size(), keys);
  };
  const HardwareProfile hw = parse_hardware_profile(
      with("    row_overhead_ns: 1000\n    overheads_bf16: {layer_us: 2, prefill_us: 3, row_ns: 400, "
           "decode_row_ns: 500}\n"),
      "test.yaml");
  const CpuCalibration& cpu = hw.cpu.front();
  REQUIRE(cpu.format_overhead[size_t(WeightFormat::bf16)].has_value());
  CHECK_FALSE(cpu.format_overhead[size_t(WeightFormat::int8)].has_value());
  CHECK(cpu.overheads(WeightFormat::bf16).layer_s == Approx(2e-6));
  CHECK(cpu.overheads(WeightFormat::int8).row_s == Approx(1e-6));  // none of its own: f32's
  StepCost c;
  c.layers = 2;
  c.rows = 8;
  c.sequences = 8;
  c.prefill = true;
  CHECK(step_time(c, hw, WeightFormat::f32, 1, 1.0, {1, 1}).overhead_s == Approx(2 * 8 * 1e-6));
  CHECK(step_time(c, hw, WeightFormat::bf16, 1, 1.0, {1, 1}).overhead_s == Approx(2 * (2e-6 + 3e-6 + 8 * 400e-9)));
  CHECK(step_time(c, hw, WeightFormat::int8, 1, 1.0, {1, 1}).overhead_s == Approx(2 * 8 * 1e-6));
  c.prefill = false;
  CHECK(step_time(c, hw, WeightFormat::bf16, 1, 1.0, {1, 1}).overhead_s == Approx(2 * (2e-6 + 8 * 500e-9)));
  // Written back and read again.
  const HardwareProfile again = parse_hardware_profile(hardware_profile_yaml(hw, "test"), "again.yaml");
  REQUIRE(again.cpu.front().format_overhead[size_t(WeightFormat::bf16)].has_value());
  CHECK(again.cpu.front().overheads(WeightFormat::bf16).decode_row_s == Approx(500e-9));
  CHECK_FALSE(again.cpu.front().format_overhead[size_t(WeightFormat::int8)].has_value());
  // Checked: every part, nothing else.
  CHECK_THROWS_WITH(
      parse_hardware_profile(with("    row_overhead_ns: 0\n    overheads_int8: {layer_us: 2, row_ns: 1, "
                                  "decode_row_ns: 1}\n"), "t.yaml"),
      Catch::Contains("t.yaml") && Catch::Contains("overheads_int8") && Catch::Contains("prefill_us"));
  CHECK_THROWS_WITH(
      parse_hardware_profile(with("    row_overhead_ns: 0\n    overheads_int8: {layer_us: 2, prefill_us: 1, row_ns: 1, "
                                  "decode_row_ns: 1, per_token: 3}\n"), "t.yaml"),
      Catch::Contains("overheads_int8") && Catch::Contains("per_token"));
  CHECK_THROWS_WITH(
      parse_hardware_profile(with("    row_overhead_ns: 0\n    overheads_fp8: {layer_us: 2}\n"), "t.yaml"),
      Catch::Contains("overheads_fp8"));
}

TEST_CASE("step_time: attention_gflops_bf16 prices bf16 and int8 prefill's attention, optional, round-trips") {
  const auto with = [](const std::string& keys) {
    std::string text = kProfile;
    const std::string key = "    attention_gflops: 50\n";
    return text.replace(text.find(key), key.size(), keys);
  };
  const HardwareProfile plain = parse_hardware_profile(kProfile, "test.yaml");
  CHECK(plain.cpu.front().attention_bf16_gflops == 0);  // without the key: not measured
  const HardwareProfile hw = parse_hardware_profile(with("    attention_gflops: 50\n    attention_gflops_bf16: 200\n"),
                                                    "test.yaml");
  CHECK(hw.cpu.front().attention_bf16_gflops == Approx(200));
  StepCost c;
  c.layers = 1;
  c.step.attn_flops = 1e9;  // 1 GFLOP of attention, nothing else
  c.prefill = true;
  const bool tiles = bf16_attention_applies(WeightFormat::bf16, tori::kernels::Backend::onednn);  // this CPU
  CHECK(step_time(c, hw, WeightFormat::f32, 1, 1.0, {1, 1}).compute_s == Approx(1.0 / 50));
  CHECK(step_time(c, hw, WeightFormat::bf16, 1, 1.0, {1, 1}).compute_s == Approx(tiles ? 1.0 / 200 : 1.0 / 50));
  CHECK(step_time(c, hw, WeightFormat::int8, 1, 1.0, {1, 1}).compute_s == Approx(tiles ? 1.0 / 200 : 1.0 / 50));
  CHECK(step_time(c, hw, WeightFormat::int4, 1, 1.0, {1, 1}).compute_s == Approx(1.0 / 50));
  CHECK(step_time(c, plain, WeightFormat::bf16, 1, 1.0, {1, 1}).compute_s == Approx(1.0 / 50));  // no figure: f32's
  c.prefill = false;  // decode keeps the f32 kernel
  CHECK(step_time(c, hw, WeightFormat::bf16, 1, 1.0, {1, 1}).compute_s == Approx(1.0 / 50));
  const HardwareProfile again = parse_hardware_profile(hardware_profile_yaml(hw, "test"), "again.yaml");
  CHECK(again.cpu.front().attention_bf16_gflops == Approx(200));
  CHECK(hardware_profile_yaml(plain, "test").find("attention_gflops_bf16") == std::string::npos);
  CHECK_THROWS_WITH(parse_hardware_profile(with("    attention_gflops: 50\n    attention_gflops_bf16: -3\n"), "t.yaml"),
                    Catch::Contains("t.yaml") && Catch::Contains("attention_gflops_bf16"));
}
