// `tori bench kernels`: machine limits, then each kernel x backend x dtype (bench/kernels_bench.hpp).
#include <memory>

#include "bench/kernels_bench.hpp"
#include "kernels/backend.hpp"
#include "launch/command.hpp"

namespace tori::launch {

void add_bench_kernels_command(CLI::App& bench, Commands& out) {
  auto opt = std::make_shared<bench::KernelsBenchOptions>();
  CLI::App* app = bench.add_subcommand(
      "kernels", "machine limits (peak GEMM per dtype, memory bandwidth), then matmul, tiled-SVD matmul "
                 "against dense, attention, multigrain sparse attention against dense and single-grain, and "
                 "transformer ops against them");
  app->add_flag("--quick", opt->quick, "a few shapes per kernel (about a minute)");
  app->add_option("--kernels", opt->kernels, "matmul,tsvd,attention,multigrain,ops (default: all)")->delimiter(',');
  app->add_option("--dtypes", opt->dtypes, "f32,bf16,int8,int4,int4-min (default: all)")->delimiter(',');
  app->add_option("--backends", opt->backends,
                  "onednn,openblas (default: both, or the one --matmul names)")
      ->delimiter(',');
  app->add_option("--m", opt->ms, "matmul M values, e.g. 1,8,512 (default: 1,8,64,512,2048)")
      ->delimiter(',');
  app->add_option("--shapes", opt->shapes,
                  "matmul weight shapes KxN, e.g. 2048x5632,5632x2048 (default: 1024x1024 to 16384x16384 and the "
                  "llama-1b FFN's 2048x5632, 5632x2048)")
      ->delimiter(',');
  app->add_option("--ratios", opt->ratios, "tsvd compression ratios (default: 2,4,8)")->delimiter(',');
  app->add_option("--tile", opt->tile,
                  "tsvd tile size (default: the largest of 256, 192, 128, 64 dividing both sides)");
  app->add_option("--lengths", opt->lengths,
                  "multigrain prefill lengths in tokens (default: 4096,16384,32768; --quick: 4096)")
      ->delimiter(',');
  app->add_option("--windows", opt->windows,
                  "multigrain sliding windows in tokens, each with 4 global tokens (default: 512)")
      ->delimiter(',');
  app->add_option("--repeats", opt->repeats, "timed repeats per figure (median reported)")
      ->capture_default_str();
  out.push_back({app, [opt](const GlobalOptions& g) {
                   bench::KernelsBenchOptions o = *opt;
                   o.json = g.json;
                   // An explicit --matmul picks the backend to bench (auto = all of them).
                   if (o.backends.empty() && g.matmul != "auto")
                     o.backends = {std::string(kernels::backend_name(
                         kernels::parse_matmul_backend(g.matmul, "--matmul")))};
                   return bench::run_kernels_bench(o);
                 }});
}

}  // namespace tori::launch
