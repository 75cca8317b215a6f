#include "planning/machine_limits.hpp"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

#include "kernels/cpu_features.hpp"
#include "kernels/onednn_matmul.hpp"
#include "kernels/record.hpp"
#include "kernels/tensor.hpp"

namespace tori::planning {

namespace {

using kernels::DType;
using kernels::Tensor;

// Best of `repeats`: a limit is what the machine can do, and on a shared host the best run is the
// one least disturbed by other work (STREAM reports best times for the same reason).
double best(const std::vector<double>& times) { return *std::min_element(times.begin(), times.end()); }

// GFLOP/s of an n^3 GEMM with oneDNN-packed weights of dtype `wdt`.
double gemm_peak(int64_t n, DType wdt, int repeats) {
  Tensor w({n, n}, DType::f32);
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = float((i * 7) % 13) - 6.f;
  auto packed = kernels::detail::onednn_pack_weight(w, wdt);
  Tensor x({n, n}, wdt == DType::s8 ? DType::s8 : wdt);  // u8 activations: bytes of value 1
  if (wdt == DType::s8) std::fill_n(static_cast<uint8_t*>(x.raw()), n * n, uint8_t(1));
  Tensor y({n, n}, DType::f32);
  auto run = [&] {
    kernels::detail::onednn_matmul_packed(x.raw(), n, *packed, y.data<float>(), 1.f, false);
  };
  const double t = best(kernels::time_repeats(run, 1, repeats));
  return 2.0 * double(n) * double(n) * double(n) / t * 1e-9;
}

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float[], AlignedFree>;
Buffer alloc_floats(int64_t n) {
  return Buffer(static_cast<float*>(std::aligned_alloc(64, size_t(n) * 4 + 64)));
}

// The read stream's inner loop: kReadStreams equal segments of p, each `seg` floats, read in
// lockstep 16 floats at a time, one accumulator per segment (registers, not memory: the segment loop
// is unrolled). Several sequential streams at once is how the best decode kernels read (a GEMV
// reads several weight panels together); one stream alone leaves part of the memory system idle
// and read 5-30 % below this on the Sapphire Rapids VM, so decode kernels beat their "limit"
// (MBU 1.01). A leaf function (no OpenMP inside) so the AVX-512 clone vectorises it.
constexpr int kReadStreams = 8;
TORI_SIMD_CLONES float read_streams(const float* p, int64_t seg) {
  float acc[kReadStreams][16] = {};
  for (int64_t i = 0; i + 16 <= seg; i += 16)
#pragma GCC unroll 8
    for (int s = 0; s < kReadStreams; ++s)
#pragma omp simd
      for (int j = 0; j < 16; ++j) acc[s][j] += p[s * seg + i + j];
  float total = 0;
  for (int s = 0; s < kReadStreams; ++s)
    for (int j = 0; j < 16; ++j) total += acc[s][j];
  return total;
}

}  // namespace

int64_t auto_stream_mib() {
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  const int64_t mib = l3 > 0 ? int64_t(l3) >> 20 : 0;
  return std::max<int64_t>(256, 2 * mib);
}

double load_average_1m() {
  double l = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = -1;
    std::fclose(f);
  }
  return l;
}

double MachineLimits::peak_gflops(std::string_view dtype) const {
  if (dtype == "bf16") return bf16_gflops;
  if (dtype == "int8") return int8_gops;
  return f32_gflops;
}

nlohmann::json MachineLimits::to_json() const {
  return {{"bench", "machine_limits"}, {"threads", threads},       {"cpu_features", cpu_features},
          {"peak_gflops_f32", f32_gflops}, {"peak_gflops_bf16", bf16_gflops},
          {"peak_gops_int8", int8_gops},   {"triad_gbps", triad_gbps}, {"read_gbps", read_gbps},
          {"peak_gbps", peak_gbps()}, {"stream_mib", stream_mib}};
}

MachineLimits measure_machine_limits(const MachineLimitsOptions& opt) {
  MachineLimits m;
  m.threads = omp_get_max_threads();
  m.cpu_features = kernels::cpu_features_str();
  m.f32_gflops = gemm_peak(opt.gemm_size, DType::f32, opt.repeats);
  m.bf16_gflops = gemm_peak(opt.gemm_size, DType::bf16, opt.repeats);
  m.int8_gops = gemm_peak(opt.gemm_size, DType::s8, opt.repeats);

  // Stream: first touch in parallel with the same static schedule as the timed loops, so each
  // thread's pages sit where it reads them.
  m.stream_mib = opt.stream_mib > 0 ? opt.stream_mib : auto_stream_mib();
  const int64_t n = m.stream_mib * (int64_t(1) << 20) / 4;
  Buffer a = alloc_floats(n), b = alloc_floats(n), c = alloc_floats(n);
  float* A = a.get();
  float* B = b.get();
  float* C = c.get();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    A[i] = 0.f;
    B[i] = 1.f;
    C[i] = 2.f;
  }
  const float s = 0.5f;
  auto triad = [&] {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) A[i] = B[i] + s * C[i];
  };
  volatile float sink = 0;
  // Each thread reads its static share of B (where its first touch put it) as kReadStreams
  // interleaved streams; only the floats read are counted.
  int64_t floats_read = 0;
  auto read = [&] {
    float total = 0;
    int64_t count = 0;
#pragma omp parallel reduction(+ : total, count)
    {
      const int64_t seg = n / omp_get_num_threads() / kReadStreams / 16 * 16;
      total += read_streams(B + omp_get_thread_num() * seg * kReadStreams, seg);
      count += seg * kReadStreams;
    }
    sink = total;
    floats_read = count;
  };
  m.triad_gbps = 3.0 * 4.0 * double(n) / best(kernels::time_repeats(triad, 1, opt.repeats)) * 1e-9;
  const double read_s = best(kernels::time_repeats(read, 1, opt.repeats));
  m.read_gbps = 4.0 * double(floats_read) / read_s * 1e-9;
  (void)sink;
  return m;
}

}  // namespace tori::planning
