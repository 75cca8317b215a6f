#pragma once
// The reduction the ring algorithms apply to received partial sums: dst = own + received, in f32
// (bf16 reductions are widened to f32 before they start and rounded once at the end).
#include <cstdint>

namespace tori::collectives {

// dst[i] = own[i] + received[i] for i < n. dst may be own (in place); received must not overlap.
void add_f32(float* dst, const float* own, const float* received, int64_t n);

}  // namespace tori::collectives
