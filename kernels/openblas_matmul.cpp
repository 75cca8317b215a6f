#include "kernels/openblas_matmul.hpp"

#include <cblas.h>

namespace tori::kernels::detail {

void openblas_sgemm(const float* x, int64_t ldx, int64_t M, int64_t K, const float* w, int64_t ldw,
                    int64_t N, float* y, int64_t ldy, float alpha, bool accumulate) {
  if (M == 1) {  // decode: sgemv streams W once (sgemm with M = 1 reaches only ~1/3 of bandwidth)
    cblas_sgemv(CblasRowMajor, CblasTrans, blasint(K), blasint(N), alpha, w, blasint(ldw), x, 1,
                accumulate ? 1.f : 0.f, y, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(M), blasint(N), blasint(K), alpha, x,
              blasint(ldx), w, blasint(ldw), accumulate ? 1.f : 0.f, y, blasint(ldy));
}

OpenblasSerialScope::OpenblasSerialScope() : saved_(openblas_get_num_threads()) {
  if (saved_ != 1) openblas_set_num_threads(1);
}
OpenblasSerialScope::~OpenblasSerialScope() {
  if (saved_ != 1) openblas_set_num_threads(saved_);
}

}  // namespace tori::kernels::detail
