#pragma once
// The inner step of attention (internal to kernels/): one work item = R query rows that share one
// (sequence, KV head) block of the cache, attended over positions [t0, t1) in blocks of kKvBlock,
// with a streaming softmax. Row r sees positions [lo[r], lim[r]) of them (lo null: from 0); blocks no
// row sees are skipped (multigrain's fine pieces: kernels/multigrain_attention.cpp). Two implementations: AVX-512 intrinsics (attention_block_avx512.cpp,
// compiled with -mavx512*, used when cpu_has_avx512()) and portable C++ (attention.cpp).
#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/vec_math.hpp"

namespace tori::kernels::detail {

inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();  // a softmax max before any key

struct AttendBlockArgs {
  const float* q = nullptr;    // [R, D] query rows, pre-scaled by 1/sqrt(D)
  const int64_t* lim = nullptr;  // [R] exclusive causal end (past + i + 1) of each row
  const int64_t* lo = nullptr;   // [R] first position each row sees (null: 0)
  int64_t R = 0, D = 0;
  const void* k = nullptr;     // this (b, g)'s K^T tiles [T_pad/64, D, 64] (f32 or bf16)
  const void* v = nullptr;     // this (b, g)'s V rows [T_pad, D]
  bool bf16 = false;
  int64_t t0 = 0, t1 = 0;      // positions to cover; t0 a multiple of kKvBlock
  float* m = nullptr;          // [R] running max (start at -inf)
  float* l = nullptr;          // [R] running sum of exp (start at 0)
  float* acc = nullptr;        // [R, D] unnormalised output (start at 0)
  float* scratch = nullptr;    // attend_block_scratch_floats(R, D) floats
};

inline int64_t attend_block_scratch_floats(int64_t R, int64_t D) { return R * 64 + 2 * 64 * D; }

// Whether any row sees a position of the block [tb, tb + kKvBlock).
inline bool block_visible(const AttendBlockArgs& a, int64_t tb) {
  for (int64_t r = 0; r < a.R; ++r) {
    const int64_t s = a.lo ? (a.lo[r] > tb ? a.lo[r] : tb) : tb;
    const int64_t e = a.lim[r] < a.t1 ? a.lim[r] : a.t1;
    if (s < e && s < tb + 64) return true;
  }
  return false;
}

// Merges row r's partial softmaxes from n work items into o[D] by the log-sum-exp rule:
//   M = max_c m_c,  o = Σ_c e^(m_c − M) acc_c / Σ_c e^(m_c − M) l_c.
// part(c) points at item c's partials laid out (m[R], l[R], acc[R, D]); an item with m = −inf saw
// nothing of the row and is skipped; a row no item saw comes out zero.
template <typename Part>
void merge_partials(int64_t n, Part part, int64_t R, int64_t r, int64_t D, float* o) {
  float M = kNegInf;
  for (int64_t c = 0; c < n; ++c) M = std::max(M, part(c)[r]);
  std::fill(o, o + D, 0.f);
  float lsum = 0;
  for (int64_t c = 0; c < n; ++c) {
    const float* pm = part(c);
    if (pm[r] == kNegInf) continue;
    const float w = exp_f32(pm[r] - M);
    lsum += w * pm[R + r];
    const float* a = pm + 2 * R + r * D;
    for (int64_t d = 0; d < D; ++d) o[d] += w * a[d];
  }
  const float inv = lsum > 0 ? 1.f / lsum : 0.f;
  for (int64_t d = 0; d < D; ++d) o[d] *= inv;
}

void attend_block_avx512(const AttendBlockArgs& a);
void attend_block_portable(const AttendBlockArgs& a);

}  // namespace tori::kernels::detail
