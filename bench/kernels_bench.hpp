#pragma once
// `tori bench kernels`: measures this machine's limits (planning/machine_limits.hpp), then each kernel
// x backend x dtype over prefill-like and decode-like shapes, and reports every figure beside the
// limit it should be compared with (JSON lines with --json, a table otherwise):
//   {"bench":"kernel","kernel","backend","dtype","path","m","n","k","median_s","gflops","gbps",
//    "peak_gflops","peak_gbps","bound","frac_peak","threads",...}
// bound/frac_peak follow the roofline: the kernel's time at peak compute (FLOPs / peak GFLOP/s of
// the dtype its arithmetic runs in) vs at peak bandwidth (bytes moved / measured GB/s); whichever
// is longer is the bound, and frac_peak = that ideal time / measured time.
// tsvd records (kernel "tsvd": the tiled-SVD matmul, kernels/tsvd.hpp) add ratio, tile, rank,
// dense_median_s (dense matmul of the same shape, M, backend and dtype, timed just before) and
// speedup = dense_median_s / median_s.
// multigrain records (kernel "multigrain", path = variant: multigrain, coarse_only, fine_only,
// dense_masked, dense_causal) add speedup_vs_dense_causal, speedup_vs_dense_masked,
// speedup_vs_best_single_grain and ideal_speedup (L / 2w); see docs/multigrain.md.
#include <cstdint>
#include <string>
#include <vector>

namespace tori::bench {

struct KernelsBenchOptions {
  bool quick = false;                 // a few shapes per kernel (about a minute)
  std::vector<std::string> kernels;   // matmul, tsvd, attention, multigrain, ops; empty = all
  std::vector<std::string> dtypes;    // f32, bf16, int8, int4, int4-min; empty = all
  std::vector<std::string> backends;  // onednn, openblas; empty = both
  std::vector<int64_t> ms;            // matmul M values; empty = default list
  std::vector<std::string> shapes;    // matmul weight shapes "KxN"; empty = default list
  std::vector<double> ratios;         // tsvd compression ratios; empty = 2, 4, 8
  std::vector<int64_t> lengths;       // multigrain prefill lengths; empty = 4k, 16k, 32k (quick: 4k)
  std::vector<int64_t> windows;       // multigrain sliding windows (+ 4 global tokens); empty = 512
  int64_t tile = 0;                   // tsvd tile size; 0 = the largest of 256, 192, 128, 64 dividing K and N
  int repeats = 5;
  bool json = false;
};

// Runs the benchmark, printing records on stdout. Returns 0.
int run_kernels_bench(const KernelsBenchOptions& opt);

}  // namespace tori::bench
