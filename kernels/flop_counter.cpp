#include "kernels/flop_counter.hpp"

#include <atomic>

namespace tori::kernels {

namespace {
std::atomic<uint64_t> g_matmul{0}, g_attention{0};
}  // namespace

FlopCount flop_count() {
  return {g_matmul.load(std::memory_order_relaxed), g_attention.load(std::memory_order_relaxed)};
}

void reset_flop_count() {
  g_matmul.store(0, std::memory_order_relaxed);
  g_attention.store(0, std::memory_order_relaxed);
}

void count_matmul_flops(uint64_t flops) { g_matmul.fetch_add(flops, std::memory_order_relaxed); }
void count_attention_flops(uint64_t flops) { g_attention.fetch_add(flops, std::memory_order_relaxed); }

}  // namespace tori::kernels
