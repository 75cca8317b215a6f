#include "kernels/onednn_matmul.hpp"

#include "kernels/cpu_features.hpp"

#include <omp.h>

#include <spdlog/spdlog.h>

#include <bit>
#include <map>
#include <mutex>
#include <tuple>

namespace tori::kernels::detail {

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;

// M used to ask oneDNN for its preferred weight layout at pack time. brgemm's choice (e.g.
// BA16a64b for f32, BA16a64b2a for bf16) is the same for every M we tried (1..2048); primitives
// for other M are created against that exact layout.
constexpr int64_t kPackM = 128;

dt to_dnnl(DType t) {
  switch (t) {
    case DType::f32: return dt::f32;
    case DType::bf16: return dt::bf16;
    case DType::s8: return dt::s8;
  }
  return dt::f32;
}

// (M, K, N, weight dtype, weight row stride (0: packed), alpha bits, accumulate, threads): a
// primitive is made for the OpenMP thread count of its creation and keeps it (`tori calibrate`
// times 1 thread, then all).
// The last two: x's and y's row strides.
using Key = std::tuple<int64_t, int64_t, int64_t, int, int64_t, uint32_t, bool, int, int64_t, int64_t>;

struct Cache {
  std::mutex mu;
  std::map<Key, dnnl::matmul> prims;
};
Cache& cache() {
  static Cache c;
  return c;
}

dnnl::matmul::primitive_desc make_pd(int64_t M, int64_t K, int64_t N, DType wdt,
                                     const dnnl::memory::desc& w_md, float alpha, bool accumulate,
                                     int64_t ldx = 0, int64_t ldy = 0) {
  const dt src_dt = wdt == DType::s8 ? dt::u8 : to_dnnl(wdt);
  dnnl::memory::desc x_md({M, K}, src_dt, dims{ldx > 0 ? ldx : K, 1});
  dnnl::memory::desc y_md({M, N}, dt::f32, dims{ldy > 0 ? ldy : N, 1});
  dnnl::primitive_attr attr;
  if (alpha != 1.f) attr.set_output_scales(0, {alpha});
  if (accumulate) {
    dnnl::post_ops po;
    po.append_sum(1.f);
    attr.set_post_ops(po);
  }
  dnnl::matmul::desc d(x_md, w_md, y_md);
  return dnnl::matmul::primitive_desc(d, attr, onednn_engine());
}

dnnl::matmul get_primitive(int64_t M, int64_t K, int64_t N, DType wdt, int64_t w_ld,
                           const dnnl::memory::desc& w_md, float alpha, bool accumulate, int64_t ldx = 0,
                           int64_t ldy = 0) {
  Cache& c = cache();
  ldx = ldx > 0 ? ldx : K, ldy = ldy > 0 ? ldy : N;
  // Called from inside an OpenMP parallel region (multigrain attention's coarse tiles, one per
  // thread), each thread gets its own primitive: executing one primitive from two threads at once
  // gave wrong results with this oneDNN (2.6) although it is built for concurrent execution.
  const int threads = omp_in_parallel() ? -1 - omp_get_thread_num() : omp_get_max_threads();
  Key key{M, K, N, int(wdt), w_ld, std::bit_cast<uint32_t>(alpha), accumulate, threads, ldx, ldy};
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.prims.find(key);
  if (it != c.prims.end()) return it->second;
  dnnl::matmul::primitive_desc pd;
  try {
    pd = make_pd(M, K, N, wdt, w_md, alpha, accumulate, ldx, ldy);
  } catch (const dnnl::error& e) {
    throw Error("oneDNN matmul [" + std::to_string(M) + ", " + std::to_string(K) + "] x [" +
                std::to_string(K) + ", " + std::to_string(N) + "] " +
                std::string(dtype_name(wdt)) + ": primitive creation failed: " + e.what());
  }
  spdlog::debug("oneDNN matmul M={} K={} N={} {}: {}", M, K, N, dtype_name(wdt), pd.impl_info_str());
  dnnl::matmul prim(pd);
  c.prims.emplace(key, prim);
  return prim;
}

}  // namespace

dnnl::engine& onednn_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& onednn_stream() {
  static dnnl::stream s(onednn_engine());
  return s;
}

std::shared_ptr<OnednnWeight> onednn_pack_weight(const Tensor& w_in, DType wdt) {
  const int64_t K = w_in.size(0), N = w_in.size(1);
  Tensor w = w_in.to(DType::f32);
  dnnl::memory::desc any_md({K, N}, to_dnnl(wdt), tag::any);
  dnnl::matmul::primitive_desc pd = make_pd(kPackM, K, N, wdt, any_md, 1.f, false);
  auto out = std::make_shared<OnednnWeight>();
  out->dtype = wdt;
  out->k = K;
  out->n = N;
  out->mem = dnnl::memory(pd.weights_desc(), onednn_engine());
  dnnl::memory user(dnnl::memory::desc({K, N}, dt::f32, tag::ab), onednn_engine(),
                    const_cast<void*>(w.raw()));
  dnnl::reorder(user, out->mem).execute(onednn_stream(), user, out->mem);
  onednn_stream().wait();
  out->panels = onednn_panel_layout(pd.weights_desc(), &out->kp);
  return out;
}

PanelLayout onednn_panel_layout(const dnnl::memory::desc& md, int64_t* kp) {
  const dnnl_memory_desc_t& d = md.data;
  if (d.ndims != 2 || d.format_kind != dnnl_blocked || d.extra.flags != 0 || d.offset0 != 0) return PanelLayout::none;
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  const int64_t K = d.padded_dims[0], N = d.padded_dims[1];
  if (N % kGemvPanelCols) return PanelLayout::none;
  PanelLayout layout = PanelLayout::none;
  int64_t kblock = 0;
  if (d.data_type == dnnl_f32 && b.inner_nblks == 2 && b.inner_blks[0] == 16 && b.inner_idxs[0] == 0 &&
      b.inner_blks[1] == kGemvPanelCols && b.inner_idxs[1] == 1)
    layout = PanelLayout::f32_16a64b, kblock = 16;
  else if (d.data_type == dnnl_bf16 && b.inner_nblks == 3 && b.inner_blks[0] == 16 && b.inner_idxs[0] == 0 &&
           b.inner_blks[1] == kGemvPanelCols && b.inner_idxs[1] == 1 && b.inner_blks[2] == 2 && b.inner_idxs[2] == 0)
    layout = PanelLayout::bf16_16a64b2a, kblock = 32;
  // Panels outermost and contiguous: a K block follows the previous one within its panel.
  if (layout == PanelLayout::none || K % kblock || b.strides[0] != kblock * kGemvPanelCols ||
      b.strides[1] != K * kGemvPanelCols)
    return PanelLayout::none;
  *kp = K;
  return layout;
}

bool onednn_panel_gemv_applies(const OnednnWeight& w) {
  if (w.ld != 0) return false;
  if (w.panels == PanelLayout::f32_16a64b) return cpu_has_avx512();
  if (w.panels == PanelLayout::bf16_16a64b2a) return cpu_has_avx512_bf16();
  return false;
}

std::shared_ptr<OnednnWeight> onednn_view_weight(const Tensor& w, int64_t c0, int64_t n) {
  if (w.rank() != 2 || (w.dtype() != DType::f32 && w.dtype() != DType::bf16) || c0 < 0 || n <= 0 ||
      c0 + n > w.size(1))
    throw Error("onednn_view_weight: columns [" + std::to_string(c0) + ", " + std::to_string(c0 + n) +
                ") of a f32 or bf16 [K, C] weight, got " + std::string(dtype_name(w.dtype())) + " " +
                shape_str(w.shape()));
  auto out = std::make_shared<OnednnWeight>();
  out->dtype = w.dtype();
  out->k = w.size(0);
  out->n = n;
  out->ld = w.size(1);
  out->keep = w;
  const dnnl::memory::desc md({out->k, n}, to_dnnl(w.dtype()), dims{out->ld, 1});
  out->mem = dnnl::memory(md, onednn_engine(),
                          const_cast<char*>(static_cast<const char*>(w.raw())) + c0 * int64_t(dtype_size(w.dtype())));
  return out;
}

void onednn_matmul_packed(const void* x, int64_t M, const OnednnWeight& w, float* y, float alpha,
                          bool accumulate, int64_t ldx, int64_t ldy) {
  if (M == 1 && onednn_panel_gemv_applies(w)) {
    if (w.panels == PanelLayout::f32_16a64b) {
      panel_gemv_f32_avx512(static_cast<const float*>(x), w.k, w.kp, static_cast<const float*>(w.mem.get_data_handle()),
                            w.n, y, alpha, accumulate);
      return;
    }
    if (w.panels == PanelLayout::bf16_16a64b2a) {
      panel_gemv_bf16_avx512(static_cast<const uint16_t*>(x), w.k, w.kp,
                             static_cast<const uint16_t*>(w.mem.get_data_handle()), w.n, y, alpha, accumulate);
      return;
    }
  }
  ldx = ldx > 0 ? ldx : w.k, ldy = ldy > 0 ? ldy : w.n;
  const dnnl::memory::desc w_md = w.mem.get_desc();
  dnnl::matmul prim = get_primitive(M, w.k, w.n, w.dtype, w.ld, w_md, alpha, accumulate, ldx, ldy);
  auto& eng = onednn_engine();
  const dt src_dt = w.dtype == DType::s8 ? dt::u8 : to_dnnl(w.dtype);
  dnnl::memory xm({{M, w.k}, src_dt, dims{ldx, 1}}, eng, const_cast<void*>(x));
  dnnl::memory ym({{M, w.n}, dt::f32, dims{ldy, 1}}, eng, y);
  prim.execute(onednn_stream(), {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, w.mem}, {DNNL_ARG_DST, ym}});
  onednn_stream().wait();
}

void onednn_matmul_plain(const void* x, int64_t M, int64_t K, const void* w, int64_t N, float* y,
                         DType wdt, bool w_transposed, bool accumulate) {
  // Transposed: w holds N rows of K (row stride K), read as [K, N] with strides (1, K); its key
  // stride -K keeps its primitives apart from the row-major ones.
  dnnl::memory::desc w_md({K, N}, to_dnnl(wdt), w_transposed ? dims{1, K} : dims{N, 1});
  dnnl::matmul prim = get_primitive(M, K, N, wdt, w_transposed ? -K : N, w_md, 1.f, accumulate);
  auto& eng = onednn_engine();
  const dt src_dt = wdt == DType::s8 ? dt::u8 : to_dnnl(wdt);
  dnnl::memory xm({{M, K}, src_dt, tag::ab}, eng, const_cast<void*>(x));
  dnnl::memory wm(w_md, eng, const_cast<void*>(w));
  dnnl::memory ym({{M, N}, dt::f32, tag::ab}, eng, y);
  if (omp_in_parallel()) {  // a stream per calling thread (see get_primitive)
    thread_local dnnl::stream s(eng);
    prim.execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}});
    s.wait();
    return;
  }
  prim.execute(onednn_stream(), {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}});
  onednn_stream().wait();
}

size_t onednn_cached_primitives() {
  std::lock_guard<std::mutex> lock(cache().mu);
  return cache().prims.size();
}

}  // namespace tori::kernels::detail
