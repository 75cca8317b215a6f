// The row loops of attention on bf16 tiles (attention_bf16.cpp) in AVX-512 + AVX512-BF16: the
// streaming softmax of one score row into bf16 weights, and rows of f32 rounded to bf16. Compiled
// with -mavx512f/bw/vl/dq/bf16; only reached after attention_bf16_available() returned true. Raw
// pointers only (no library templates instantiated with these flags).
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through their masks, which its
// -Wmaybe-uninitialized reports once inlined (GCC bug 105593, fixed in GCC 13): silenced here only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdint>
#include <limits>

#include "kernels/attention_bf16_rows.hpp"

namespace tori::kernels::detail {

namespace {

constexpr float kNegInfRow = -std::numeric_limits<float>::infinity();

// e^x, x <= 0 (scores minus their running max), as vec_math.hpp's exp_f32: n = round(x / ln 2),
// r = x − n·ln 2 (ln 2 in two parts), degree-6 polynomial, 2^n by vscalefps; below −87.3 (and −inf,
// a masked score) the result is 0.
inline __m512 exp_nonpos(__m512 x) {
  const __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_LT_OQ);
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  return _mm512_maskz_mov_ps(~tiny, _mm512_scalef_ps(p, n));
}

// bf16 (round to nearest even, as bf16::from_f32 for finite values) of 16 floats, and those
// values widened back to f32.
inline __m256i to_bf16(__m512 x) { return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x)); }
inline __m512 widen(__m256i b) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16)); }

}  // namespace

float softmax_chunk_row_avx512(const float* s, int64_t lim, int64_t w, uint16_t* p, float* m, float* l) {
  const __m256i zero = _mm256_setzero_si256();
  if (lim <= 0) {
    for (int64_t t = 0; t < w; t += 16)
      _mm256_mask_storeu_epi16(p + t, __mmask16(w - t >= 16 ? 0xffff : (1u << (w - t)) - 1), zero);
    return 1.f;
  }
  __m512 mx = _mm512_set1_ps(kNegInfRow);
  for (int64_t t = 0; t < lim; t += 16) {
    const __mmask16 k = __mmask16(lim - t >= 16 ? 0xffff : (1u << (lim - t)) - 1);
    mx = _mm512_mask_max_ps(mx, k, mx, _mm512_maskz_loadu_ps(k, s + t));
  }
  const float m_old = *m;
  const float mx_s = _mm512_reduce_max_ps(mx), m_new = m_old > mx_s ? m_old : mx_s;
  const float corr = m_old == kNegInfRow ? 0.f : _mm_cvtss_f32(_mm512_castps512_ps128(
                                                     exp_nonpos(_mm512_set1_ps(m_old - m_new))));
  const __m512 mv = _mm512_set1_ps(m_new);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t t = 0; t < w; t += 16) {
    const __mmask16 kw = __mmask16(w - t >= 16 ? 0xffff : (1u << (w - t)) - 1);
    const __mmask16 k = t >= lim ? 0 : __mmask16(lim - t >= 16 ? 0xffff : (1u << (lim - t)) - 1);
    const __m512 e = _mm512_maskz_mov_ps(k, exp_nonpos(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + t), mv)));
    const __m256i b = to_bf16(e);
    _mm256_mask_storeu_epi16(p + t, kw, b);
    sum = _mm512_add_ps(sum, widen(b));
  }
  *l = *l * corr + _mm512_reduce_add_ps(sum);
  *m = m_new;
  return corr;
}

void round_rows_bf16_avx512(const float* src, int64_t n, float scale, uint16_t* dst) {
  const __m512 sc = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = __mmask16(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(dst + i, k, to_bf16(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, src + i), sc)));
  }
}

}  // namespace tori::kernels::detail
