#include "kernels/embedding.hpp"

#include <algorithm>
#include <cstring>

namespace tori::kernels {

namespace {
void check_table(const Tensor& embed, const char* op) {
  if (embed.rank() != 2 || embed.dtype() == DType::s8)
    throw Error(std::string(op) + ": table must be [V, E] f32 or bf16, got " +
                std::string(dtype_name(embed.dtype())) + " " + shape_str(embed.shape()));
}
void prepare_out(Tensor& out, int64_t M, int64_t E, const char* op) {
  if (!out.defined()) out = Tensor::empty({M, E}, DType::f32);
  if (out.dtype() != DType::f32 || out.numel() != M * E || out.size(-1) != E)
    throw Error(std::string(op) + ": output must be f32 [" + std::to_string(M) + ", " +
                std::to_string(E) + "], got " + shape_str(out.shape()));
}
}  // namespace

void embedding_gather(const Tensor& embed, std::span<const int32_t> ids, Tensor& out,
                      int64_t vocab_offset, bool sharded) {
  check_table(embed, "embedding_gather");
  const int64_t V = embed.size(0), E = embed.size(1), M = static_cast<int64_t>(ids.size());
  prepare_out(out, M, E, "embedding_gather");
  for (int32_t id : ids) {
    const int64_t local = int64_t(id) - vocab_offset;
    if (!sharded && (local < 0 || local >= V))
      throw Error("embedding_gather: token id " + std::to_string(id) + " outside the vocabulary [" +
                  std::to_string(vocab_offset) + ", " + std::to_string(vocab_offset + V) + ")");
  }
  float* Y = out.data<float>();
#pragma omp parallel for schedule(static) if (M > 1)  // one token (decode): no fork and join
  for (int64_t i = 0; i < M; ++i) {
    const int64_t local = int64_t(ids[size_t(i)]) - vocab_offset;
    float* dst = Y + i * E;
    if (local < 0 || local >= V) {
      std::fill(dst, dst + E, 0.f);
    } else if (embed.dtype() == DType::f32) {
      std::memcpy(dst, embed.data<float>() + local * E, size_t(E) * 4);
    } else {
      const uint16_t* src = static_cast<const uint16_t*>(embed.raw()) + local * E;
      for (int64_t e = 0; e < E; ++e) dst[e] = bf16::to_f32(src[e]);
    }
  }
}

void embedding_gather_ref(const Tensor& embed, std::span<const int32_t> ids, Tensor& out) {
  check_table(embed, "embedding_gather_ref");
  const int64_t V = embed.size(0), E = embed.size(1), M = static_cast<int64_t>(ids.size());
  prepare_out(out, M, E, "embedding_gather_ref");
  for (int64_t i = 0; i < M; ++i) {
    if (ids[size_t(i)] < 0 || ids[size_t(i)] >= V)
      throw Error("embedding_gather_ref: token id " + std::to_string(ids[size_t(i)]) +
                  " outside the vocabulary [0, " + std::to_string(V) + ")");
    for (int64_t e = 0; e < E; ++e) out.data<float>()[i * E + e] = embed.get(ids[size_t(i)] * E + e);
  }
}

Tensor transpose2d(const Tensor& a) {
  if (a.rank() != 2 || a.dtype() == DType::s8)
    throw Error("transpose2d: expected [R, C] f32 or bf16, got " + shape_str(a.shape()));
  const int64_t R = a.size(0), C = a.size(1);
  Tensor t = Tensor::empty({C, R}, a.dtype());
  const size_t es = dtype_size(a.dtype());
  const auto* src = static_cast<const std::byte*>(a.raw());
  auto* dst = static_cast<std::byte*>(t.raw());
  constexpr int64_t kTile = 64;  // 64 x 64 tiles: both sides stay in L1
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t r0 = 0; r0 < R; r0 += kTile)
    for (int64_t c0 = 0; c0 < C; c0 += kTile)
      for (int64_t r = r0; r < std::min(R, r0 + kTile); ++r)
        for (int64_t c = c0; c < std::min(C, c0 + kTile); ++c)
          std::memcpy(dst + size_t(c * R + r) * es, src + size_t(r * C + c) * es, es);
  return t;
}

PackedWeight pack_unembedding(const Tensor& embed, WeightFormat fmt, Backend backend) {
  check_table(embed, "pack_unembedding");
  return pack_weight(transpose2d(embed), fmt, backend);
}

void unembed(const Tensor& h, const PackedWeight& unembedding, Tensor& logits) {
  matmul(h, unembedding, logits);
}

}  // namespace tori::kernels
