#pragma once
// Elementwise ops of the FFN and the residual stream, f32, vectorised (exp/erf from vec_math.hpp),
// parallel over rows. Outputs may alias an input; undefined outputs are allocated.
//   swiglu(gate, up)  out = silu(gate) * up       (SwiGLU = silu(x W_gate) * (x W_in))
//   gelu(x)           out = x/2 (1 + erf(x/sqrt2)) (exact erf, not the tanh approximation)
//   geglu(gate, up)   out = gelu_tanh(gate) * up   (Gemma: tanh-approximated GELU,
//                     x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))))
//   add(a, b)         out = a + b                 (residual add)
//   scale(x, s)       x = x * s, in place         (Gemma's embedding scale sqrt(E))
// *_ref: f64 std::exp / std::erf per element, as models/reference_model.cpp.
#include "kernels/tensor.hpp"

namespace tori::kernels {

void swiglu(const Tensor& gate, const Tensor& up, Tensor& out);
void gelu(const Tensor& x, Tensor& out);
void geglu(const Tensor& gate, const Tensor& up, Tensor& out);
void add(const Tensor& a, const Tensor& b, Tensor& out);
void scale(Tensor& x, float s);

double gelu_tanh_ref(double x);  // f64, as models/reference_model.cpp
void swiglu_ref(const Tensor& gate, const Tensor& up, Tensor& out);
void gelu_ref(const Tensor& x, Tensor& out);
void geglu_ref(const Tensor& gate, const Tensor& up, Tensor& out);
void add_ref(const Tensor& a, const Tensor& b, Tensor& out);

}  // namespace tori::kernels
