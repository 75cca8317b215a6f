#include "collectives/scratch.hpp"

#include <cstdlib>
#include <string>

#include "kernels/allocation_counter.hpp"
#include "kernels/error.hpp"

namespace tori::collectives {

namespace {
constexpr size_t kAlign = 64;  // as kernels::Tensor
}

void Scratch::Free::operator()(std::byte* p) const { std::free(p); }

Scratch::~Scratch() {
  for (size_t b : size_) kernels::count_tensor_bytes(-int64_t(b));
}

std::byte* Scratch::get(Slot slot, size_t bytes) {
  auto s = static_cast<size_t>(slot);
  if (bytes > size_[s]) {
    size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
    buf_[s].reset();
    kernels::count_tensor_bytes(-int64_t(size_[s]));
    size_[s] = 0;
    void* p = std::aligned_alloc(kAlign, rounded);
    if (!p) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes of collective scratch");
    buf_[s].reset(static_cast<std::byte*>(p));
    size_[s] = rounded;
    kernels::count_tensor_bytes(int64_t(rounded));
  }
  return buf_[s].get();
}

}  // namespace tori::collectives
