// The latency–cost frontier of `tori plan --pareto` (planning/pareto.hpp): a dominated point is
// never on it, the frontier is monotone (slower points are cheaper), every point is a plan that
// runs and fits, and the CSV and JSON it writes parse back to the same points.
#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "models/config.hpp"
#include "planning/pareto.hpp"
#include "runtime/placement.hpp"

using namespace tori::planning;

namespace {
FrontierPoint point(bool prefill, double latency, double cost) {
  FrontierPoint p;
  p.prefill = prefill;
  p.best.time.overlap_s = latency;
  p.best.time.cost_overlap = cost;
  return p;
}
}  // namespace

TEST_CASE("mark_frontier: dominated points are off, ties and other phases do not dominate") {
  std::vector<FrontierPoint> v = {point(true, 1, 10), point(true, 2, 5), point(true, 2, 6),  // (2, 6) dominated
                                  point(true, 3, 5),                                           // by (2, 5)
                                  point(true, 4, 1), point(false, 0.5, 20), point(true, 1, 10)};
  mark_frontier(v);
  CHECK(v[0].frontier);
  CHECK(v[1].frontier);
  CHECK_FALSE(v[2].frontier);
  CHECK_FALSE(v[3].frontier);
  CHECK(v[4].frontier);
  CHECK(v[5].frontier);  // decode: compared with decode points only
  CHECK(v[6].frontier);  // an equal point does not dominate
}

TEST_CASE("sweep_frontier: PaLM 62B int8 on 16 and 32 TPU v4 chips") {
  const HardwareProfile hw = load_hardware_profile("tpu-v4");
  SweepQuery q;
  q.base.config = tori::models::load_model_config("palm-62b");
  q.base.prompt_len = 2048;
  q.base.gen_len = 64;
  q.base.weights = tori::kernels::WeightFormat::int8;
  q.chips = {16, 32};
  q.batches = {1, 4, 16, 64, 256, 1024};
  const auto points = sweep_frontier(q, hw);
  REQUIRE(points.size() >= 12);
  for (bool prefill : {true, false}) {
    std::vector<FrontierPoint> front;
    for (const auto& p : points) {
      if (p.prefill != prefill) continue;
      INFO(p.best.plan.str() << " chips " << p.chips << " batch " << p.batch);
      // Every point a plan that runs on its torus and batch, and fits in memory.
      CHECK_NOTHROW(tori::runtime::validate_phase(q.base.config, tori::collectives::auto_torus_shape(p.chips),
                                                  p.best.plan, p.batch, "test"));
      CHECK(p.best.fits);
      CHECK(p.best.memory.total() <= hw.hbm_bytes);
      CHECK(p.best.time.overlap_s > 0);
      CHECK(p.best.time.cost_overlap == Approx(p.chips * p.best.time.overlap_s /
                                               double(p.batch * (prefill ? q.base.prompt_len : 1))).epsilon(1e-6));
      if (p.frontier) front.push_back(p);
    }
    REQUIRE(front.size() >= 2);
    // Monotone: by latency ascending, cost strictly descending.
    std::sort(front.begin(), front.end(),
              [](const auto& a, const auto& b) { return a.best.time.overlap_s < b.best.time.overlap_s; });
    for (size_t i = 1; i < front.size(); ++i) CHECK(front[i].best.time.cost_overlap < front[i - 1].best.time.cost_overlap);
    // The cheapest point of the phase is on it, and so is the fastest.
    auto by = [](auto key) { return [key](const auto& a, const auto& b) { return key(a) < key(b); }; };
    std::vector<FrontierPoint> phase;
    for (const auto& p : points)
      if (p.prefill == prefill) phase.push_back(p);
    CHECK(std::min_element(phase.begin(), phase.end(), by([](const auto& p) { return p.best.time.cost_overlap; }))->frontier);
    CHECK(std::min_element(phase.begin(), phase.end(), by([](const auto& p) { return p.best.time.overlap_s; }))->frontier);
  }

  // The CSV: a header and one line per point, 12 fields each; the JSON: the same points.
  std::istringstream csv(frontier_csv(points));
  std::string line;
  std::getline(csv, line);
  CHECK(line.starts_with("phase,chips,torus,batch,plan,latency_s,cost_chip_s_per_token,mfu,frontier"));
  size_t n = 0;
  while (std::getline(csv, line)) {
    CHECK(std::count(line.begin(), line.end(), ',') == 11);
    const bool frontier = line.find(",true,") != std::string::npos;
    CHECK(frontier == points[n].frontier);
    ++n;
  }
  CHECK(n == points.size());
  const auto j = nlohmann::json::parse(frontier_json(q, hw, points));
  CHECK(j["model"] == "palm-62b");
  CHECK(j["weights"] == "int8");
  REQUIRE(j["points"].size() == points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    CHECK(j["points"][i]["plan"] == points[i].best.plan.str());
    CHECK(j["points"][i]["latency_s"].get<double>() == Approx(points[i].best.time.overlap_s));
    CHECK(j["points"][i]["frontier"].get<bool>() == points[i].frontier);
  }
}

TEST_CASE("parse_count_list: --chips and --batches lists") {
  CHECK(parse_count_list("16,32,64", "--chips") == std::vector<int64_t>{16, 32, 64});
  CHECK_THROWS_WITH(parse_count_list("16,x", "--chips"), Catch::Contains("--chips: 'x' in '16,x' is not a whole number"));
  CHECK_THROWS_WITH(parse_count_list("0", "--batches"), Catch::Contains("--batches: '0'"));
  CHECK_THROWS_WITH(parse_count_list("16,", "--chips"), Catch::Contains("--chips: '16,'"));
}
