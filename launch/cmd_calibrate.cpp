// `tori calibrate`: measures this machine (planning/calibration.hpp says what and how) and writes
// the `local` hardware profile (planning/hardware_profile.hpp) to profile_dir()/local.yaml
// ($TORI_PROFILE_DIR, else the repo's .cache/), which `--hardware local`, `--plan auto` and `tori
// bench sweep` read. Run it on one process (not under mpirun); about a minute (--quick: one round
// instead of three, noisier). Here: the flags, the file (written whole or not at all) and what is
// printed; `--rank-figures` is the worker calibration starts under mpirun for a thread count below
// the cores (every rank measures at once, rank 0 prints its `cpu` entry).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "collectives/traffic.hpp"
#include "kernels/error.hpp"
#include "kernels/record.hpp"
#include "launch/command.hpp"
#include "planning/calibration.hpp"
#include "planning/hardware_profile.hpp"

namespace tori::launch {

namespace {

struct CalibrateOptions {
  planning::CalibrationOptions calibration;
  bool rank_figures = false;  // worker mode: every rank measures, rank 0 prints its `cpu` entry
  std::string out;  // default: profile_dir()/local.yaml
};

int run_calibrate(const CalibrateOptions& o, const GlobalOptions& g) {
  if (o.rank_figures) {
    planning::CalibrationOptions w = o.calibration;
    w.sync = MPI_COMM_WORLD;
    const planning::CpuCalibration c = planning::calibrate_cpu(g.threads_applied, w);
    if (g.rank == 0) std::printf("%s", planning::rank_figures_yaml(c).c_str());
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
  const planning::MachineCalibration m = planning::calibrate_machine(o.calibration);
  const planning::HardwareProfile& hw = m.profile;
  const planning::LinkFit& link = m.link;

  f << planning::hardware_profile_yaml(hw, "Written by `tori calibrate` (" +
                                               std::string(o.calibration.quick ? "--quick, " : "") +
                                               "overheads fitted on " + o.calibration.model +
                                               "); see planning/hardware_profile.hpp");
  f.close();
  std::error_code ec;
  if (!f || (std::filesystem::rename(tmp, path, ec), ec))
    throw InputError("calibrate: cannot write '" + path + "' (set --out or $TORI_PROFILE_DIR)");
  const double took = kernels::now_s() - t0;
  if (g.json) {
    nlohmann::json cpu = nlohmann::json::array();
    for (const auto& c : hw.cpu) {
      nlohmann::json e = {{"threads", c.threads}, {"attention_gflops", c.attention_gflops},
                          {"attention_gflops_bf16", c.attention_bf16_gflops}, {"read_gbps", c.read_gbps},
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
      std::printf("; attention %.1f GFLOP/s (prefill on bf16 tiles %.1f; 0: not measured); read %.1f GB/s (in cache "
                  "%.1f); packs f32 into bf16 at %.2f GB/s, int8 at %.2f\n",
                  c.attention_gflops, c.attention_bf16_gflops, c.read_gbps, c.cache_read_gbps, c.pack_gbps[size_t(kernels::WeightFormat::bf16)],
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
  app->add_flag("--quick", o->calibration.quick, "fewer repeats (a few seconds; noisier)");
  app->add_option("--model", o->calibration.model, "model the per-layer overheads are fitted on")
      ->capture_default_str();
  app->add_option("--out", o->out,
                  "profile file (default: $TORI_PROFILE_DIR/local.yaml, else <repo>/.cache/local.yaml)");
  app->add_option("--mpirun", o->calibration.mpirun, "mpirun used to time the links between 2 ranks")
      ->capture_default_str();
  app->add_flag("--rank-figures", o->rank_figures,
                "(internal) under mpirun: every rank measures at once, rank 0 prints its figures")
      ->group("");
  out.push_back({app, [o](const GlobalOptions& g) {
                   CalibrateOptions c = *o;
                   c.calibration.matmul = g.matmul;
                   c.calibration.collectives = g.collectives;
                   return run_calibrate(c, g);
                 }});
}

}  // namespace tori::launch
