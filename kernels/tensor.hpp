#pragma once
// Tensor: a dense, row-major, 64-byte-aligned n-d array of one DType. Copies share storage (like a
// torch tensor); clone() makes a deep copy. Shapes are int64 vectors; a rank-0 tensor has one
// element. This is the currency between kernels, collectives and the runtime.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kernels/bf16.hpp"
#include "kernels/dtype.hpp"
#include "kernels/error.hpp"

namespace tori::kernels {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled tensor of the given shape and dtype.
  Tensor(Shape shape, DType dtype);
  // Uninitialised storage (for outputs that are fully overwritten).
  static Tensor empty(Shape shape, DType dtype);
  static Tensor from_f32(std::span<const float> values, Shape shape);
  static Tensor from_f32(std::initializer_list<float> values, Shape shape) {
    return from_f32(std::span<const float>(values.begin(), values.size()), std::move(shape));
  }

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  // Size of dimension d; negative d counts from the end.
  int64_t size(int d) const;
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  bool defined() const { return storage_ != nullptr; }

  void* raw() { return storage_.get() + offset_; }
  const void* raw() const { return storage_.get() + offset_; }
  // Typed access; throws if T does not match dtype().
  template <typename T> T* data();
  template <typename T> const T* data() const;

  // Element i (flat index) converted to f32, whatever the dtype (tests and debugging).
  float get(int64_t i) const;
  void set(int64_t i, float v);

  // Same storage, new shape of equal numel.
  Tensor reshape(Shape shape) const;
  // Rows [start, start+len) of dimension 0, sharing storage.
  Tensor narrow0(int64_t start, int64_t len) const;
  Tensor clone() const;
  // Converted copy (f32 <-> bf16; s8 -> f32 gives the integer values). Same dtype: shares storage.
  Tensor to(DType t) const;
  std::vector<float> to_vector() const;
  void fill(float v);

 private:
  std::shared_ptr<std::byte[]> storage_;
  size_t offset_ = 0;
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::f32;
  void check_dtype(DType t, const char* want) const;
};

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<int8_t> { static constexpr DType value = DType::s8; };

template <typename T> T* Tensor::data() {
  check_dtype(dtype_of<T>::value, "data<T>()");
  return reinterpret_cast<T*>(raw());
}
template <typename T> const T* Tensor::data() const {
  check_dtype(dtype_of<T>::value, "data<T>()");
  return reinterpret_cast<const T*>(raw());
}

}  // namespace tori::kernels
