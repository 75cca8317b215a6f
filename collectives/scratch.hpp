#pragma once
// Scratch: grow-only temporary buffers a Collectives object reuses from call to call (packing,
// bf16 widening, partial sums, staging), so steady-state collectives do not allocate or
// page-fault fresh memory. Jobs of one Collectives run one at a time (progress_engine.hpp), so
// one set of slots is enough; each slot is used by one purpose within a job.
#include <array>
#include <cstddef>
#include <memory>

namespace tori::collectives {

class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch();  // un-books its buffers (kernels/allocation_counter.hpp)
  enum Slot : int {
    pack,     // input rearranged chunk-major
    unpack,   // output before rearranging back / bf16 sums before rounding
    wide,     // bf16 input widened to f32
    work,     // reduce-scatter partial sums; all_to_all stage ping-pong
    stage_a,  // all_to_all stage input, transposed
    stage_b,  // all_to_all stage output, transposed
    staging,  // all_to_all bundles in flight
    window,   // reduce-scatter receive windows
    kSlots
  };
  // At least `bytes` of uninitialised, 64-byte-aligned memory, valid until the next get(slot).
  std::byte* get(Slot slot, size_t bytes);
  template <typename T> T* get_as(Slot slot, size_t count) {
    return reinterpret_cast<T*>(get(slot, count * sizeof(T)));
  }

 private:
  struct Free {
    void operator()(std::byte* p) const;
  };
  std::array<std::unique_ptr<std::byte, Free>, kSlots> buf_;
  std::array<size_t, kSlots> size_{};
};

}  // namespace tori::collectives
