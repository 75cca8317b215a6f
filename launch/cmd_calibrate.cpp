// `tori calibrate`: measures this machine and writes the `local` hardware profile
// (runtime/hardware_profile.hpp) to profile_dir()/local.yaml ($TORI_PROFILE_DIR, else the repo's
// .cache/), which `--hardware local`, `--plan auto` and `tori bench sweep` read. Run it on one
// process (not under mpirun); about 20 s (--quick: a few seconds, noisier).
//   cpu entries   for 1 thread and for every core (bench/calibration.hpp): matmul GFLOP/s by rows
//                 and dtype, attention GFLOP/s, read bandwidth, per-layer and per-row overheads
//   peak_tflops   the largest matmul rate measured per dtype (all cores)
//   hbm_*         physical memory and the all-core read bandwidth
//   link_*        `mpirun -np 2 tori bench collectives` (all_gather over x, the --collectives
//                 algorithm, 4 KiB and 1 MiB per rank) fitted to t = latency + bytes_sent / bandwidth
//                 (a 2-rank all_gather sends one message of half the buffer); the ranks share one
//                 box, so y and z get the x figures
//   link_model_wake_us  how late a 20 µs sleep wakes (the link model's holds are sleeps)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bench/calibration.hpp"
#include "bench/record.hpp"
#include "bench/spawn.hpp"
#include "kernels/error.hpp"
#include "launch/command.hpp"
#include "runtime/threads.hpp"

namespace tori::launch {

namespace {

struct CalibrateOptions {
  bench::CalibrationOptions bench;
  std::string out;  // default: profile_dir()/local.yaml
  std::string mpirun = "mpirun";
};

struct LinkFit {
  double gbps = 0, latency_us = 0;
};

// Runs `mpirun -np 2 tori bench collectives` and fits latency and bandwidth.
LinkFit measure_links(const CalibrateOptions& o, const GlobalOptions& g) {
  std::error_code ec;
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  const int cores = runtime::cores_on_host();
  const std::string cmd = o.mpirun + " -np 2" + (cores < 2 ? " --oversubscribe" : "") + " --bind-to none " + exe +
                          " --threads 1 --json --collectives " + g.collectives +
                          " bench collectives --ops all_gather --algos " + g.collectives +
                          " --axes x --sizes 4KiB,1MiB --repeats " + (o.bench.quick ? "50" : "200");
  spdlog::info("calibrate: links: {}", cmd);
  const std::string out = bench::run_capture(cmd);
  std::vector<std::pair<double, double>> pts;  // (bytes sent, seconds)
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] != '{') continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("bench", "") != "collective") continue;
    pts.emplace_back(j["bytes"].get<double>() / 2.0, j["median_s"].get<double>());
  }
  if (pts.size() != 2)
    throw Error("calibrate: `" + cmd + "` did not give the two all_gather records (is mpirun on PATH? give its path "
                "with --mpirun); its output:\n" + out);
  std::sort(pts.begin(), pts.end());
  LinkFit f;
  const double bw = (pts[1].first - pts[0].first) / std::max(1e-9, pts[1].second - pts[0].second);
  f.gbps = bw * 1e-9;
  f.latency_us = std::max(0.1, (pts[0].second - pts[0].first / bw) * 1e6);
  return f;
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
  return std::max(0.0, bench::median(late));
}

int run_calibrate(const CalibrateOptions& o, const GlobalOptions& g) {
  if (g.world_size != 1)
    throw InputError("calibrate: run it on one process, not under mpirun (it starts mpirun itself for the links)");
  const double t0 = bench::now_s();
  runtime::HardwareProfile hw;
  hw.name = "local";
  const int cores = runtime::cores_on_host();
  for (int t : {1, cores}) {
    if (!hw.cpu.empty() && hw.cpu.back().threads == t) continue;
    spdlog::info("calibrate: kernels and overheads with {} thread(s)", t);
    hw.cpu.push_back(bench::calibrate_cpu(t, o.bench));
  }
  const runtime::CpuCalibration& all = hw.cpu.back();
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
  hw.link_model_wake = sleep_overshoot_us() * 1e-6;

  const std::string path = o.out.empty() ? runtime::profile_dir() + "/local.yaml" : o.out;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path().empty()
                                          ? std::filesystem::path(".")
                                          : std::filesystem::path(path).parent_path());
  std::ofstream f(path);
  if (!f) throw InputError("calibrate: cannot write '" + path + "' (set --out or $TORI_PROFILE_DIR)");
  f << runtime::hardware_profile_yaml(
      hw, "Written by `tori calibrate` (" + std::string(o.bench.quick ? "--quick, " : "") + "overheads fitted on " +
              o.bench.model + "); see runtime/hardware_profile.hpp");
  f.close();
  const double took = bench::now_s() - t0;
  if (g.json) {
    nlohmann::json cpu = nlohmann::json::array();
    for (const auto& c : hw.cpu)
      cpu.push_back({{"threads", c.threads}, {"attention_gflops", c.attention_gflops}, {"read_gbps", c.read_gbps},
                     {"cache_read_gbps", c.cache_read_gbps}, {"layer_overhead_us", c.layer_overhead_s * 1e6},
                     {"prefill_overhead_us", c.prefill_overhead_s * 1e6}, {"row_overhead_ns", c.row_overhead_s * 1e9},
                     {"matmul_gflops_f32", c.matmul_gflops[0]}});
    bench::emit({{"bench", "calibrate"}, {"profile", path}, {"seconds", took}, {"link_gbps", link.gbps},
                 {"link_latency_us", link.latency_us}, {"cpu", cpu}});
  } else {
    std::printf("wrote %s (%.1f s)\n", path.c_str(), took);
    for (const auto& c : hw.cpu) {
      std::printf("  %d thread(s): matmul f32 GFLOP/s", c.threads);
      for (const auto& [M, gf] : c.matmul_gflops[0]) std::printf(" M=%g: %.1f", M, gf);
      std::printf("; attention %.1f GFLOP/s; read %.1f GB/s (in cache %.1f); overhead per layer %.1f us "
                  "(+ %.1f us in prefill) + %.1f ns/row\n",
                  c.attention_gflops, c.read_gbps, c.cache_read_gbps, c.layer_overhead_s * 1e6,
                  c.prefill_overhead_s * 1e6,
                  c.row_overhead_s * 1e9);
    }
    std::printf("  links (MPI %s, 2 ranks): %.2f GB/s, %.1f us per message; a link-model hold wakes %.1f us late\n",
                g.collectives.c_str(), link.gbps, link.latency_us, hw.link_model_wake * 1e6);
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
  out.push_back({app, [o](const GlobalOptions& g) {
                   CalibrateOptions c = *o;
                   c.bench.matmul = g.matmul;
                   return run_calibrate(c, g);
                 }});
}

}  // namespace tori::launch
