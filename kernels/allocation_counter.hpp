#pragma once
// Bytes of tensor storage this process holds (kernels::Tensor's allocations, rounded to its 64-byte
// alignment, and the collectives' grow-only scratch buffers, collectives/scratch.hpp), now and at
// the peak since the last reset: how the runtime's activation memory is measured against
// runtime/memory_estimate.hpp's prediction (tests/runtime). Counted with relaxed atomics on every
// allocation and free; what oneDNN (packed bf16/int8 weights), MPI and std::vector allocate is not.
#include <cstdint>

namespace tori::kernels {

int64_t tensor_bytes_live();
int64_t tensor_bytes_peak();
// Books `bytes` (negative: freed) held outside a Tensor (collectives' scratch).
void count_tensor_bytes(int64_t bytes);
// Starts a new peak from what is live now.
void reset_tensor_bytes_peak();

}  // namespace tori::kernels
