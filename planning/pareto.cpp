#include "planning/pareto.hpp"

#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"

namespace tori::planning {

std::vector<FrontierPoint> sweep_frontier(const SweepQuery& q, const HardwareProfile& hw) {
  std::vector<FrontierPoint> out;
  for (int chips : q.chips) {
    PlanTableQuery t = q.base;
    t.shape = collectives::auto_torus_shape(chips);
    for (int64_t batch : q.batches) {
      t.batch = batch;
      for (bool prefill : {true, false}) {
        const std::vector<PlanRow> rows = rank_phase_plans(t, hw, prefill);
        FrontierPoint p{.prefill = prefill, .chips = chips, .torus = t.shape.str(), .batch = batch};
        for (const PlanRow& r : rows)
          if (r.fits && p.plans_fitting++ == 0) p.best = r;
        if (p.plans_fitting > 0) out.push_back(p);
      }
    }
  }
  mark_frontier(out);
  return out;
}

void mark_frontier(std::vector<FrontierPoint>& points) {
  for (FrontierPoint& p : points) {
    p.frontier = true;
    const double lp = p.best.time.overlap_s, cp = p.best.time.cost_overlap;
    for (const FrontierPoint& o : points) {
      if (o.prefill != p.prefill) continue;
      const double lo = o.best.time.overlap_s, co = o.best.time.cost_overlap;
      if (lo <= lp && co <= cp && (lo < lp || co < cp)) {
        p.frontier = false;
        break;
      }
    }
  }
}

namespace {
const char* const kColumns[] = {"phase", "chips", "torus", "batch", "plan", "latency_s", "cost_chip_s_per_token",
                                "mfu", "frontier", "chunk_tokens_per_seq", "mem_per_chip_gb", "plans_fitting"};

nlohmann::ordered_json point_json(const FrontierPoint& p) {
  return {{"phase", p.prefill ? "prefill" : "decode"},
          {"chips", p.chips},
          {"torus", p.torus},
          {"batch", p.batch},
          {"plan", p.best.plan.str()},
          {"latency_s", p.best.time.overlap_s},
          {"cost_chip_s_per_token", p.best.time.cost_overlap},
          {"mfu", p.best.time.mfu_overlap},
          {"frontier", p.frontier},
          {"chunk_tokens_per_seq", p.best.chunk},
          {"mem_per_chip_gb", p.best.memory.total() / 1e9},
          {"plans_fitting", p.plans_fitting}};
}
}  // namespace

std::string frontier_csv(const std::vector<FrontierPoint>& points) {
  std::ostringstream s;
  for (size_t i = 0; i < std::size(kColumns); ++i) s << (i ? "," : "") << kColumns[i];
  s << "\n";
  for (const FrontierPoint& p : points) {
    const nlohmann::ordered_json j = point_json(p);
    for (size_t i = 0; i < std::size(kColumns); ++i) {
      const auto& v = j.at(kColumns[i]);
      s << (i ? "," : "") << (v.is_string() ? v.get<std::string>() : v.dump());
    }
    s << "\n";
  }
  return s.str();
}

std::string frontier_json(const SweepQuery& q, const HardwareProfile& hw, const std::vector<FrontierPoint>& points) {
  nlohmann::ordered_json j = {{"model", q.base.config.name},
                              {"weights", std::string(kernels::weight_format_name(q.base.weights))},
                              {"hardware", hw.name},
                              {"prompt_len", q.base.prompt_len},
                              {"gen_len", q.base.gen_len},
                              {"chips", q.chips},
                              {"batches", q.batches},
                              {"points", nlohmann::ordered_json::array()}};
  for (const FrontierPoint& p : points) j["points"].push_back(point_json(p));
  return j.dump(1) + "\n";
}

std::vector<int64_t> parse_count_list(const std::string& text, const std::string& flag) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 1 || v > (1LL << 30))
      throw InputError(flag + ": '" + item + "' in '" + text + "' is not a whole number >= 1 (e.g. " + flag +
                       " 16,32,64,128)");
    out.push_back(v);
  }
  if (out.empty() || text.back() == ',') throw InputError(flag + ": '" + text + "' is not a comma-separated list of whole numbers >= 1");
  return out;
}

}  // namespace tori::planning
