#include "bench/kernels_bench.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <numeric>

#include "kernels/activations.hpp"
#include "kernels/attention.hpp"
#include "kernels/cpu_features.hpp"
#include "kernels/gemm_s8_f32.hpp"
#include "kernels/matmul.hpp"
#include "kernels/multigrain_attention.hpp"
#include "kernels/norms.hpp"
#include "kernels/record.hpp"
#include "kernels/rope.hpp"
#include "kernels/softmax.hpp"
#include "kernels/tsvd.hpp"
#include "planning/machine_limits.hpp"

namespace tori::bench {

namespace {

using namespace tori::kernels;

bool wanted(const std::vector<std::string>& list, const std::string& v) {
  return list.empty() || std::find(list.begin(), list.end(), v) != list.end();
}

// Deterministic values in [-1, 1), filled in parallel (weights of hundreds of MiB).
Tensor bench_tensor(Shape s, uint64_t seed) {
  Tensor t = Tensor::empty(std::move(s), DType::f32);
  float* p = t.data<float>();
  const int64_t n = t.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = (uint64_t(i) + seed * 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
    z ^= z >> 31;
    p[i] = float(int64_t(z % 2001) - 1000) * 1e-3f;
  }
  return t;
}

// How many copies of a weight of `bytes` a matmul figure rotates through: enough to exceed the
// array the read-bandwidth limit streams (stream_mib, far beyond L3), so every call reads its
// weight from memory as a model's step does (each layer's weights once), and a figure can be held
// against that limit. One copy of a weight already that large. Without this the llama-1b FFN shapes
// (23-46 MB) stayed in this VM's cache and "streamed" at 1.7x the read limit.
int64_t copies_beyond_cache(double bytes, const planning::MachineLimits& lim) {
  const double stream = double(lim.stream_mib) * 1024 * 1024;
  return std::max<int64_t>(1, int64_t(std::ceil(stream / std::max(bytes, 1.0))));
}

// Copies of one weight, pack() making each, as many as copies_beyond_cache asks for the bytes a
// call reads from one (bytes(copy)).
template <class W, class Pack, class Bytes>
std::vector<W> packed_beyond_cache(const Pack& pack, const Bytes& bytes, const planning::MachineLimits& lim) {
  std::vector<W> out;
  out.push_back(pack());
  const int64_t n = copies_beyond_cache(bytes(out.front()), lim);
  for (int64_t c = 1; c < n; ++c) out.push_back(pack());
  return out;
}

double dense_bytes(const PackedWeight& w) { return double(w.weight_bytes()); }

// Times fn(copy) for repeats calls, the copy advancing each call: one warm-up pass over all copies,
// then the timed calls continue the rotation (each finds its weight evicted by the others).
std::vector<double> time_rotating(const std::function<void(int64_t)>& fn, int64_t copies, int repeats) {
  int64_t next = 0;
  return kernels::time_repeats([&] { fn(next++ % copies); }, int(copies), repeats);
}

class Reporter {
 public:
  Reporter(const planning::MachineLimits& lim, bool json) : lim_(lim), json_(json) {}
  const planning::MachineLimits& limits() const { return lim_; }

  // One record: time t for `flops` of arithmetic in `peak_dtype` and `bytes` of memory traffic.
  void kernel(nlohmann::json rec, double t, double flops, double bytes, const std::string& peak_dtype) {
    const double peak_f = lim_.peak_gflops(peak_dtype), peak_b = lim_.peak_gbps();
    const double t_compute = flops * 1e-9 / peak_f, t_memory = bytes * 1e-9 / peak_b;
    const bool compute = t_compute >= t_memory;
    rec["bench"] = "kernel";
    rec["median_s"] = t;
    rec["gflops"] = flops / t * 1e-9;
    rec["gbps"] = bytes / t * 1e-9;
    rec["peak_gflops"] = peak_f;
    rec["peak_gbps"] = peak_b;
    rec["peak_dtype"] = peak_dtype;
    rec["bound"] = compute ? "compute" : "memory";
    rec["frac_peak"] = std::max(t_compute, t_memory) / t;
    rec["threads"] = lim_.threads;
    if (json_) {
      kernels::emit(rec);
      return;
    }
    if (!header_) {
      std::printf("%-10s %-9s %-5s %-26s %6s %6s %6s %10s %9s %8s %-7s %6s\n", "kernel", "backend",
                  "dtype", "path", "m", "n", "k", "median_ms", "GFLOP/s", "GB/s", "bound", "frac");
      header_ = true;
    }
    std::printf("%-10s %-9s %-5s %-26s %6lld %6lld %6lld %10.3f %9.1f %8.2f %-7s %6.2f",
                rec["kernel"].get<std::string>().c_str(), rec["backend"].get<std::string>().c_str(),
                rec["dtype"].get<std::string>().c_str(), rec.value("path", "").c_str(),
                (long long)rec.value("m", 0), (long long)rec.value("n", 0),
                (long long)rec.value("k", 0), t * 1e3, flops / t * 1e-9, bytes / t * 1e-9,
                compute ? "compute" : "memory", std::max(t_compute, t_memory) / t);
    if (rec.contains("speedup"))  // tsvd: the ratio and the speedup over dense of the same shape
      std::printf("  ratio %g: %.2fx dense", rec["ratio"].get<double>(), rec["speedup"].get<double>());
    if (rec.contains("speedup_vs_dense_causal"))  // multigrain: against dense and the single grains
      std::printf("  window %lld: %.2fx dense causal, %.2fx dense masked, %.2fx best single grain (ideal %.0fx), load %.1f",
                  (long long)rec["window"].get<int64_t>(), rec["speedup_vs_dense_causal"].get<double>(), rec["speedup_vs_dense_masked"].get<double>(),
                  rec["speedup_vs_best_single_grain"].get<double>(), rec["ideal_speedup"].get<double>(),
                  rec["loadavg_1m"].get<double>());
    std::printf("\n");
    std::fflush(stdout);
  }

 private:
  const planning::MachineLimits& lim_;
  bool json_;
  bool header_ = false;
};

std::string matmul_path(const PackedWeight& w, int64_t M) {
  switch (w.format) {
    case WeightFormat::f32:
      if (w.backend == Backend::onednn)
        return matmul_uses_panel_gemv(w, M) ? "panel_gemv_f32_avx512" : "onednn_packed_f32";
      return M == 1 ? "openblas_sgemv" : "openblas_sgemm";
    case WeightFormat::bf16:
      return matmul_uses_panel_gemv(w, M) ? "panel_gemv_bf16_avx512"
                                                                                : "onednn_packed_bf16";
    case WeightFormat::int8:
      if (M <= kInt8RegisterKernelMaxM)
        return cpu_has_avx512() ? "gemm_s8_f32_avx512" : "gemm_s8_f32_ref";
      return w.backend == Backend::onednn ? "s8_dequant_bf16_onednn" : "s8_dequant_f32_sgemm";
    case WeightFormat::int4:
    case WeightFormat::int4_min: return cpu_has_avx512_vnni() ? "gemm_s4_f32_vnni" : "gemm_s4_f32_ref";
  }
  return "?";
}

// A TSVD factor's GEMMs (M above the small-batch kernel's): packed as a dense weight would be,
// except narrow f32/bf16 factors oneDNN does not pack in column panels, which stay row-major and
// are multiplied in place (kernels/tsvd.cpp, pack_factor).
std::string tsvd_gemm_path(const PackedWeight& w, int64_t M) {
  if (w.backend == Backend::onednn && w.plain.defined())
    return w.format == WeightFormat::f32 ? "onednn_plain_f32" : "onednn_plain_bf16";
  return matmul_path(w, M);
}

// The dtype whose GEMM peak bounds a matmul path.
std::string compute_dtype(const PackedWeight& w, int64_t M) {
  if (w.format == WeightFormat::bf16) return "bf16";
  if (is_int4(w.format)) return "int8";  // u8 x s8 dot products (vpdpbusd), as the int8 GEMM peak
  if (w.format == WeightFormat::int8 && M > kInt8RegisterKernelMaxM && w.backend == Backend::onednn)
    return "bf16";
  return "f32";
}

// Calls fn(backend name, backend, format name, format) for every backend x weight format the options
// want and the backend offers (OpenBLAS has no bf16).
void for_each_backend_format(const KernelsBenchOptions& opt,
                             const std::function<void(const char*, Backend, const char*, WeightFormat)>& fn) {
  for (const char* be_name : {"onednn", "openblas"}) {
    if (!wanted(opt.backends, be_name)) continue;
    const Backend be = parse_matmul_backend(be_name);
    for (const char* fmt_name : {"f32", "bf16", "int8", "int4", "int4-min"}) {
      if (!wanted(opt.dtypes, fmt_name)) continue;
      const WeightFormat fmt = parse_weight_format(fmt_name);
      if (be == Backend::openblas && fmt == WeightFormat::bf16) continue;  // not offered
      fn(be_name, be, fmt_name, fmt);
    }
  }
}

// "KxN" -> K, N (--shapes); tori::InputError naming the flag otherwise.
void parse_shape(const std::string& t, int64_t& k, int64_t& n) {
  const size_t x = t.find('x');
  try {
    size_t used = 0;
    if (x != std::string::npos) {
      k = std::stoll(t.substr(0, x), &used);
      if (used == x) {
        n = std::stoll(t.substr(x + 1), &used);
        if (used == t.size() - x - 1 && k > 0 && n > 0) return;
      }
    }
  } catch (const std::exception&) {
  }
  throw InputError("--shapes: '" + t + "' is not KxN with positive K and N (e.g. 2048x5632)");
}

void bench_matmul(const KernelsBenchOptions& opt, Reporter& rep) {
  struct KN {
    int64_t k, n;
    std::vector<int64_t> ms;
  };
  std::vector<int64_t> all_m = opt.ms.empty() ? std::vector<int64_t>{1, 8, 64, 512, 2048} : opt.ms;
  std::vector<KN> shapes;
  if (opt.quick) {
    shapes = {{8192, 8192, opt.ms.empty() ? std::vector<int64_t>{1, 8} : opt.ms},
              {4096, 4096, opt.ms.empty() ? std::vector<int64_t>{512} : opt.ms}};
  } else {
    // Decode-like M (1, 8) on weights far larger than L3; prefill-like M on all sizes.
    shapes = {{1024, 1024, all_m}, {4096, 4096, all_m}, {8192, 8192, all_m}};
    // Decode-like on weights of 256 MiB (int8) to 1 GiB (f32): far beyond any L3.
    std::vector<int64_t> small_m;
    for (int64_t m : all_m)
      if (m <= kS8SmallBatchMax) small_m.push_back(m);
    if (!small_m.empty()) shapes.push_back({16384, 16384, small_m});
    // The llama-1b shape's FFN matrices (d_model 2048, d_ff 5632), decode to prefill.
    const std::vector<int64_t> llama_m = opt.ms.empty() ? std::vector<int64_t>{1, 8, 128, 512} : opt.ms;
    shapes.push_back({2048, 5632, llama_m});
    shapes.push_back({5632, 2048, llama_m});
  }
  if (!opt.shapes.empty()) {
    shapes.clear();
    for (const std::string& t : opt.shapes) shapes.push_back({0, 0, all_m}), parse_shape(t, shapes.back().k, shapes.back().n);
  }
  for (const KN& s : shapes) {
    Tensor w = bench_tensor({s.k, s.n}, 7);
    for_each_backend_format(opt, [&](const char* be_name, Backend be, const char* fmt_name, WeightFormat fmt) {
        const std::vector<PackedWeight> pws = packed_beyond_cache<PackedWeight>(
            [&] { return pack_weight(w, fmt, be); }, dense_bytes, rep.limits());
        const PackedWeight& pw = pws.front();
        const int64_t copies = int64_t(pws.size());
        for (int64_t M : s.ms) {
          Tensor x = bench_tensor({M, s.k}, 11);
          Tensor y({M, s.n}, DType::f32);
          const std::vector<double> ts =
              time_rotating([&](int64_t c) { matmul(x, pws[size_t(c)], y); }, copies, opt.repeats);
          const double t = kernels::median(ts);
          const KernelCost c = matmul_cost(M, pw);
          nlohmann::json rec = {{"kernel", "matmul"}, {"backend", be_name}, {"dtype", fmt_name},
                                {"path", matmul_path(pw, M)}, {"m", M}, {"n", s.n}, {"k", s.k},
                                {"weight_bytes", c.weight_bytes}, {"weight_copies", copies},
                                {"min_s", *std::min_element(ts.begin(), ts.end())}};
          if (fmt == WeightFormat::int8 || is_int4(fmt)) {
            rec["quant_rel_rms"] = pw.quant_error.rel_rms;
            rec["quant_max_abs"] = pw.quant_error.max_abs;
          }
          rep.kernel(rec, t, c.flops, c.bytes, compute_dtype(pw, M));
        }
    });
  }
}

// The largest of 256, 192, 128, 64 dividing both K and N (tile boundaries on every shard boundary
// of the real models' shapes: SmolLM2 576 x 1536 -> 192, llama-1b 2048 x 5632 -> 256).
int64_t bench_tile(int64_t K, int64_t N) {
  for (int64_t t : {256, 192, 128, 64})
    if (K % t == 0 && N % t == 0) return t;
  return std::gcd(K, N);
}

// TSVD against dense on the real models' projection shapes, each ratio right after the dense
// figure of the same shape, M, backend and dtype (one run, same load): speedup = dense / TSVD.
void bench_tsvd(const KernelsBenchOptions& opt, Reporter& rep) {
  struct KN {
    int64_t k, n;
  };
  const std::vector<KN> shapes = opt.quick ? std::vector<KN>{{576, 1536}, {2048, 5632}}
                                           : std::vector<KN>{{576, 1536}, {1536, 576}, {2048, 5632}, {5632, 2048}};
  const std::vector<int64_t> ms = !opt.ms.empty() ? opt.ms : opt.quick ? std::vector<int64_t>{1, 512}
                                                                      : std::vector<int64_t>{1, 16, 128, 512};
  const std::vector<double> ratios = !opt.ratios.empty() ? opt.ratios : std::vector<double>{2, 4, 8};
  for (const KN& s : shapes) {
    const Tensor w = bench_tensor({s.k, s.n}, 7);
    const int64_t t = opt.tile > 0 ? opt.tile : bench_tile(s.k, s.n);
    const TileShape tile{t, t};
    std::vector<std::pair<double, TsvdFactors>> factors;
    for (double r : ratios) factors.emplace_back(r, tsvd_decompose(w, tile, {rank_for_ratio(tile, r)}));
    for_each_backend_format(opt, [&](const char* be_name, Backend be, const char* fmt_name, WeightFormat fmt) {
        if (is_int4(fmt)) return;  // TSVD factors are not stored in 4 bits (docs/tsvd.md)
        // Dense and every ratio rotate through copies beyond the cache (copies_beyond_cache), so
        // both are read from memory as in a model's step.
        const std::vector<PackedWeight> dense = packed_beyond_cache<PackedWeight>(
            [&] { return pack_weight(w, fmt, be); }, dense_bytes, rep.limits());
        const int64_t dense_copies = int64_t(dense.size());
        std::vector<std::pair<double, std::vector<TsvdWeight>>> packed;
        for (const auto& [r, f] : factors)
          packed.emplace_back(r, packed_beyond_cache<TsvdWeight>(
                                     [&] { return pack_tsvd(f, fmt, be); },
                                     [](const TsvdWeight& t) { return tsvd_matmul_cost(1, t).weight_bytes; }, rep.limits()));
        for (int64_t M : ms) {
          Tensor x = bench_tensor({M, s.k}, 11);
          Tensor y({M, s.n}, DType::f32);
          const double t_dense = kernels::median(time_rotating(
              [&](int64_t c) { matmul(x, dense[size_t(c)], y); }, dense_copies, opt.repeats));
          for (const auto& [r, copies] : packed) {
            const TsvdWeight& pw = copies.front();
            const std::vector<double> ts = time_rotating(
                [&](int64_t c) { tsvd_matmul(x, copies[size_t(c)], y); }, int64_t(copies.size()), opt.repeats);
            const double tm = kernels::median(ts);
            const KernelCost c = tsvd_matmul_cost(M, pw);
            nlohmann::json rec = {{"kernel", "tsvd"}, {"backend", be_name}, {"dtype", fmt_name},
                                  {"path", "r" + std::to_string(pw.ranks[0]) + "/" +
                                               (tsvd_fused_applies(M, pw) ? std::string("tsvd_fused_avx512")
                                                                          : tsvd_gemm_path(pw.u_rows[0], M))},
                                  {"m", M}, {"n", s.n}, {"k", s.k}, {"ratio", r}, {"tile", t},
                                  {"rank", pw.ranks[0]}, {"weight_bytes", c.weight_bytes},
                                  {"dense_weight_bytes", dense.front().weight_bytes()}, {"dense_median_s", t_dense},
                                  {"weight_copies", int64_t(copies.size())}, {"dense_weight_copies", dense_copies},
                                  {"speedup", t_dense / tm},
                                  {"min_s", *std::min_element(ts.begin(), ts.end())}};
            rep.kernel(rec, tm, c.flops, c.bytes, compute_dtype(pw.u_rows[0], M));
          }
        }
    });
  }
}

void bench_attention(const KernelsBenchOptions& opt, Reporter& rep) {
  struct Cfg {
    const char* name;
    int64_t B, H, K, D, T, L;  // L = 1: decode; L > 1: prefill from T = 0
  };
  std::vector<Cfg> cfgs;
  if (opt.quick)
    cfgs = {{"decode_mha", 1, 32, 32, 128, 4096, 1}, {"decode_mqa", 16, 32, 1, 128, 4096, 1},
            {"prefill_gqa", 1, 32, 8, 128, 0, 512}};
  else
    cfgs = {{"decode_mha", 1, 32, 32, 128, 8192, 1},  {"decode_gqa", 4, 32, 8, 128, 8192, 1},
            {"decode_mqa", 16, 32, 1, 128, 8192, 1},  {"decode_mqa_h8", 64, 8, 1, 128, 4096, 1},
            {"prefill_gqa", 1, 32, 8, 128, 0, 2048}, {"prefill_mha", 4, 16, 16, 64, 512, 512},
            {"prefill_llama1b", 1, 32, 4, 64, 0, 512}};
  for (const Cfg& c : cfgs)
    for (const char* dt_name : {"f32", "bf16"}) {
      if (!wanted(opt.dtypes, dt_name)) continue;
      KvCache cache(c.B, c.K, c.T + c.L, c.D, parse_dtype(dt_name));
      const int64_t chunk = 1024, row = c.K * c.D;
      for (int64_t b = 0; b < c.B; ++b)
        for (int64_t t0 = 0; t0 < c.T + c.L; t0 += chunk) {
          const int64_t n = std::min(chunk, c.T + c.L - t0);
          Tensor kv = bench_tensor({n, row}, uint64_t(b * 1000 + t0));
          cache.append(b, kv, kv);
        }
      Tensor q = bench_tensor({c.B, c.L, c.H, c.D}, 5);
      std::vector<int64_t> n_new(size_t(c.B), c.L);
      Tensor out;
      const double t = kernels::median(kernels::time_repeats([&] { attention(q, cache, n_new, out); }, 1, opt.repeats));
      const KernelCost cost = attention_cost(q, cache, n_new);
      nlohmann::json rec = {{"kernel", "attention"}, {"backend", "tori"}, {"dtype", dt_name},
                            {"path", c.name}, {"m", c.B * c.L}, {"n", c.T + c.L}, {"k", c.D},
                            {"b", c.B}, {"l", c.L}, {"t", c.T + c.L}, {"h", c.H},
                            {"kv_heads", c.K}, {"d", c.D}, {"kv_bytes", cost.weight_bytes}};
      rep.kernel(rec, t, cost.flops, cost.bytes, "f32");
      // Prefill also on bf16 GEMM tiles (what bf16 and int8 models run), against the bf16 peak.
      if (c.L > 1 && kernels::attention_bf16_available()) {
        const double tb =
            kernels::median(kernels::time_repeats([&] { attention_bf16(q, cache, n_new, out); }, 1, opt.repeats));
        rec["backend"] = "onednn";
        rec["path"] = std::string(c.name) + "_bf16tiles";
        rep.kernel(rec, tb, cost.flops, cost.bytes, "bf16");
      }
    }
}

// Multigrain attention alone (prefill from T = 0, window w + 4 global tokens for each w of --windows,
// default 512; multiquery H = 4,
// K = 1 as Gemma 3 270M) against, in the same run and at the same load: the project's dense
// attention kernel (kernels::attention: full causal, it has no mask), dense attention under the same
// mask (every causal tile a masked GEMM tile, Grain::dense), and the two single-grain variants
// (every touched key block a padded GEMM tile; everything by the fine block kernel). Each record's
// FLOPs are the pattern's useful ones (4·H·D per allowed pair; dense causal: its own), so
// frac_peak is useful work against the f32 GEMM peak measured at the start.
void bench_multigrain(const KernelsBenchOptions& opt, Reporter& rep) {
  if (!wanted(opt.dtypes, "f32")) return;
  const std::vector<int64_t> lengths =
      !opt.lengths.empty() ? opt.lengths : (opt.quick ? std::vector<int64_t>{4096} : std::vector<int64_t>{4096, 16384, 32768});
  const std::vector<int64_t> windows = opt.windows.empty() ? std::vector<int64_t>{512} : opt.windows;
  const int64_t H = 4, K = 1;
  for (int64_t window : windows) {
    for (int64_t D : {int64_t(64), int64_t(256)})
      for (int64_t L : lengths) {
        const AttentionPattern pattern = AttentionPattern::sliding_window(window, 4);
        KvCache cache(1, K, L, D, DType::f32);
        for (int64_t t0 = 0; t0 < L; t0 += 1024) {
          const int64_t n = std::min<int64_t>(1024, L - t0);
          Tensor kv = bench_tensor({n, K * D}, uint64_t(t0 + 1));
          cache.append(0, kv, kv);
        }
        Tensor q = bench_tensor({1, L, H, D}, 5), out;
        const KernelCost useful = multigrain_attention_cost(q, cache, {}, pattern);
        const KernelCost causal = attention_cost(q, cache, {});
        // The dense variants at 16k and beyond take seconds per run: no warm-up and at most 3
        // repeats there.
        const bool long_dense = L >= 16384;
        const int dense_repeats = long_dense ? std::min(opt.repeats, 3) : opt.repeats;
        std::map<std::string, double> t;
        auto time = [&](const std::string& name, int repeats, const std::function<void()>& fn) {
          const bool dense = name == "dense_causal" || name == "dense_masked";
          const std::vector<double> ts = kernels::time_repeats(fn, dense && long_dense ? 0 : 1, repeats);
          t[name] = kernels::median(ts);
          return ts;
        };
        struct Variant {
          std::string name;
          Grain grain;
        };
        const Variant variants[] = {{"multigrain", Grain::multi}, {"coarse_only", Grain::coarse},
                                    {"fine_only", Grain::fine}, {"dense_masked", Grain::dense}};
        std::map<std::string, std::vector<double>> all;
        all["dense_causal"] = time("dense_causal", dense_repeats, [&] { attention(q, cache, {}, out); });
        for (const Variant& v : variants)
          all[v.name] = time(v.name, v.grain == Grain::dense ? dense_repeats : opt.repeats,
                             [&] { multigrain_attention(q, cache, {}, pattern, out, v.grain); });
        const double best_single = std::min(t["coarse_only"], t["fine_only"]);
        for (const auto& [name, med] : t) {
          nlohmann::json rec = {{"kernel", "multigrain"}, {"backend", "tori"}, {"dtype", "f32"},
                                {"path", name}, {"m", L}, {"n", L}, {"k", D}, {"l", L}, {"h", H},
                                {"kv_heads", K}, {"d", D}, {"window", window}, {"globals", 4},
                                {"repeats", all[name].size()},
                                {"min_s", *std::min_element(all[name].begin(), all[name].end())},
                                {"max_s", *std::max_element(all[name].begin(), all[name].end())},
                                {"speedup_vs_dense_causal", t["dense_causal"] / med},
                                {"speedup_vs_dense_masked", t["dense_masked"] / med},
                                {"speedup_vs_best_single_grain", best_single / med},
                                {"ideal_speedup", double(L) / (2.0 * double(window))}};
          rec["loadavg_1m"] = planning::load_average_1m();  // the machine is shared: the load next to every figure
          for (const Variant& v : variants)  // pairs each variant computes (masked padding included)
            if (v.name == name) rec["assigned_flops"] = multigrain_assigned_flops(q, cache, {}, pattern, v.grain);
          const bool dense = name == "dense_causal";
          rep.kernel(rec, med, dense ? causal.flops : useful.flops, dense ? causal.bytes : useful.bytes, "f32");
        }
      }
  }
}

void bench_ops(const KernelsBenchOptions& opt, Reporter& rep) {
  if (!wanted(opt.dtypes, "f32")) return;
  const int64_t M = opt.quick ? 1024 : 4096, E = 8192, D = 128;
  Tensor x = bench_tensor({M, E}, 1), x2 = bench_tensor({M, E}, 2), w = bench_tensor({E}, 3);
  Tensor y({M, E}, DType::f32);
  RopeTable table(M, D, 10000.0);
  std::vector<int64_t> pos(static_cast<size_t>(M));
  for (int64_t i = 0; i < M; ++i) pos[size_t(i)] = i;
  const double elt = double(M) * double(E);
  struct Op {
    const char* name;
    double tensors_moved;  // f32 tensors of [M, E] read + written
    double flops_per_elt;
    std::function<void()> fn;
  };
  std::vector<Op> ops = {
      {"rmsnorm", 2, 4, [&] { rmsnorm(x, w, 1e-6f, y); }},
      {"layernorm", 2, 7, [&] { layernorm(x, w, w, 1e-5f, y); }},
      {"swiglu", 3, 20, [&] { swiglu(x, x2, y); }},
      {"gelu", 2, 30, [&] { gelu(x, y); }},
      {"add", 3, 1, [&] { add(x, x2, y); }},
      {"softmax", 2, 20, [&] { softmax(x, y); }},
      {"rope", 2, 3, [&] { rope(y, pos, table); }},
  };
  for (const Op& op : ops) {
    const double t = kernels::median(kernels::time_repeats(op.fn, 1, opt.repeats));
    nlohmann::json rec = {{"kernel", op.name}, {"backend", "tori"}, {"dtype", "f32"},
                          {"path", "simd_clones"}, {"m", M}, {"n", E}, {"k", 0}};
    rep.kernel(rec, t, op.flops_per_elt * elt, op.tensors_moved * 4.0 * elt, "f32");
  }
}

}  // namespace

int run_kernels_bench(const KernelsBenchOptions& opt) {
  for (const auto& k : opt.kernels)
    if (k != "matmul" && k != "tsvd" && k != "attention" && k != "multigrain" && k != "ops")
      throw InputError("--kernels: unknown kernel '" + k + "' (allowed: matmul, tsvd, attention, multigrain, ops)");
  for (int64_t l : opt.lengths)
    if (l < 1) throw InputError("--lengths: " + std::to_string(l) + " tokens (allowed: integers >= 1)");
  for (int64_t w : opt.windows)
    if (w < 1) throw InputError("--windows: " + std::to_string(w) + " tokens (allowed: integers >= 1)");
  for (const auto& d : opt.dtypes)
    if (d != "f32" && d != "bf16" && d != "int8" && d != "int4" && d != "int4-min")
      throw InputError("--dtypes: unknown dtype '" + d + "' (allowed: f32, bf16, int8, int4, int4-min)");
  for (const auto& b : opt.backends)
    if (b != "onednn" && b != "openblas")
      throw InputError("--backends: unknown backend '" + b +
                       "' (allowed: onednn, openblas; the reference backend is too slow to bench)");
  for (double r : opt.ratios)
    if (!(r >= 1)) throw InputError("--ratios: compression ratio " + std::to_string(r) + " (allowed: numbers >= 1)");
  if (opt.repeats < 1) throw InputError("--repeats must be >= 1, got " + std::to_string(opt.repeats));

  planning::MachineLimitsOptions lo;
  lo.repeats = opt.repeats;
  if (opt.quick) {
    lo.gemm_size = 2048;
    lo.stream_mib = 128;
  }
  const planning::MachineLimits lim = planning::measure_machine_limits(lo);
  if (opt.json) {
    kernels::emit(lim.to_json());
  } else {
    std::printf("machine limits (%d threads, %s): f32 %.1f GFLOP/s, bf16 %.1f GFLOP/s, int8 %.1f "
                "GOP/s (oneDNN %lld^3 GEMM); memory triad %.1f GB/s, read %.1f GB/s\n",
                lim.threads, lim.cpu_features.c_str(), lim.f32_gflops, lim.bf16_gflops,
                lim.int8_gops, (long long)lo.gemm_size, lim.triad_gbps, lim.read_gbps);
  }
  Reporter rep(lim, opt.json);
  if (wanted(opt.kernels, "matmul")) bench_matmul(opt, rep);
  if (wanted(opt.kernels, "tsvd")) bench_tsvd(opt, rep);
  if (wanted(opt.kernels, "attention")) bench_attention(opt, rep);
  if (wanted(opt.kernels, "multigrain")) bench_multigrain(opt, rep);
  if (wanted(opt.kernels, "ops")) bench_ops(opt, rep);
  return 0;
}

}  // namespace tori::bench
