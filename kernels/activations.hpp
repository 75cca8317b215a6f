#pragma once
// Elementwise ops of the FFN and the residual stream, f32, vectorised (exp/erf from vec_math.hpp),
// parallel over rows. Outputs may alias an input; undefined outputs are allocated.
//   swiglu(gate, up)  out = silu(gate) * up       (SwiGLU = silu(x W_gate) * (x W_in))
//   gelu(x)           out = x/2 (1 + erf(x/sqrt2)) (exact erf, not the tanh approximation)
//   geglu(gate, up)   out = gelu_tanh(gate) * up   (Gemma: tanh-approximated GELU,
//                     x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))))
//   add(a, b)         out = a + b                 (residual add)
//   scale(x, s)       x = x * s, in place         (Gemma's embedding scale sqrt(E))
// The FFN's activation straight between column blocks of matrices (no copies of the blocks):
//   ffn_activation_columns(kind, y [M, Cy], gate_col, up_col, width, z [M, Cz], out_col):
//     z[m, out_col + j] = act(y[m, gate_col + j], y[m, up_col + j]), j < width, every row m;
//     kind swiglu / geglu as above, gelu: gelu(y[m, up_col + j]) (gate_col unused).
// *_ref: f64 std::exp / std::erf per element, as models/reference_model.cpp.
#include <cstdint>

#include "kernels/tensor.hpp"

namespace tori::kernels {

void swiglu(const Tensor& gate, const Tensor& up, Tensor& out);
void gelu(const Tensor& x, Tensor& out);
void geglu(const Tensor& gate, const Tensor& up, Tensor& out);
void add(const Tensor& a, const Tensor& b, Tensor& out);
enum class FfnActivation { swiglu, geglu, gelu };
void ffn_activation_columns(FfnActivation kind, const Tensor& y, int64_t gate_col, int64_t up_col, int64_t width,
                            Tensor& z, int64_t out_col);
void scale(Tensor& x, float s);

double gelu_tanh_ref(double x);  // f64, as models/reference_model.cpp
void swiglu_ref(const Tensor& gate, const Tensor& up, Tensor& out);
void gelu_ref(const Tensor& x, Tensor& out);
void geglu_ref(const Tensor& gate, const Tensor& up, Tensor& out);
void add_ref(const Tensor& a, const Tensor& b, Tensor& out);

}  // namespace tori::kernels
