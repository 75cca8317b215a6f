#pragma once
// OpenBLAS backend (internal to kernels/; callers use matmul.hpp): f32 sgemm on plain row-major
// operands, alpha and accumulate folded into sgemm's alpha and beta; M = 1 goes to sgemv.
#include <cstdint>

namespace tori::kernels::detail {

// y[M, N] (row stride ldy) = alpha * x[M, K] (row stride ldx) @ w[K, N] (row stride ldw) (+ y).
void openblas_sgemm(const float* x, int64_t ldx, int64_t M, int64_t K, const float* w, int64_t ldw,
                    int64_t N, float* y, int64_t ldy, float alpha, bool accumulate);

// While alive, OpenBLAS runs each call on the calling thread alone (restored after): for GEMMs
// issued from inside an OpenMP work loop (multigrain attention's coarse tiles), where every thread
// already has its own work item.
class OpenblasSerialScope {
 public:
  OpenblasSerialScope();
  ~OpenblasSerialScope();
  OpenblasSerialScope(const OpenblasSerialScope&) = delete;
  OpenblasSerialScope& operator=(const OpenblasSerialScope&) = delete;

 private:
  int saved_;
};

}  // namespace tori::kernels::detail
