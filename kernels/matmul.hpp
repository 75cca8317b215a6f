#pragma once
// matmul: y = scale * (x @ W) (+ y), with W a PackedWeight (packed once at load, never per call).
//   x: [..., K] f32 or bf16 (leading dimensions are rows, M = their product)
//   y: [..., N] f32; allocated when undefined (unless accumulating)
// Paths (see packed_weight.hpp for layouts):
//   f32/bf16 + onednn     cached brgemm primitive on the packed weight; scale = constant output
//                         scale, accumulate = sum post-op (the fused "sum into accumulator" that
//                         sharded output projections use)
//   f32/bf16 + onednn, M = 1  panel_gemv (panel_gemv.hpp) on the same packed weight where oneDNN
//                         packed it in column panels and the CPU has AVX-512 (bf16: AVX512-BF16):
//                         4 panels per thread read in lockstep, ~0.9 of the read bandwidth where
//                         oneDNN's kernel streams 0.65-0.75
//   f32 + openblas        sgemm(alpha = scale, beta = accumulate)
//   int8, M <= 32         gemm_s8_f32: weights dequantised in AVX-512 registers, read once per
//                         16 rows of x (memory-bound at M = 1; ~f32 FMA peak from M = 8)
//   int8, M > 32, onednn  panels of 512 columns dequantised to bf16 (exact integers) in L2/L3,
//                         bf16 GEMM, per-channel scale applied after the matmul
//   int8, M > 32, openblas  panels dequantised to f32 (q * scale), sgemm
//   int4, int4_min        gemm_s4_f32 at every M: group-wise 4-bit weights x s8-quantised
//                         activations by AVX-512 VNNI (gemm_s4_f32.hpp)
//   reference             plain loops with f64 accumulation (tests)
// Thread count: oneDNN and our kernels use OpenMP, OpenBLAS its own pool; runtime::apply_threads
// sets both. Safe for one calling thread at a time (the primitive cache itself is locked).
#include <cstdint>

#include "kernels/packed_weight.hpp"
#include "kernels/tensor.hpp"

namespace tori::kernels {

struct Epilogue {
  float scale = 1.f;        // multiplies x @ W (after the int8 per-channel scale)
  bool accumulate = false;  // y += ... instead of y = ...
};

// Work done, for benchmarks and for the cost model to predict (ARCHITECTURE: "every kernel counts
// FLOPs and bytes").
struct KernelCost {
  double flops = 0;
  double bytes = 0;         // all operands moved once
  double weight_bytes = 0;  // the part that is weights / KV cache (memory-bound roofline)
};

// Columns per dequantised panel on the int8 large-batch path: 512 bf16 columns x K = 1 KiB per k,
// e.g. 4 MiB at K = 4096, which stays in L2/L3 while the GEMM reads it.
constexpr int64_t kInt8DequantCols = 512;
// Largest M for the register-dequantising kernel. Measured (1 thread, K = N = 4096): it holds
// ~95 GFLOP/s at every M, while dequantise + bf16 GEMM gives 87 at M = 32, 120 at 64, 170 at 512.
constexpr int64_t kInt8RegisterKernelMaxM = 32;

void matmul(const Tensor& x, const PackedWeight& w, Tensor& y, Epilogue ep = {});
// The same on row-strided f32 blocks: y[M, w.n] (row stride ldy) = scale · x[M, w.k] (row stride
// ldx) @ w (+ y), e.g. column blocks of larger activations (the weight-gathered layouts multiply
// each gathered block where it lies: runtime/weight_prefetch.hpp). f32 weights on oneDNN only.
void matmul_strided(const float* x, int64_t ldx, int64_t M, const PackedWeight& w, float* y, int64_t ldy,
                    Epilogue ep = {});

// Whether matmul with M rows runs panel_gemv on w (for benchmarks' path names and tests).
bool matmul_uses_panel_gemv(const PackedWeight& w, int64_t M);

// The yardstick: x [..., K] f32/bf16, w plain [K, N] f32/bf16, f64 accumulation, no packing.
void matmul_ref(const Tensor& x, const Tensor& w, Tensor& y, Epilogue ep = {});

KernelCost matmul_cost(int64_t M, const PackedWeight& w);

}  // namespace tori::kernels
