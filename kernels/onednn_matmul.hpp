#pragma once
// oneDNN matmul backend (internal to kernels/; callers use matmul.hpp). oneDNN 2.6 API:
// matmul::desc -> matmul::primitive_desc(desc, attr, engine) -> matmul.
//  - Weights are reordered once into the layout the primitive prefers (format_tag::any), at pack
//    time, and later primitives are created against that exact layout (it does not depend on M).
//  - Primitives are created once per (M, K, N, dtype, weight layout, epilogue) and cached.
//  - Epilogue: alpha as a *constant* output scale and `accumulate` as a sum post-op. (Runtime
//    scales would push oneDNN 2.6 off its brgemm kernels onto the slower gemm:jit path.)
#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <memory>

#include "kernels/panel_gemv.hpp"
#include "kernels/tensor.hpp"

namespace tori::kernels::detail {

struct OnednnWeight {
  dnnl::memory mem;  // [K, N] in the packed layout, or (ld > 0) row-major with row stride ld
  DType dtype = DType::f32;
  int64_t k = 0, n = 0;
  int64_t ld = 0;  // 0: packed (owned by mem); > 0: a view into `keep`
  Tensor keep;     // the viewed tensor, kept alive while the view is
  // Packed weights in oneDNN's column-panel layouts (panel_gemv.hpp): M = 1 runs panel_gemv there.
  PanelLayout panels = PanelLayout::none;
  int64_t kp = 0;  // K padded to the layout's K block
};

// The panel layout (and padded K) of a packed [K, N] weight's desc, or none.
PanelLayout onednn_panel_layout(const dnnl::memory::desc& md, int64_t* kp);
// Whether onednn_matmul_packed runs panel_gemv for M = 1 on w (a panel layout, and this CPU has the
// kernel's instructions).
bool onednn_panel_gemv_applies(const OnednnWeight& w);

dnnl::engine& onednn_engine();
dnnl::stream& onednn_stream();

// w: [K, N] f32/bf16 -> packed weights of dtype dt (f32 or bf16; s8 = values saturated to int8,
// used only by the int8 GEMM peak measurement, whose activations are u8).
std::shared_ptr<OnednnWeight> onednn_pack_weight(const Tensor& w, DType dt);

// w: f32 or bf16 [K, C] row-major; a view of its columns [c0, c0 + n) in place (row stride C), no
// copy: for weights used once (the weight-gathered layouts' gathered weights), where a reorder into
// the packed layout costs more than the packed matmul saves (docs/measurements/kernels.md
// "Weight-gathered weights"), and for TSVD factors, which the small-batch kernel reads row-major too.
std::shared_ptr<OnednnWeight> onednn_view_weight(const Tensor& w, int64_t c0, int64_t n);

// y[M, N] (row stride ldy, 0: N) = alpha * x[M, K] (row stride ldx, 0: K) @ W (+ y if
// accumulate). x has W's dtype (f32 or bf16; u8 for s8 weights). M = 1 on weights in a panel
// layout runs panel_gemv (where the CPU has its instructions) instead of oneDNN's kernel.
void onednn_matmul_packed(const void* x, int64_t M, const OnednnWeight& w, float* y, float alpha,
                          bool accumulate, int64_t ldx = 0, int64_t ldy = 0);

// Plain row-major operands of dtype dt (f32, bf16 or s8-with-u8-src for int8): y[M, N] (+)= x[M, K] @ w[K, N],
// or @ w^T when w_transposed (w then holds N rows of K); accumulate adds to y. Used by the int8
// weight-only large-batch path (dequantised panels), the machine-limits benchmark (peak GEMM per
// dtype) and attention's bf16 tiles (Q K^T on key rows, P V); inside an OpenMP parallel region it
// runs on the calling thread.
void onednn_matmul_plain(const void* x, int64_t M, int64_t K, const void* w, int64_t N, float* y,
                         DType dt, bool w_transposed = false, bool accumulate = false);

// Primitives currently cached (tests check that repeated calls do not grow it).
size_t onednn_cached_primitives();

}  // namespace tori::kernels::detail
