#pragma once
// FlopCounter: the floating-point operations this process's kernels performed, by kind — the
// kernels' side of "every kernel counts FLOPs" (docs/architecture.md), which the cost model predicts
// (planning/cost_model.hpp) and tests hold equal (tests/runtime/test_cost_model_mpi.cpp).
//   matmul     2·M·K·N per kernels::matmul call (every backend and weight format, incl. unembed and
//              the blocks of looped collective einsums), M = rows of x as given (padding included)
//   attention  4·H·D per visible (query row, cached position) pair: QK^T and PV, as
//              kernels::attention_cost counts it; rows beyond a sequence's n_new are not counted
// One rank is one process, so the counter is process-wide: relaxed atomic adds (one per kernel
// call, thread-safe, ~ns), read after the step. FLOPs are whole numbers, so counts are exact.
#include <cstdint>

namespace tori::kernels {

struct FlopCount {
  uint64_t matmul = 0;
  uint64_t attention = 0;
  uint64_t total() const { return matmul + attention; }
};

FlopCount flop_count();
void reset_flop_count();

// Called by the kernels.
void count_matmul_flops(uint64_t flops);
void count_attention_flops(uint64_t flops);

}  // namespace tori::kernels
