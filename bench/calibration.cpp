#include "bench/calibration.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "bench/machine_limits.hpp"
#include "collectives/collectives.hpp"
#include "kernels/attention.hpp"
#include "kernels/backend.hpp"
#include "kernels/kv_cache.hpp"
#include "kernels/matmul.hpp"
#include "kernels/record.hpp"
#include "models/hf_checkpoint.hpp"
#include "planning/cost_model.hpp"
#include "runtime/sharded_model.hpp"
#include "planning/step_time.hpp"
#include "runtime/threads.hpp"

namespace tori::bench {

namespace {

using kernels::DType;
using kernels::Tensor;
using kernels::WeightFormat;

constexpr int64_t kMatmulKN = 1024, kMatmulSmallKN = 256;  // hardware_profile.cpp's two sizes

// The median of the repeats, as `tori bench sweep` and `bench overlap` report what they measure:
// the profile prices the steps those commands time (best-of figures under-predicted every sweep
// point by ~20-30% on this shared host).
double typical(const std::vector<double>& t) { return kernels::median(t); }
constexpr int64_t kRowsM[] = {1, 8, 64, 512};
// Working sets up to this size are read at cache speed: half of the 32 MiB L3 of the machine this
// was written on, leaving room for activations and code (the read sum touches one such array).
constexpr int64_t kCacheMib = 16;
constexpr int kRounds = 3;  // calibrate_cpu's whole rounds (1 with --quick)

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

double attention_gflops(int repeats) {
  constexpr int64_t B = 8, H = 8, D = 64, T = 256, Lp = 32;
  kernels::KvCache cache(B, 1, T + Lp + 1, D);
  const Tensor kv = filled({T, D}, 0.5f);
  for (int64_t b = 0; b < B; ++b) cache.append(b, kv, kv);
  double flops = 0, seconds = 0;
  for (int64_t L : {int64_t(1), Lp}) {
    Tensor q = filled({B, L, H, D}, 0.5f), out;
    // Appending L rows per sequence then attending: the cache grows by L per call, so each timing
    // starts from T cached (the append is outside the timed region's FLOPs but cheap).
    const Tensor rows = filled({L, D}, 0.5f);
    std::vector<double> ts;
    for (int r = 0; r < repeats + 1; ++r) {
      for (int64_t b = 0; b < B; ++b) cache.clear(b), cache.append(b, kv, kv), cache.append(b, rows, rows);
      const double t0 = kernels::now_s();
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
// cost model's counts for the same steps. (Blocks of 32 tokens put the smallest at M = 32, and the
// line's fixed part, extrapolated below it, priced a 16-token prefill at batch 1 and 4 1.4-2x
// over.) The overheads are small differences of noisy times: a line through two or three points
// moved 2-4x between calibrations, and one through batch 1-16 still 2x between rounds seconds apart.
constexpr int64_t kDecodeBatches[] = {1, 2, 4, 8, 16, 32, 64}, kPrefillBatches[] = {1, 2, 4, 8, 16, 32, 64};

// Theil-Sen line through (x, y): the median of the pairwise slopes, then the median of y - slope·x;
// one point moved by a slow spell moves neither (least squares through three points did).
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
  planning::StepCost cost;
};

std::vector<Timed> time_model(const CalibrationOptions& opt, int repeats, WeightFormat weights) {
  constexpr int64_t kPromptLen = 16;  // tori bench sweep's default --prompt-len
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
    planning::StepQuery q;
    q.config = cfg;
    q.shape = torus.shape();
    q.plan = plan.prefill;
    q.decode_plan = plan.decode;
    q.prefill = prefill;
    q.batch = batch;
    q.tokens = L;
    q.cached = T;
    q.weights = weights;
    return planning::predict_step(q);
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
  planning::CpuCalibration c;
  std::array<std::vector<std::pair<double, double>>, 3> dec, pre;
};

// Per layer (step_time.hpp): decode r = a + b_d·M; prefill r = a + c + b·M (M: the step's rows:
// decode's are sequences, each with its own attention call and cache append; prefill's are
// tokens). (a, b_d): the decode residuals' line; (a + c, b): the prefill residuals'; every part
// clamped at 0.
planning::Overheads fit_overheads(const std::vector<std::pair<double, double>>& dec,
                                 const std::vector<std::pair<double, double>>& pre) {
  const auto [a, bd] = robust_line(dec);
  const auto [ac, b] = robust_line(pre);
  planning::Overheads o;
  o.layer_s = std::max(0.0, a);
  o.decode_row_s = std::max(0.0, bd);
  o.row_s = std::max(0.0, b);
  o.prefill_s = std::max(0.0, ac - o.layer_s);
  return o;
}

// A round's (or the medians') fits into c: f32's as the overheads, bf16's and int8's as theirs.
void fit_all_overheads(const std::array<std::vector<std::pair<double, double>>, 3>& dec,
                       const std::array<std::vector<std::pair<double, double>>, 3>& pre, planning::CpuCalibration& c) {
  for (WeightFormat f : kernels::kWeightFormats) {
    const planning::Overheads o = fit_overheads(dec[size_t(f)], pre[size_t(f)]);
    if (f == WeightFormat::f32)
      c.overhead = o;
    else
      c.format_overhead[size_t(f)] = o;
  }
}

Round calibrate_cpu_once(int threads, const CalibrationOptions& opt) {
  const int repeats = opt.quick ? 3 : 7;
  const kernels::Backend backend = kernels::parse_matmul_backend(opt.matmul);
  planning::CpuCalibration c;
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
  MachineLimitsOptions lim;
  lim.gemm_size = 256;  // the GEMM peaks are not used here (the matmul curves are); keep them cheap
  lim.stream_mib = opt.quick ? 64 : 128;
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
  // measured with the others reading too). Priced as one rank alone, two 1-thread ranks' 15 MB of
  // palm-tiny each looked cache-resident, and the memory time they really spent (~0.7 ms a step)
  // went into the per-layer overhead: 281 against 57 us at 2 threads on a Zen 4 box.
  int ranks = 1;
  MPI_Comm_size(opt.sync, &ranks);
  planning::CpuCalibration host = c;
  host.threads = threads * ranks;
  host.read_gbps = c.read_gbps * ranks;
  planning::HardwareProfile hw;
  hw.name = "calibrating";
  hw.peak_flops = {1, 1, 1};
  hw.hbm_bandwidth = c.read_gbps * 1e9;
  hw.link_bandwidth = {1, 1, 1};
  hw.cpu = {c};
  if (ranks > 1) hw.cpu.push_back(host);
  // The model with each weight format: what FLOPs and bytes do not explain differs by format (on a
  // Zen 4 box, f32's overheads priced bf16 1-chip decode 20-70% over).
  Round round{c, {}, {}};
  const size_t nd = std::size(kDecodeBatches);
  for (WeightFormat f : kernels::kWeightFormats) {
    meet();
    const std::vector<Timed> t = time_model(opt, repeats, f);
    for (size_t i = 0; i < t.size(); ++i) {
      const planning::StepTime p = planning::step_time(t[i].cost, hw, f, 1, 1.0, {threads, ranks});
      (i < nd ? round.dec : round.pre)[size_t(f)].emplace_back(
          double(t[i].cost.rows), (t[i].seconds - p.serial_s) / double(t[i].cost.layers));
    }
  }
  return round;
}

}  // namespace

planning::CpuCalibration calibrate_cpu(int threads, const CalibrationOptions& opt) {
  runtime::apply_threads(threads, MPI_COMM_SELF);
  // Whole rounds one after another, each figure the median over them: a slow spell of a shared
  // machine (matmul rates 30% down for seconds) then moves one round, not the profile.
  const int rounds = opt.quick ? 1 : kRounds;
  std::vector<planning::CpuCalibration> r;
  std::vector<Round> rs;
  for (int i = 0; i < rounds; ++i) {
    rs.push_back(calibrate_cpu_once(threads, opt));
    planning::CpuCalibration x = rs.back().c;
    fit_all_overheads(rs.back().dec, rs.back().pre, x);  // this round's own fits, for the log
    r.push_back(x);
    for (WeightFormat f : kernels::kWeightFormats) {
      const planning::Overheads& o = x.overheads(f);
      spdlog::debug("calibrate: {} thread(s), round {}, {}: overhead per layer {:.1f} us (+ {:.1f} in prefill), per "
                    "prefill row {:.0f} ns, per decode row {:.0f} ns; matmul at M=64 {:.1f} GFLOP/s",
                    threads, i + 1, kernels::weight_format_name(f), o.layer_s * 1e6, o.prefill_s * 1e6,
                    o.row_s * 1e9, o.decode_row_s * 1e9, x.matmul_rate(f, 64));
    }
  }
  planning::CpuCalibration c = r.front();
  auto med = [&](auto field) { return med_of(r, field); };
  for (size_t f = 0; f < c.matmul_gflops.size(); ++f)
    for (size_t i = 0; i < c.matmul_gflops[f].size(); ++i) {
      c.matmul_gflops[f][i].second = med([&](const auto& x) { return x.matmul_gflops[f][i].second; });
      c.matmul_small_gflops[f][i].second = med([&](const auto& x) { return x.matmul_small_gflops[f][i].second; });
    }
  c.attention_gflops = med([](const auto& x) { return x.attention_gflops; });
  c.read_gbps = med([](const auto& x) { return x.read_gbps; });
  c.cache_read_gbps = med([](const auto& x) { return x.cache_read_gbps; });
  // The overheads: each point's residual the median over the rounds, then one fit. (A slow spell
  // lasting seconds moved a round's batch-8-to-64 decode residuals 2.5x; fitted per round, then the
  // median taken per figure, the intercept and slope came from different rounds.)
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

}  // namespace tori::bench
