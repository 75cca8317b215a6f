#pragma once
// The process's heap policy (glibc malloc), in two regimes:
//  - steps (use_step_heap, set once by main): freed memory is kept for reuse, nothing is mapped
//    or trimmed. A step allocates and frees the same large tensors (gathered weights,
//    activations) every time; mapping and unmapping each one would make every step pay page
//    faults and page clearing on all of them.
//  - loading (LoadingHeap, a scope around a model's load): blocks of kMapFrom bytes or more are
//    mapped, so a transient copy (a layer's f32 shard before it is packed to int8 or bf16, a
//    whole embedding before its vocabulary block is cut) goes back to the system when freed
//    instead of leaving a hole in the heap that later, smaller tensors fragment. Without it the
//    heap of a 22-layer int8 model grew by twice the packed weights (docs/kernels.md).
// Blocks mapped while loading stay mapped for their lifetime; allocations after the scope follow
// the step regime again.
#include <cstddef>

namespace tori::kernels {

inline constexpr std::size_t kMapFrom = std::size_t(1) << 20;  // 1 MiB

void use_step_heap();

class LoadingHeap {
 public:
  LoadingHeap();
  ~LoadingHeap();
  LoadingHeap(const LoadingHeap&) = delete;
  LoadingHeap& operator=(const LoadingHeap&) = delete;
};

}  // namespace tori::kernels
