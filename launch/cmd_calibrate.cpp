// `tori calibrate`: measures this machine and writes the `local` hardware profile
// (planning/hardware_profile.hpp) to profile_dir()/local.yaml ($TORI_PROFILE_DIR, else the repo's
// .cache/), which `--hardware local`, `--plan auto` and `tori bench sweep` read. Run it on one
// process (not under mpirun); about a minute (--quick: one round instead of three, noisier).
//   cpu entries   for 1 thread and for every core (bench/calibration.hpp): matmul GFLOP/s by rows
//                 and dtype, attention GFLOP/s, read bandwidth, per-layer and per-row overheads;
//                 fewer threads than cores are measured as cores/threads ranks under mpirun all
//                 measuring at once (`calibrate --rank-figures`), as such ranks run
//   peak_tflops   the largest matmul rate measured per dtype (all cores)
//   hbm_*         physical memory and the all-core read bandwidth
//   link_*        `mpirun -np 2 tori bench collectives` (over x, the --collectives algorithm, 4 KiB
//                 and 4 MiB per rank, best of 3 launches) fitted to t = latency + bytes_sent /
//                 bandwidth: all_gather's figures for the links (the ranks share one box, so y and
//                 z get the x figures), each kind's bandwidth for collective_gbps
//   link_model_wake_us  how late a 20 µs sleep wakes (the link model's holds are sleeps)
//   collective_sync_us, collective_step_gbps, rank_imbalance, decode_sequence_share  what 2-rank
//                 prefill and decode steps (`tori bench overlap`) take beyond what the rest of the
//                 profile predicts: per call, per byte sent, per second of compute, and the share
//                 of a decode row's overhead per sequence attended (fit_step_collectives)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bench/calibration.hpp"
#include "bench/spawn.hpp"
#include "collectives/traffic.hpp"
#include "kernels/error.hpp"
#include "kernels/record.hpp"
#include "launch/command.hpp"
#include "models/hf_checkpoint.hpp"
#include "planning/cost_model.hpp"
#include "planning/step_time.hpp"
#include "runtime/threads.hpp"

namespace tori::launch {

namespace {

struct CalibrateOptions {
  bench::CalibrationOptions bench;
  bool rank_figures = false;  // worker mode: every rank measures, rank 0 prints its `cpu` entry
  std::string out;  // default: profile_dir()/local.yaml
  std::string mpirun = "mpirun";
};

struct LinkFit {
  double gbps = 0, latency_us = 0;
  // per collective kind: (bytes sent, seconds) of one call at each measured size
  std::array<std::vector<std::pair<double, double>>, collectives::kCollectives.size()> kind_time{};
};

// Runs `mpirun -np 2 tori bench collectives` three times (the best median of each point: a launch
// sometimes lands in a mode where every transfer is ~4x slower) and keeps, per collective kind, the
// time of one call by the bytes it sends (as traffic.hpp counts them: bus_gbps · t) at buffers of
// 4 KiB, 256 KiB, 4 MiB and 16 MiB; the links get all_gather's latency (4 KiB) and its bandwidth
// between 256 KiB and 4 MiB.
LinkFit measure_links(const CalibrateOptions& o, const GlobalOptions& g) {
  const std::string cmd = bench::mpirun_self(o.mpirun, 2) + " --threads 1 --json --collectives " + g.collectives +
                          " bench collectives --ops all_gather,reduce_scatter,all_reduce,all_to_all,ppermute --algos " +
                          g.collectives + " --axes x --sizes 4KiB,256KiB,4MiB,16MiB --repeats " + (o.bench.quick ? "10" : "40");
  spdlog::info("calibrate: links (3 runs): {}", cmd);
  // (kind, buffer bytes) -> (bytes sent, best seconds)
  std::map<std::pair<std::string, double>, std::pair<double, double>> best;
  std::string out;
  for (int run = 0; run < 3; ++run) {
    out = bench::run_capture(cmd);
    for (const auto& j : bench::json_records(out, "collective")) {
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
std::vector<StepPoint> measure_steps(const CalibrateOptions& o, const planning::HardwareProfile& hw,
                                     const std::vector<std::string>& plans, bool prefill, int64_t batch, int repeats,
                                     int rounds) {
  constexpr int64_t kPrompt = 16;  // tori bench sweep's default --prompt-len
  const int threads = std::max(1, runtime::cores_on_host() / 2);
  std::string plan_list;
  for (const auto& p : plans) plan_list += (plan_list.empty() ? "" : ",") + p;
  const std::string cmd = bench::mpirun_self(o.mpirun, 2) + " --threads " + std::to_string(threads) +
                          " --json --matmul " + o.bench.matmul + " bench overlap --model " + o.bench.model +
                          " --plans " + plan_list + " --phases " + (prefill ? "prefill" : "decode") +
                          " --overlaps none --batch " + std::to_string(batch) + " --prompt-len " +
                          std::to_string(kPrompt) + " --repeats " + std::to_string(repeats) + " --rounds " +
                          std::to_string(rounds);
  spdlog::info("calibrate: collectives in steps: {}", cmd);
  const std::string out = bench::run_capture(cmd);
  std::map<std::string, double> step;
  for (const auto& j : bench::json_records(out, "overlap")) step[j["plan"].get<std::string>()] = j["step_s"].get<double>();
  planning::HardwareProfile plain = hw;
  plain.collective_sync = 0;
  plain.collective_step_bandwidth = 0;
  plain.rank_imbalance = 0;
  planning::HardwareProfile per_sequence = plain;
  plain.decode_sequence_share = 0;
  per_sequence.decode_sequence_share = 1;
  const models::ModelConfig config = models::open_model(o.bench.model, 1234)->config();
  std::vector<StepPoint> pts;
  for (const auto& text : plans) {
    const runtime::Plan plan = runtime::parse_plan(text, "calibrate");
    const auto it = step.find(plan.str());
    if (it == step.end())
      throw Error("calibrate: `" + cmd + "` did not give the record of " + text +
                  " (is mpirun on PATH? give its path with --mpirun); its output:\n" + out);
    planning::StepQuery q;
    q.config = config;
    q.shape = collectives::TorusShape{{2, 1, 1}};
    q.plan = prefill ? plan.prefill : plan.decode;
    q.decode_plan = plan.decode;
    q.prefill = prefill;
    q.batch = batch;
    q.tokens = prefill ? kPrompt : 1;
    q.cached = prefill ? 0 : kPrompt + (repeats + 1) / 2;
    const planning::StepCost cost = planning::predict_step(q);
    const planning::StepTime t = planning::step_time(cost, plain, kernels::WeightFormat::f32, 2, 1.0, {threads, 2});
    const planning::StepTime t1 =
        planning::step_time(cost, per_sequence, kernels::WeightFormat::f32, 2, 1.0, {threads, 2});
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

// measure_steps over `launches` launches, each plan's step the median of its launches' (a launch
// now and then runs every step 1.5x slower, or catches a slow spell on one plan).
std::vector<StepPoint> median_steps(const CalibrateOptions& o, const planning::HardwareProfile& hw,
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
// Measured on a Zen 4 box before these were fitted: a 2-chip prefill's collectives took 2.2-2.4x
// (ws2d) and 4-4.5x (ws1d) their curves' time in two sweeps a day apart, the sweeps' 2-chip
// prefill points 19-21% under their prediction; the ranks' cores ran the same steps 7-30% apart.
// Scaling the curves instead of adding per byte put 2-chip decode (small calls) 35% over.
// (sync alone, fitted on the exposed time without the whole step, left each call's issue cost out:
// 2-chip decode 30-50% over its prediction; fitted at batch 4 alone it moved 1-27 us.) With the
// share fixed at 0.5, the Sapphire Rapids box's 2-chip decode at batch 4-16 put ws1d/batch:xyz
// ahead of ws1d/heads, which measured 1.05-1.14x faster (five sweeps: the share that fits each
// was 0.06-0.18 at batch 64).
void fit_step_collectives(const CalibrateOptions& o, planning::HardwareProfile& hw) {
  const int prefill_repeats = o.bench.quick ? 3 : 5, decode_repeats = o.bench.quick ? 9 : 25;
  const int launches = o.bench.quick ? 1 : 3;
  // The prefill pair, over three launches (one launch's slow steps alone moved rank_imbalance from
  // 5% to 68%).
  const std::vector<StepPoint> pre = median_steps(o, hw, {"ws1d/heads", "ws2d/heads"}, true, 16, prefill_repeats,
                                                  o.bench.quick ? 1 : 2, launches);
  std::vector<StepPoint> dec;
  for (int64_t batch : {1, 4, 16}) dec.push_back(measure_steps(o, hw, {"ws1d/heads"}, false, batch, decode_repeats, 1)[0]);
  // (heads, batch:xyz) decode pairs over three launches (from one launch, a slow spell put a
  // batch-64 heads step at 4.4 ms against 3.2 in other calibrations, and the share at 0.49 against
  // 0.06).
  std::vector<std::vector<StepPoint>> pairs;
  for (int64_t batch : {16, 64})
    pairs.push_back(median_steps(o, hw, {"ws1d/heads", "ws1d/batch:xyz"}, false, batch, o.bench.quick ? 5 : 9, 2,
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
planning::HardwareProfile cpu_only(const planning::CpuCalibration& c) {
  planning::HardwareProfile p;
  p.name = "rank-figures";
  p.peak_flops = {1, 1, 1};
  p.hbm_bytes = p.hbm_bandwidth = p.link_latency = 1;
  p.link_bandwidth = {1, 1, 1};
  p.cpu = {c};
  return p;
}

// `threads` per rank with cores/threads ranks measuring at once (each rank's figures as it will
// run: sharing the host), via `mpirun ... tori calibrate --rank-figures`; rank 0's figures.
planning::CpuCalibration calibrate_shared(int threads, int ranks, const CalibrateOptions& o) {
  const std::string cmd = bench::mpirun_self(o.mpirun, ranks) + " --threads " +
                          std::to_string(threads) + " --matmul " + o.bench.matmul + " calibrate --rank-figures --model " +
                          o.bench.model + (o.bench.quick ? " --quick" : "");
  spdlog::info("calibrate: {} rank(s) x {} thread(s) at once: {}", ranks, threads, cmd);
  const std::string out = bench::run_capture(cmd);
  const size_t at = out.find("name: rank-figures");
  if (at == std::string::npos)
    throw Error("calibrate: `" + cmd + "` did not print its figures (is mpirun on PATH? give its path with --mpirun); "
                "its output:\n" + out);
  const planning::HardwareProfile p = planning::parse_hardware_profile(out.substr(at), "`" + cmd + "`");
  return p.cpu.at(0);
}

int run_calibrate(const CalibrateOptions& o, const GlobalOptions& g) {
  if (o.rank_figures) {
    CalibrateOptions w = o;
    w.bench.sync = MPI_COMM_WORLD;
    const planning::CpuCalibration c = bench::calibrate_cpu(g.threads_applied, w.bench);
    if (g.rank == 0) std::printf("%s", planning::hardware_profile_yaml(cpu_only(c), "rank 0's figures").c_str());
    return 0;
  }
  if (g.world_size != 1)
    throw InputError("calibrate: run it on one process, not under mpirun (it starts mpirun itself for the links)");
  // Where it goes, checked before measuring: written to <path>.tmp, renamed when complete (an
  // interrupted calibration leaves no half profile behind).
  const std::string path = o.out.empty() ? planning::local_profile_path() : o.out;
  const std::string tmp = path + ".tmp";
  {
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  }
  std::ofstream f(tmp);
  if (!f) throw InputError("calibrate: cannot write '" + path + "' (set --out or $TORI_PROFILE_DIR)");
  const double t0 = kernels::now_s();
  planning::HardwareProfile hw;
  hw.name = "local";
  const int cores = runtime::cores_on_host();
  for (int t : {1, cores}) {
    if (!hw.cpu.empty() && hw.cpu.back().threads == t) continue;
    spdlog::info("calibrate: kernels and overheads with {} thread(s)", t);
    // A rank with t < cores threads shares the host with cores/t - 1 others (the default threads,
    // runtime/threads.hpp): measure it that way.
    hw.cpu.push_back(t < cores ? calibrate_shared(t, cores / t, o) : bench::calibrate_cpu(t, o.bench));
  }
  const planning::CpuCalibration& all = hw.cpu.back();
  for (size_t f = 0; f < 3; ++f) {
    double best = 0;
    for (const auto& [M, gf] : all.matmul_gflops[f]) best = std::max(best, gf);
    hw.peak_flops[f] = best * 1e9;
  }
  hw.hbm_bytes = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
  hw.hbm_bandwidth = all.read_gbps * 1e9;
  const LinkFit link = measure_links(o, g);
  hw.link_bandwidth = {link.gbps * 1e9, link.gbps * 1e9, link.gbps * 1e9};
  hw.link_latency = link.latency_us * 1e-6;
  hw.collective_time = link.kind_time;
  hw.link_model_wake = sleep_overshoot_us() * 1e-6;
  fit_step_collectives(o, hw);

  f << planning::hardware_profile_yaml(
      hw, "Written by `tori calibrate` (" + std::string(o.bench.quick ? "--quick, " : "") + "overheads fitted on " +
              o.bench.model + "); see planning/hardware_profile.hpp");
  f.close();
  std::error_code ec;
  if (!f || (std::filesystem::rename(tmp, path, ec), ec))
    throw InputError("calibrate: cannot write '" + path + "' (set --out or $TORI_PROFILE_DIR)");
  const double took = kernels::now_s() - t0;
  if (g.json) {
    nlohmann::json cpu = nlohmann::json::array();
    for (const auto& c : hw.cpu) {
      nlohmann::json e = {{"threads", c.threads}, {"attention_gflops", c.attention_gflops}, {"read_gbps", c.read_gbps},
                          {"cache_read_gbps", c.cache_read_gbps},
                          {"pack_gbps_bf16", c.pack_gbps[size_t(kernels::WeightFormat::bf16)]},
                          {"pack_gbps_int8", c.pack_gbps[size_t(kernels::WeightFormat::int8)]},
                          {"matmul_gflops_f32", c.matmul_gflops[0]}};
      for (kernels::WeightFormat f : kernels::kWeightFormats) {
        const planning::Overheads& o = c.overheads(f);
        e["overheads_" + std::string(kernels::weight_format_name(f))] = {
            {"layer_us", o.layer_s * 1e6}, {"prefill_us", o.prefill_s * 1e6}, {"row_ns", o.row_s * 1e9},
            {"decode_row_ns", o.decode_row_s * 1e9}};
      }
      cpu.push_back(e);
    }
    kernels::emit({{"bench", "calibrate"}, {"profile", path}, {"seconds", took}, {"link_gbps", link.gbps},
                 {"link_latency_us", link.latency_us}, {"collective_sync_us", hw.collective_sync * 1e6},
                 {"collective_step_gbps", hw.collective_step_bandwidth * 1e-9}, {"rank_imbalance", hw.rank_imbalance},
                 {"decode_sequence_share", hw.decode_sequence_share}, {"cpu", cpu}});
  } else {
    std::printf("wrote %s (%.1f s)\n", path.c_str(), took);
    for (const auto& c : hw.cpu) {
      std::printf("  %d thread(s): matmul f32 GFLOP/s", c.threads);
      for (const auto& [M, gf] : c.matmul_gflops[0]) std::printf(" M=%g: %.1f", M, gf);
      std::printf("; attention %.1f GFLOP/s; read %.1f GB/s (in cache %.1f); packs f32 into bf16 at %.2f GB/s, "
                  "int8 at %.2f\n",
                  c.attention_gflops, c.read_gbps, c.cache_read_gbps, c.pack_gbps[size_t(kernels::WeightFormat::bf16)],
                  c.pack_gbps[size_t(kernels::WeightFormat::int8)]);
      for (kernels::WeightFormat f : kernels::kWeightFormats) {
        const planning::Overheads& o = c.overheads(f);
        std::printf("    %s weights: overhead per layer %.1f us (+ %.1f us in prefill) + %.1f ns per prefill row, "
                    "%.1f ns per decode row\n",
                    std::string(kernels::weight_format_name(f)).c_str(), o.layer_s * 1e6, o.prefill_s * 1e6,
                    o.row_s * 1e9, o.decode_row_s * 1e9);
      }
    }
    std::printf("  links (MPI %s, 2 ranks): %.2f GB/s, %.1f us per message; a link-model hold wakes %.1f us late\n",
                g.collectives.c_str(), link.gbps, link.latency_us, hw.link_model_wake * 1e6);
    std::printf("  in a step, a collective call costs its time alone + %.1f us (ranks arriving apart) + its bytes at "
                "%.2f GB/s (0: nothing), and ranks wait for the slowest %.1f%% of their compute time; of a decode "
                "row's overhead %.0f%% is per sequence attended\n",
                hw.collective_sync * 1e6, hw.collective_step_bandwidth * 1e-9, hw.rank_imbalance * 100,
                hw.decode_sequence_share * 100);
    for (collectives::Collective k : collectives::kCollectives) {
      std::printf("  %s, GB/s sent by bytes:", std::string(collectives::collective_name(k)).c_str());
      for (const auto& [b, t] : link.kind_time[size_t(k)]) std::printf(" %.0f: %.2f", b, b / t * 1e-9);
      std::printf("\n");
    }
  }
  return 0;
}

}  // namespace

void add_calibrate_command(CLI::App& parent, Commands& out) {
  auto o = std::make_shared<CalibrateOptions>();
  CLI::App* app = parent.add_subcommand(
      "calibrate", "measure this machine and write the 'local' hardware profile (for --hardware local, --plan auto)");
  app->add_flag("--quick", o->bench.quick, "fewer repeats (a few seconds; noisier)");
  app->add_option("--model", o->bench.model, "model the per-layer overheads are fitted on")->capture_default_str();
  app->add_option("--out", o->out,
                  "profile file (default: $TORI_PROFILE_DIR/local.yaml, else <repo>/.cache/local.yaml)");
  app->add_option("--mpirun", o->mpirun, "mpirun used to time the links between 2 ranks")->capture_default_str();
  app->add_flag("--rank-figures", o->rank_figures,
                "(internal) under mpirun: every rank measures at once, rank 0 prints its figures")
      ->group("");
  out.push_back({app, [o](const GlobalOptions& g) {
                   CalibrateOptions c = *o;
                   c.bench.matmul = g.matmul;
                   return run_calibrate(c, g);
                 }});
}

}  // namespace tori::launch
