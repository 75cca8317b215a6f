// Accelerator efficiency by shape (planning/hardware_profile.hpp matmul_efficiency, link_efficiency;
// priced by planning/step_time.hpp) on the built-in tpu-v4 profile: a large aligned matmul runs at
// the cited sustained fraction, padding K or N to 128 and M to 8 costs exactly the padded matmul's
// time, fewer than 128 rows cost as much as 128, collectives reach link_efficiency of the link;
// the profile keys are checked; and `tori plan`'s MFU for the paper's prefill case lands below
// that fraction instead of near 100%. Where the time goes (planning/explain.hpp) sums to the step.
#include <catch2/catch.hpp>

#include "collectives/traffic.hpp"
#include "kernels/error.hpp"
#include "models/config.hpp"
#include "planning/explain.hpp"
#include "planning/hardware_profile.hpp"
#include "planning/plan_table.hpp"
#include "planning/step_time.hpp"

using namespace tori::planning;
using tori::collectives::Collective;
using tori::kernels::WeightFormat;

namespace {

constexpr double kPeak = 275e12;      // tpu-v4.yaml: bf16 TFLOPS
constexpr double kSustained = 0.85;   // tpu-v4.yaml: matmul_efficiency.sustained

// One matmul [M, K] x [K, N] as a step (no memory traffic, no collectives).
double matmul_seconds(const HardwareProfile& hw, int64_t M, int64_t K, int64_t N) {
  StepCost c;
  c.layers = 1;
  c.step.matmuls = {{M, K, N, 1.0}};
  c.step.flops = c.step.matmul_flops = 2.0 * double(M) * double(K) * double(N);
  return step_time(c, hw, WeightFormat::bf16, 1).compute_s;
}

PlanTableQuery palm540b_64(int64_t batch) {
  PlanTableQuery q;
  q.config = tori::models::load_model_config("palm-540b");
  q.shape = tori::collectives::auto_torus_shape(64);
  q.batch = batch;
  q.prompt_len = 2048;
  q.gen_len = 64;
  q.weights = WeightFormat::bf16;
  return q;
}

}  // namespace

TEST_CASE("tpu-v4: a large matmul aligned to the MXU's 128 runs at the cited sustained fraction") {
  const HardwareProfile hw = load_hardware_profile("tpu-v4");
  CHECK(hw.matmul_efficiency.of(512, 4608, 4608) == Approx(kSustained));
  // PaLM 540B's ws2d FFN input matmul on 64 chips at 512 rows: E/X = 4608, F/YZ = 4608.
  CHECK(matmul_seconds(hw, 512, 4608, 4608) == Approx(2.0 * 512 * 4608 * 4608 / (kPeak * kSustained)));
}

TEST_CASE("tpu-v4: padding K and N to 128 and M to 8 costs the padded matmul's time") {
  const HardwareProfile hw = load_hardware_profile("tpu-v4");
  // K = 4609 is padded to 4736: as long as a K = 4736 matmul, though it does 4609/4736 of the work.
  CHECK(matmul_seconds(hw, 512, 4609, 4608) == Approx(matmul_seconds(hw, 512, 4736, 4608)));
  CHECK(hw.matmul_efficiency.of(512, 4609, 4608) == Approx(kSustained * 4609.0 / 4736.0));
  CHECK(matmul_seconds(hw, 512, 4608, 129) == Approx(matmul_seconds(hw, 512, 4608, 256)));  // N: 2 tiles
  CHECK(matmul_seconds(hw, 129, 4608, 4608) == Approx(matmul_seconds(hw, 136, 4608, 4608)));  // M to 8
  // Fewer rows than a weight tile's load (128) take 128 rows' time: a 1-row decode matmul at 1/128.
  CHECK(matmul_seconds(hw, 1, 4608, 4608) == Approx(matmul_seconds(hw, 128, 4608, 4608)));
  CHECK(hw.matmul_efficiency.of(1, 4608, 4608) == Approx(kSustained / 128));
  CHECK(hw.matmul_efficiency.of(64, 128, 128) == Approx(kSustained / 2));
}

TEST_CASE("tpu-v4: attention FLOPs at the sustained rate, collectives at link_efficiency of the link") {
  const HardwareProfile hw = load_hardware_profile("tpu-v4");
  StepCost c;
  c.layers = 1;
  c.step.flops = c.step.attn_flops = 1e12;
  const tori::collectives::AxisTraffic x{{{90'000'000, 3}, {0, 0}, {0, 0}}};
  c.step.calls = {{Collective::all_gather, x, 2.0}};
  const StepTime t = step_time(c, hw, WeightFormat::bf16, 64);
  CHECK(t.compute_s == Approx(1e12 / (kPeak * kSustained)));
  // 2 calls of 90 MB in 3 messages each over x: latency 5 us per message, 45 GB/s at 0.9.
  CHECK(t.comm_s == Approx(2 * (3 * 5e-6 + 90e6 / (45e9 * 0.9))));
  CHECK(t.comm_axis_s[size_t(Collective::all_gather)][0] == Approx(t.comm_s));
}

TEST_CASE("profile keys matmul_efficiency and link_efficiency: checked, optional, round-trip") {
  const std::string base =
      "name: t\npeak_tflops_f32: 1\npeak_tflops_bf16: 1\npeak_tflops_int8: 1\nhbm_gib: 1\nhbm_gbps: 1\n"
      "link_gbps_x: 1\nlink_gbps_y: 1\nlink_gbps_z: 1\nlink_latency_us: 1\n";
  const HardwareProfile plain = parse_hardware_profile(base, "t.yaml");
  CHECK(plain.matmul_efficiency.of(1, 3, 5) == 1.0);  // without the key: every shape at peak
  CHECK(plain.link_efficiency == 1.0);
  auto error = [&](const std::string& extra) {
    try {
      parse_hardware_profile(base + extra, "t.yaml");
    } catch (const tori::InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error("matmul_efficiency: {sustained: 1.5}"),
             Catch::Contains("t.yaml: key 'matmul_efficiency' (sustained) must be in (0, 1]"));
  CHECK_THAT(error("matmul_efficiency: {row_multiple: 8}"), Catch::Contains("missing key 'sustained'"));
  CHECK_THAT(error("matmul_efficiency: {sustained: 0.5, tile: 8}"),
             Catch::Contains("unknown key 'tile' (allowed: sustained, row_multiple"));
  CHECK_THAT(error("matmul_efficiency: {sustained: 0.5, fill_rows: 2.5}"),
             Catch::Contains("(fill_rows) must be a whole number >= 1, got 2.5"));
  CHECK_THAT(error("link_efficiency: 0"), Catch::Contains("key 'link_efficiency' must be in (0, 1], got 0"));
  const HardwareProfile tpu = load_hardware_profile("tpu-v4");
  const HardwareProfile back = parse_hardware_profile(hardware_profile_yaml(tpu, "round trip"), "back.yaml");
  CHECK(back.matmul_efficiency.of(100, 200, 300) == Approx(tpu.matmul_efficiency.of(100, 200, 300)));
  CHECK(back.link_efficiency == tpu.link_efficiency);
}

TEST_CASE("tori plan: PaLM 540B prefill on 64 TPU v4 chips (batch 512 x 2048) has a believable MFU") {
  const HardwareProfile hw = load_hardware_profile("tpu-v4");
  const auto rows = rank_phase_plans(palm540b_64(512), hw, true);
  const PlanRow* best = nullptr;
  for (const auto& r : rows)
    if (r.fits && !best) best = &r;
  REQUIRE(best);
  // Peak pricing credited this case ~96% MFU; no plan may beat the matmuls' sustained fraction now,
  // and the chosen one stays weight-gathered (the paper's finding) well above half of peak.
  for (const auto& r : rows) CHECK(r.time.mfu_overlap <= kSustained);
  CHECK(best->time.mfu_overlap > 0.6);
  CHECK(best->plan.str().starts_with("wg_"));
}

TEST_CASE("explain: the exposed parts of every plan's step sum to its step time") {
  const HardwareProfile hw = load_hardware_profile("tpu-v4");
  for (int64_t batch : {1, 64, 512})
    for (bool prefill : {true, false})
      for (const PlanRow& r : rank_phase_plans(palm540b_64(batch), hw, prefill)) {
        INFO(r.plan.str() << (prefill ? " prefill" : " decode") << " batch " << batch);
        for (bool overlapped : {true, false}) {
          double exposed = 0, alone_comm = 0;
          for (const TimePart& p : time_parts(r.time, overlapped)) {
            CHECK(p.exposed_s <= p.alone_s * (1 + 1e-12));
            exposed += p.exposed_s;
            if (p.name != "compute" && p.name != "weights" && p.name != "kv_cache" && p.name != "overhead")
              alone_comm += p.alone_s;
          }
          CHECK(exposed == Approx(overlapped ? r.time.overlap_s : r.time.serial_s).epsilon(1e-9));
          CHECK(alone_comm == Approx(r.time.comm_s).epsilon(1e-9).margin(1e-15));  // every collective listed
        }
      }
}
