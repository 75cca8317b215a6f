#include "planning/calibration.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <thread>

#include <spdlog/spdlog.h>

#include "collectives/collectives.hpp"
#include "kernels/attention.hpp"
#include "kernels/backend.hpp"
#include "kernels/error.hpp"
#include "kernels/kv_cache.hpp"
#include "kernels/matmul.hpp"
#include "kernels/record.hpp"
#include "models/hf_checkpoint.hpp"
#include "planning/cost_model.hpp"
#include "planning/machine_limits.hpp"
#include "planning/spawn.hpp"
#include "planning/step_time.hpp"
#include "runtime/sharded_model.hpp"
#include "runtime/threads.hpp"

namespace tori::planning {

namespace {

using kernels::DType;
using kernels::Tensor;
using kernels::WeightFormat;

constexpr int64_t kMatmulKN = 1024, kMatmulSmallKN = 256;  // hardware_profile.cpp's two sizes

// The median of the repeats, as `tori bench sweep` and `bench overlap` report what they measure:
// the profile prices the steps those commands time (a best-of figure describes a machine nothing
// else disturbs, and under-prices the steps a shared one runs).
double typical(const std::vector<double>& t) { return kernels::median(t); }
constexpr int64_t kRowsM[] = {1, 8, 64, 512};
// Working sets up to this size are read at cache speed: half of a 32 MiB last-level cache, leaving
// room for activations and code (the read sum touches one such array).
constexpr int64_t kCacheMib = 16;
constexpr int kRounds = 3;  // calibrate_cpu's whole rounds (1 with --quick)
constexpr int64_t kPromptLen = 16;  // the prompt of the timed steps: tori bench sweep's default --prompt-len

Tensor filled(std::vector<int64_t> shape, float scale) {
  Tensor t(shape, DType::f32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = scale * (float((i * 7919) % 201) / 100.f - 1.f);
  return t;
}

double matmul_gflops(WeightFormat f, int64_t M, int64_t KN, kernels::Backend backend, int repeats) {
  const kernels::PackedWeight w = kernels::pack_weight(filled({KN, KN}, 0.03f), f, backend);
  Tensor x = filled({M, KN}, 1.f), y({M, KN}, DType::f32);
  // Enough calls per timing that each lasts ~1 ms or more (a 1-row call takes microseconds).
  const int inner = int(std::clamp<int64_t>(512 / M * (kMatmulKN / KN) * (kMatmulKN / KN), 1, 4096));
  const double t =
      typical(kernels::time_repeats([&] { for (int i = 0; i < inner; ++i) kernels::matmul(x, w, y); }, 2, repeats));
  return 2.0 * double(M) * double(KN) * double(KN) * inner / t * 1e-9;
}

// GB/s of f32 weights packed into format f (kernels::pack_weight of a K = N = 1024 matrix, as the
// weight-gathered layouts pack each gathered weight every step).
double pack_gbps(WeightFormat f, kernels::Backend backend, int repeats) {
  const Tensor w = filled({kMatmulKN, kMatmulKN}, 0.03f);
  const double t = typical(kernels::time_repeats([&] { kernels::pack_weight(w, f, backend); }, 1, repeats));
  return 4.0 * double(w.numel()) / t * 1e-9;
}

// bf16_tiles: the prefill block alone, on kernels::attention_bf16 (what bf16 and int8 runs' prefill
// attends with).
double attention_gflops(int repeats, bool bf16_tiles = false) {
  constexpr int64_t B = 8, H = 8, D = 64, T = 256, Lp = 32;
  kernels::KvCache cache(B, 1, T + Lp + 1, D);
  const Tensor kv = filled({T, D}, 0.5f);
  for (int64_t b = 0; b < B; ++b) cache.append(b, kv, kv);
  double flops = 0, seconds = 0;
  const std::vector<int64_t> blocks = bf16_tiles ? std::vector<int64_t>{Lp} : std::vector<int64_t>{1, Lp};
  for (int64_t L : blocks) {
    Tensor q = filled({B, L, H, D}, 0.5f), out;
    // Appending L rows per sequence then attending: the cache grows by L per call, so each timing
    // starts from T cached (the append is outside the timed region's FLOPs but cheap).
    const Tensor rows = filled({L, D}, 0.5f);
    std::vector<double> ts;
    for (int r = 0; r < repeats + 1; ++r) {
      for (int64_t b = 0; b < B; ++b) cache.clear(b), cache.append(b, kv, kv), cache.append(b, rows, rows);
      const double t0 = kernels::now_s();
      if (bf16_tiles)
        kernels::attention_bf16(q, cache, {}, out);
      else
        kernels::attention(q, cache, {}, out);
      if (r) ts.push_back(kernels::now_s() - t0);
    }
    const double visible = double(L) * double(T) + double(L) * double(L + 1) / 2.0;
    flops += double(B) * 4.0 * H * D * visible;
    seconds += typical(ts);
  }
  return flops / seconds * 1e-9;
}

// Typical seconds of decode steps at batch 1 to 64 (14 a round) and of prefill blocks of 16 tokens
// (the sweep's prompt; 7 a round) at batch 1 to 64 (M = 16 to 1024) of the one-rank model, with the
// cost model's counts for the same steps. Blocks of the sweep's length, so that its smallest
// prefill (M = 16) is measured rather than extrapolated below the line's points. The overheads are
// small differences of noisy times, so each line goes through seven batches: a line through a few
// small batches moves with every slow spell.
constexpr int64_t kDecodeBatches[] = {1, 2, 4, 8, 16, 32, 64}, kPrefillBatches[] = {1, 2, 4, 8, 16, 32, 64};

// Theil-Sen line through (x, y): the median of the pairwise slopes, then the median of y - slope·x;
// one point moved by a slow spell moves neither (it would pull a least-squares line).
std::pair<double, double> robust_line(const std::vector<std::pair<double, double>>& pts) {
  std::vector<double> slopes, cuts;
  for (size_t i = 0; i < pts.size(); ++i)
    for (size_t j = i + 1; j < pts.size(); ++j)
      if (pts[j].first != pts[i].first)
        slopes.push_back((pts[j].second - pts[i].second) / (pts[j].first - pts[i].first));
  const double slope = slopes.empty() ? 0.0 : kernels::median(slopes);
  for (const auto& [x, y] : pts) cuts.push_back(y - slope * x);
  return {cuts.empty() ? 0.0 : kernels::median(cuts), slope};
}

// The median over `rounds` of field(round).
template <typename R, typename F>
double med_of(const std::vector<R>& rounds, F field) {
  std::vector<double> v;
  for (const auto& x : rounds) v.push_back(field(x));
  return kernels::median(v);
}

struct Timed {
  double seconds = 0;
  StepCost cost;
};

std::vector<Timed> time_model(const CalibrationOptions& opt, int repeats, WeightFormat weights) {
  auto source = models::open_model(opt.model, 1234);
  const auto& cfg = source->config();
  collectives::Torus torus(MPI_COMM_SELF, collectives::TorusShape{{1, 1, 1}});
  collectives::CollectivesOptions copt;
  copt.progress_thread = false;
  collectives::Collectives coll(torus, copt);
  runtime::ShardOptions sopt;
  sopt.backend = kernels::parse_matmul_backend(opt.matmul);
  sopt.format = weights;
  sopt.keep_plain = false;  // a weight-stationary plan: the packed shards only, as a run keeps
  const runtime::Plan plan = runtime::parse_plan("ws2d/heads", "calibrate");
  auto predict = [&](bool prefill, int64_t batch, int64_t L, int64_t T) {
    StepQuery q;
    q.config = cfg;
    q.shape = torus.shape();
    q.plan = plan.prefill;
    q.decode_plan = plan.decode;
    q.prefill = prefill;
    q.batch = batch;
    q.tokens = L;
    q.cached = T;
    q.weights = weights;
    return predict_step(q);
  };
  std::vector<Timed> out;
  for (int64_t batch : kDecodeBatches) {
    runtime::ShardedModel m(*source, coll, plan, batch, sopt);
    m.prefill(std::vector<models::TokenIds>(size_t(batch), models::TokenIds(kPromptLen, 3)));
    const int64_t steps = std::min<int64_t>(2 * repeats + 1, cfg.max_seq - kPromptLen - 1);
    out.push_back(
        {typical(kernels::time_repeats([&] { m.decode(models::TokenIds(size_t(batch), 5)); }, 1, int(steps - 1))),
         predict(false, batch, 1, kPromptLen + steps / 2)});
  }
  for (int64_t batch : kPrefillBatches) {
    runtime::ShardedModel m(*source, coll, plan, batch, sopt);
    std::vector<models::TokenIds> prompts(size_t(batch), models::TokenIds(kPromptLen, 3));
    out.push_back({typical(kernels::time_repeats([&] { m.reset(); m.prefill(prompts); }, 1, repeats)),
                   predict(true, batch, kPromptLen, 0)});
  }
  return out;
}

// One round's figures and its overhead residuals per layer, (rows, seconds): decode's and
// prefill's, by the model's weight format.
struct Round {
  CpuCalibration c;
  std::array<std::vector<std::pair<double, double>>, 3> dec, pre;
};

// Per layer (step_time.hpp): decode r = a + b_d·M; prefill r = a + c + b·M (M: the step's rows:
// decode's are sequences, each with its own attention call and cache append; prefill's are
// tokens). (a, b_d): the decode residuals' line; (a + c, b): the prefill residuals'; every part
// clamped at 0.
Overheads fit_overheads(const std::vector<std::pair<double, double>>& dec,
                                 const std::vector<std::pair<double, double>>& pre) {
  const auto [a, bd] = robust_line(dec);
  const auto [ac, b] = robust_line(pre);
  Overheads o;
  o.layer_s = std::max(0.0, a);
  o.decode_row_s = std::max(0.0, bd);
  o.row_s = std::max(0.0, b);
  o.prefill_s = std::max(0.0, ac - o.layer_s);
  return o;
}

// A round's (or the medians') fits into c: f32's as the overheads, bf16's and int8's as theirs.
void fit_all_overheads(const std::array<std::vector<std::pair<double, double>>, 3>& dec,
                       const std::array<std::vector<std::pair<double, double>>, 3>& pre, CpuCalibration& c) {
  for (WeightFormat f : kernels::kWeightFormats) {
    const Overheads o = fit_overheads(dec[size_t(f)], pre[size_t(f)]);
    if (f == WeightFormat::f32)
      c.overhead = o;
    else
      c.format_overhead[size_t(f)] = o;
  }
}

Round calibrate_cpu_once(int threads, const CalibrationOptions& opt) {
  const int repeats = opt.quick ? 3 : 7;
  const kernels::Backend backend = kernels::parse_matmul_backend(opt.matmul);
  CpuCalibration c;
  c.threads = threads;
  auto meet = [&] { MPI_Barrier(opt.sync); };
  for (WeightFormat f : kernels::kWeightFormats)
    for (int64_t M : kRowsM) {
      meet();
      c.matmul_gflops[size_t(f)].emplace_back(double(M), matmul_gflops(f, M, kMatmulKN, backend, repeats));
      c.matmul_small_gflops[size_t(f)].emplace_back(double(M), matmul_gflops(f, M, kMatmulSmallKN, backend, repeats));
    }
  for (WeightFormat f : {WeightFormat::bf16, WeightFormat::int8}) {
    meet();
    c.pack_gbps[size_t(f)] = pack_gbps(f, backend, repeats);
  }
  meet();
  c.attention_gflops = attention_gflops(repeats);
  meet();
  if (kernels::attention_bf16_available()) c.attention_bf16_gflops = attention_gflops(repeats, true);
  meet();
  MachineLimitsOptions lim;
  lim.gemm_size = 256;  // the GEMM peaks are not used here (the matmul curves are); keep them cheap
  lim.stream_mib = opt.quick ? 64 : 0;  // 0: far above the last-level cache
  lim.repeats = opt.quick ? 2 : 4;
  c.read_gbps = measure_machine_limits(lim).read_gbps;
  lim.stream_mib = kCacheMib;  // the same read-only sum on arrays that stay in the last-level cache
  lim.repeats = repeats * 4;
  meet();
  c.cache_read_gbps = measure_machine_limits(lim).read_gbps;
  c.cache_bytes = double(kCacheMib) * double(1 << 20);

  // Overheads: measured - predicted (without overheads) per layer.
  // Every rank of `sync` runs the model at once, as the ranks of a sweep point do: price its reads
  // as such a host's (their working sets together in the cache or not; each read at the speed it
  // measured with the others reading too). Priced as one rank alone, each rank's working set
  // would look cache-resident where together they are not, and the memory time the ranks spend
  // would be fitted as per-layer overhead.
  int ranks = 1;
  MPI_Comm_size(opt.sync, &ranks);
  CpuCalibration host = c;
  host.threads = threads * ranks;
  host.read_gbps = c.read_gbps * ranks;
  HardwareProfile hw;
  hw.name = "calibrating";
  hw.peak_flops = {1, 1, 1};
  hw.hbm_bandwidth = c.read_gbps * 1e9;
  hw.link_bandwidth = {1, 1, 1};
  hw.cpu = {c};
  if (ranks > 1) hw.cpu.push_back(host);
  // The model with each weight format: what FLOPs and bytes do not explain differs by format (one
  // format's overheads misprice another's steps).
  Round round{c, {}, {}};
  const size_t nd = std::size(kDecodeBatches);
  for (WeightFormat f : kernels::kWeightFormats) {
    meet();
    const std::vector<Timed> t = time_model(opt, repeats, f);
    for (size_t i = 0; i < t.size(); ++i) {
      const StepTime p = step_time(t[i].cost, hw, f, 1, 1.0, {threads, ranks});
      (i < nd ? round.dec : round.pre)[size_t(f)].emplace_back(
          double(t[i].cost.rows), (t[i].seconds - p.serial_s) / double(t[i].cost.layers));
    }
  }
  return round;
}

}  // namespace

CpuCalibration calibrate_cpu(int threads, const CalibrationOptions& opt) {
  runtime::apply_threads(threads, MPI_COMM_SELF);
  // Whole rounds one after another, each figure the median over them: a slow spell of a shared
  // machine, lasting seconds, then moves one round, not the profile.
  const int rounds = opt.quick ? 1 : kRounds;
  std::vector<CpuCalibration> r;
  std::vector<Round> rs;
  for (int i = 0; i < rounds; ++i) {
    rs.push_back(calibrate_cpu_once(threads, opt));
    CpuCalibration x = rs.back().c;
    fit_all_overheads(rs.back().dec, rs.back().pre, x);  // this round's own fits, for the log
    r.push_back(x);
    for (WeightFormat f : kernels::kWeightFormats) {
      const Overheads& o = x.overheads(f);
      spdlog::debug("calibrate: {} thread(s), round {}, {}: overhead per layer {:.1f} us (+ {:.1f} in prefill), per "
                    "prefill row {:.0f} ns, per decode row {:.0f} ns; matmul at M=64 {:.1f} GFLOP/s",
                    threads, i + 1, kernels::weight_format_name(f), o.layer_s * 1e6, o.prefill_s * 1e6,
                    o.row_s * 1e9, o.decode_row_s * 1e9, x.matmul_rate(f, 64));
    }
  }
  CpuCalibration c = r.front();
  auto med = [&](auto field) { return med_of(r, field); };
  for (size_t f = 0; f < c.matmul_gflops.size(); ++f)
    for (size_t i = 0; i < c.matmul_gflops[f].size(); ++i) {
      c.matmul_gflops[f][i].second = med([&](const auto& x) { return x.matmul_gflops[f][i].second; });
      c.matmul_small_gflops[f][i].second = med([&](const auto& x) { return x.matmul_small_gflops[f][i].second; });
    }
  c.attention_gflops = med([](const auto& x) { return x.attention_gflops; });
  c.attention_bf16_gflops = med([](const auto& x) { return x.attention_bf16_gflops; });
  c.read_gbps = med([](const auto& x) { return x.read_gbps; });
  c.cache_read_gbps = med([](const auto& x) { return x.cache_read_gbps; });
  // The overheads: each point's residual the median over the rounds, then one fit. (A slow spell
  // moves many of one round's residuals together; fitted per round, then the median taken per
  // figure, the intercept and the slope could come from different rounds.)
  auto dec = rs.front().dec, pre = rs.front().pre;
  for (WeightFormat f : kernels::kWeightFormats) {
    const size_t k = size_t(f);
    for (size_t i = 0; i < dec[k].size(); ++i)
      dec[k][i].second = med_of(rs, [k, i](const Round& x) { return x.dec[k][i].second; });
    for (size_t i = 0; i < pre[k].size(); ++i)
      pre[k][i].second = med_of(rs, [k, i](const Round& x) { return x.pre[k][i].second; });
    for (const auto& [M, v] : dec[k])
      spdlog::debug("calibrate: {} thread(s), {} decode of {} rows: {:.1f} us per layer beyond the prediction (median)",
                    threads, kernels::weight_format_name(f), M, v * 1e6);
    for (const auto& [M, v] : pre[k])
      spdlog::debug("calibrate: {} thread(s), {} prefill of {} rows: {:.1f} us per layer beyond the prediction "
                    "(median)", threads, kernels::weight_format_name(f), M, v * 1e6);
  }
  fit_all_overheads(dec, pre, c);
  for (size_t f = 0; f < c.pack_gbps.size(); ++f)
    c.pack_gbps[f] = med([f](const auto& x) { return x.pack_gbps[f]; });
  return c;
}

namespace {

// Runs `mpirun -np 2 tori bench collectives` three times (the best median of each point: a whole
// launch can land in a mode where every transfer is slower) and keeps, per collective kind, the
// time of one call by the bytes it sends (as traffic.hpp counts them: bus_gbps · t) at buffers of
// 4 KiB, 256 KiB, 4 MiB and 16 MiB; the links get all_gather's latency (4 KiB) and its bandwidth
// between 256 KiB and 4 MiB.
LinkFit measure_links(const CalibrationOptions& o) {
  const std::string cmd = mpirun_self(o.mpirun, 2) + " --threads 1 --json --collectives " + o.collectives +
                          " bench collectives --ops all_gather,reduce_scatter,all_reduce,all_to_all,ppermute --algos " +
                          o.collectives + " --axes x --sizes 4KiB,256KiB,4MiB,16MiB --repeats " +
                          (o.quick ? "10" : "40");
  spdlog::info("calibrate: links (3 runs): {}", cmd);
  // (kind, buffer bytes) -> (bytes sent, best seconds)
  std::map<std::pair<std::string, double>, std::pair<double, double>> best;
  std::string out;
  for (int run = 0; run < 3; ++run) {
    out = run_capture(cmd);
    for (const auto& j : json_records(out, "collective")) {
      const double t = j["median_s"].get<double>(), sent = j["bus_gbps"].get<double>() * 1e9 * t;
      auto key = std::make_pair(j["op"].get<std::string>(), j["bytes"].get<double>());
      auto it = best.find(key);
      if (it == best.end() || t < it->second.second) best[key] = {sent, t};
    }
  }
  LinkFit f;
  for (collectives::Collective k : collectives::kCollectives) {
    auto& pts = f.kind_time[size_t(k)];
    for (const auto& [key, v] : best)
      if (key.first == collectives::collective_name(k)) pts.push_back(v);
    if (pts.size() != 4)
      throw Error("calibrate: `" + cmd + "` did not give the four " + std::string(collectives::collective_name(k)) +
                  " records (is mpirun on PATH? give its path with --mpirun); its output:\n" + out);
    std::sort(pts.begin(), pts.end());
    if (k == collectives::Collective::all_gather) {
      const double bw = (pts[2].first - pts[1].first) / std::max(1e-9, pts[2].second - pts[1].second);
      f.gbps = bw * 1e-9;
      f.latency_us = std::max(0.1, (pts[0].second - pts[0].first / bw) * 1e6);
    }
  }
  return f;
}

// A 2-rank step of the calibration model against `hw`'s prediction of it (`tori bench overlap`,
// nothing overlapped, the sweep's prompt length): the measured median step, and the prediction's
// parts without the step figures being fitted (collective_sync, collective_step_gbps,
// rank_imbalance).
struct StepPoint {
  double step = 0;   // measured, s
  double chip0 = 0;  // predicted compute, memory and overheads with decode_sequence_share 0
  double chip1 = 0;  // ... and with 1 (the prediction is linear in the share between)
  double curve = 0;  // predicted collectives from their collective_us curves
  double calls = 0;  // collective calls per step
  double bytes = 0;  // sent per step (all axes)
  double chip(double share) const { return chip0 + share * (chip1 - chip0); }
};

// Runs the plans at one batch and phase in one launch (`rounds` rounds in turn: they share the
// launch's luck) and predicts each.
std::vector<StepPoint> measure_steps(const CalibrationOptions& o, const HardwareProfile& hw,
                                     const std::vector<std::string>& plans, bool prefill, int64_t batch, int repeats,
                                     int rounds) {
  const int threads = std::max(1, runtime::cores_on_host() / 2);
  std::string plan_list;
  for (const auto& p : plans) plan_list += (plan_list.empty() ? "" : ",") + p;
  const std::string cmd = mpirun_self(o.mpirun, 2) + " --threads " + std::to_string(threads) +
                          " --json --matmul " + o.matmul + " bench overlap --model " + o.model +
                          " --plans " + plan_list + " --phases " + (prefill ? "prefill" : "decode") +
                          " --overlaps none --batch " + std::to_string(batch) + " --prompt-len " +
                          std::to_string(kPromptLen) + " --repeats " + std::to_string(repeats) + " --rounds " +
                          std::to_string(rounds);
  spdlog::info("calibrate: collectives in steps: {}", cmd);
  const std::string out = run_capture(cmd);
  std::map<std::string, double> step;
  for (const auto& j : json_records(out, "overlap")) step[j["plan"].get<std::string>()] = j["step_s"].get<double>();
  HardwareProfile plain = hw;
  plain.collective_sync = 0;
  plain.collective_step_bandwidth = 0;
  plain.rank_imbalance = 0;
  HardwareProfile per_sequence = plain;
  plain.decode_sequence_share = 0;
  per_sequence.decode_sequence_share = 1;
  const models::ModelConfig config = models::open_model(o.model, 1234)->config();
  std::vector<StepPoint> pts;
  for (const auto& text : plans) {
    const runtime::Plan plan = runtime::parse_plan(text, "calibrate");
    const auto it = step.find(plan.str());
    if (it == step.end())
      throw Error("calibrate: `" + cmd + "` did not give the record of " + text +
                  " (is mpirun on PATH? give its path with --mpirun); its output:\n" + out);
    StepQuery q;
    q.config = config;
    q.shape = collectives::TorusShape{{2, 1, 1}};
    q.plan = prefill ? plan.prefill : plan.decode;
    q.decode_plan = plan.decode;
    q.prefill = prefill;
    q.batch = batch;
    q.tokens = prefill ? kPromptLen : 1;
    q.cached = prefill ? 0 : kPromptLen + (repeats + 1) / 2;
    const StepCost cost = predict_step(q);
    const StepTime t = step_time(cost, plain, kernels::WeightFormat::f32, 2, 1.0, {threads, 2});
    const StepTime t1 =
        step_time(cost, per_sequence, kernels::WeightFormat::f32, 2, 1.0, {threads, 2});
    StepPoint p;
    p.step = it->second;
    p.curve = t.comm_s;
    p.chip0 = t.serial_s - t.comm_s;
    p.chip1 = t1.serial_s - t1.comm_s;
    for (const auto& c : cost.step.calls) {
      p.calls += c.count;
      for (const auto& t : c.traffic) p.bytes += c.count * double(t.bytes);
    }
    pts.push_back(p);
  }
  return pts;
}

// measure_steps over `launches` launches, each plan's step the median of its launches' (a whole
// launch can run every step slower, or catch a slow spell on one plan).
std::vector<StepPoint> median_steps(const CalibrationOptions& o, const HardwareProfile& hw,
                                    const std::vector<std::string>& plans, bool prefill, int64_t batch, int repeats,
                                    int rounds, int launches) {
  std::vector<std::vector<double>> steps(plans.size());
  std::vector<StepPoint> pts;
  for (int launch = 0; launch < launches; ++launch) {
    pts = measure_steps(o, hw, plans, prefill, batch, repeats, rounds);
    for (size_t i = 0; i < pts.size(); ++i) steps[i].push_back(pts[i].step);
  }
  for (size_t i = 0; i < pts.size(); ++i) pts[i].step = kernels::median(steps[i]);
  return pts;
}

// collective_sync, collective_step_gbps, rank_imbalance and decode_sequence_share
// (hardware_profile.hpp): what 2-rank steps of the calibration model (nothing overlapped) take
// beyond what the rest of `hw` predicts, r = step - chip - curve:
//   prefill at batch 16, ws1d/heads and ws2d/heads in turn in a launch, the median of three
//   launches (the same compute; ws2d sends 4.6x the bytes):
//     r = bytes / step_gbps + imbalance·chip + calls·sync, solved for the two
//   decode at batch 1, 4 and 16 (ws1d/heads, a launch each: a dozen small calls a step):
//     sync = median of (r - bytes / step_gbps - imbalance·chip) / calls
//   decode at batch 16 and 64, ws1d/heads and ws1d/batch:xyz in turn in a launch, the median of
//   three launches (heads attends every sequence on each rank, batch:xyz half; the rest of their
//   per-row work splits alike):
//     step_heads - step_batch = the rest's difference + share · the per-sequence part's,
//     the share by least squares through the two batches (batch 64 weighs most), within [0, 1]
// alternately, three times (sync is small in prefill, bytes and imbalance in decode; the share
// moves the decode chip sync is fitted on). Each clamped at 0 (a step_gbps that would be negative
// or above 1000: none).
// Why these figures: a step's collectives cost more than their curves say (in a step, buffers are
// packed and come from and go to the step's caches; a curve times one buffer called over and over),
// and ranks in lockstep wait for the slowest (the same work runs at different speeds on a host's
// cores). The extra is a cost per byte, not a factor on the curves, which would over-price steps
// of many small calls. sync is fitted on the whole step, not on the exposed communication alone,
// which leaves each call's issue cost out, and over three batches, as one batch alone moves with
// noise. The share is fitted, not fixed: it decides between heads- and batch-sharded decode
// attention, whose steps differ by little. (docs/measurements/cost_model.md has the misses each
// figure answers.)
void fit_step_collectives(const CalibrationOptions& o, HardwareProfile& hw) {
  const int prefill_repeats = o.quick ? 3 : 5, decode_repeats = o.quick ? 9 : 25;
  const int launches = o.quick ? 1 : 3;
  // The prefill pair, over three launches (one launch's slow steps alone would move
  // rank_imbalance many times over).
  const std::vector<StepPoint> pre = median_steps(o, hw, {"ws1d/heads", "ws2d/heads"}, true, 16, prefill_repeats,
                                                  o.quick ? 1 : 2, launches);
  std::vector<StepPoint> dec;
  for (int64_t batch : {1, 4, 16})
    dec.push_back(measure_steps(o, hw, {"ws1d/heads"}, false, batch, decode_repeats, 1)[0]);
  // (heads, batch:xyz) decode pairs over three launches (a slow spell in one launch moves one
  // plan of a pair, and the share with it).
  std::vector<std::vector<StepPoint>> pairs;
  for (int64_t batch : {16, 64})
    pairs.push_back(median_steps(o, hw, {"ws1d/heads", "ws1d/batch:xyz"}, false, batch, o.quick ? 5 : 9, 2,
                                 launches));
  double sync = 0, per_byte = 0, imbalance = 0, share = 0.5;
  for (int round = 0; round < 3; ++round) {
    // per_byte·bytes_i + imbalance·chip_i = r_i - calls_i·sync, i = ws1d, ws2d
    const StepPoint &a = pre[0], &b = pre[1];
    const double ca = a.chip(share), cb = b.chip(share);
    const double ra = a.step - ca - a.curve - a.calls * sync, rb = b.step - cb - b.curve - b.calls * sync;
    const double det = a.bytes * cb - b.bytes * ca;
    per_byte = det != 0 ? (ra * cb - rb * ca) / det : 0.0;
    imbalance = det != 0 ? (a.bytes * rb - b.bytes * ra) / det : 0.0;
    if (imbalance < 0) {  // no waiting: the bytes alone, least squares through both
      imbalance = 0;
      per_byte = (ra * a.bytes + rb * b.bytes) / std::max(1e-30, a.bytes * a.bytes + b.bytes * b.bytes);
    }
    if (per_byte < 1e-12) {  // no extra per byte (or above 1000 GB/s): the waiting alone
      per_byte = 0;
      imbalance = std::max(0.0, (ra * ca + rb * cb) / std::max(1e-30, ca * ca + cb * cb));
    }
    std::vector<double> per_call;
    for (const StepPoint& d : dec)
      if (d.calls > 0)
        per_call.push_back((d.step - d.chip(share) * (1 + imbalance) - d.curve - d.bytes * per_byte) / d.calls);
    sync = per_call.empty() ? 0.0 : std::max(0.0, kernels::median(per_call));
    // The share: what the pair's measured difference leaves beyond the rest of the model's.
    double num = 0, den = 0;
    for (const auto& pr : pairs) {
      const StepPoint &h = pr[0], &x = pr[1];
      const double rest = (h.chip0 - x.chip0) * (1 + imbalance) + (h.curve - x.curve) +
                          (h.bytes - x.bytes) * per_byte + (h.calls - x.calls) * sync;
      const double g = ((h.chip1 - h.chip0) - (x.chip1 - x.chip0)) * (1 + imbalance);
      num += g * ((h.step - x.step) - rest);
      den += g * g;
    }
    if (den > 0) share = std::clamp(num / den, 0.0, 1.0);
  }
  for (const StepPoint& p : pre)
    spdlog::debug("calibrate: 2-rank prefill step {:.3f} ms: predicted compute {:.3f}, collectives {:.3f} ({} calls, "
                  "{:.0f} KB)", p.step * 1e3, p.chip(share) * 1e3, p.curve * 1e3, p.calls, p.bytes * 1e-3);
  for (const StepPoint& p : dec)
    spdlog::debug("calibrate: 2-rank decode step {:.3f} ms: predicted compute {:.3f}, collectives {:.3f} ({} calls, "
                  "{:.0f} KB)", p.step * 1e3, p.chip(share) * 1e3, p.curve * 1e3, p.calls, p.bytes * 1e-3);
  for (const auto& pr : pairs)
    spdlog::debug("calibrate: 2-rank decode ws1d/heads {:.3f} ms vs ws1d/batch:xyz {:.3f} ms: predicted compute "
                  "{:.3f} vs {:.3f} at share 0, {:.3f} vs {:.3f} at 1", pr[0].step * 1e3, pr[1].step * 1e3,
                  pr[0].chip0 * 1e3, pr[1].chip0 * 1e3, pr[0].chip1 * 1e3, pr[1].chip1 * 1e3);
  hw.collective_sync = sync;
  hw.collective_step_bandwidth = per_byte > 0 ? 1.0 / per_byte : 0.0;
  hw.rank_imbalance = imbalance;
  hw.decode_sequence_share = share;
}

// How late a sleep of the link model's size wakes (collectives.cpp holds collectives with
// sleep_until): median over 200 sleeps of 20 µs, in µs.
double sleep_overshoot_us() {
  std::vector<double> late;
  for (int i = 0; i < 200; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto want = t0 + std::chrono::microseconds(20);
    std::this_thread::sleep_until(want);
    late.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - want).count());
  }
  return std::max(0.0, kernels::median(late));
}

// A profile holding only `c` (the worker's output; the other figures are placeholders).
HardwareProfile cpu_only(const CpuCalibration& c) {
  HardwareProfile p;
  p.name = "rank-figures";
  p.peak_flops = {1, 1, 1};
  p.hbm_bytes = p.hbm_bandwidth = p.link_latency = 1;
  p.link_bandwidth = {1, 1, 1};
  p.cpu = {c};
  return p;
}

// `threads` per rank with cores/threads ranks measuring at once (each rank's figures as it will
// run: sharing the host), via `mpirun ... tori calibrate --rank-figures`; rank 0's figures.
CpuCalibration calibrate_shared(int threads, int ranks, const CalibrationOptions& o) {
  const std::string cmd = mpirun_self(o.mpirun, ranks) + " --threads " + std::to_string(threads) + " --matmul " +
                          o.matmul + " calibrate --rank-figures --model " + o.model + (o.quick ? " --quick" : "");
  spdlog::info("calibrate: {} rank(s) x {} thread(s) at once: {}", ranks, threads, cmd);
  const std::string out = run_capture(cmd);
  const size_t at = out.find("name: rank-figures");
  if (at == std::string::npos)
    throw Error("calibrate: `" + cmd + "` did not print its figures (is mpirun on PATH? give its path with --mpirun); "
                "its output:\n" + out);
  const HardwareProfile p = parse_hardware_profile(out.substr(at), "`" + cmd + "`");
  return p.cpu.at(0);
}

}  // namespace

std::string rank_figures_yaml(const CpuCalibration& c) {
  return hardware_profile_yaml(cpu_only(c), "rank 0's figures");
}

MachineCalibration calibrate_machine(const CalibrationOptions& o) {
  MachineCalibration m;
  HardwareProfile& hw = m.profile;
  hw.name = "local";
  const int cores = runtime::cores_on_host();
  for (int t : {1, cores}) {
    if (!hw.cpu.empty() && hw.cpu.back().threads == t) continue;
    spdlog::info("calibrate: kernels and overheads with {} thread(s)", t);
    // A rank with t < cores threads shares the host with cores/t - 1 others (the default threads,
    // runtime/threads.hpp): measure it that way.
    hw.cpu.push_back(t < cores ? calibrate_shared(t, cores / t, o) : calibrate_cpu(t, o));
  }
  const CpuCalibration& all = hw.cpu.back();
  for (size_t f = 0; f < 3; ++f) {
    double best = 0;
    for (const auto& [M, gf] : all.matmul_gflops[f]) best = std::max(best, gf);
    hw.peak_flops[f] = best * 1e9;
  }
  hw.hbm_bytes = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
  hw.hbm_bandwidth = all.read_gbps * 1e9;
  m.link = measure_links(o);
  hw.link_bandwidth = {m.link.gbps * 1e9, m.link.gbps * 1e9, m.link.gbps * 1e9};
  hw.link_latency = m.link.latency_us * 1e-6;
  hw.collective_time = m.link.kind_time;
  hw.link_model_wake = sleep_overshoot_us() * 1e-6;
  fit_step_collectives(o, hw);
  return m;
}

}  // namespace tori::planning
