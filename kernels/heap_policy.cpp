#include "kernels/heap_policy.hpp"

#include <malloc.h>

#include <atomic>

namespace tori::kernels {

namespace {
std::atomic<int> g_loading{0};  // nested or concurrent loading scopes
constexpr int kDefaultMmapMax = 65536;  // glibc's default M_MMAP_MAX
}  // namespace

void use_step_heap() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);
}

LoadingHeap::LoadingHeap() {
  if (g_loading.fetch_add(1) > 0) return;
  mallopt(M_MMAP_THRESHOLD, int(kMapFrom));  // fixed: glibc's dynamic threshold would climb to 32 MiB
  mallopt(M_MMAP_MAX, kDefaultMmapMax);
}

LoadingHeap::~LoadingHeap() {
  if (g_loading.fetch_sub(1) > 1) return;
  mallopt(M_MMAP_MAX, 0);
}

}  // namespace tori::kernels
