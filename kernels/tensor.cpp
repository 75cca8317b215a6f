#include "kernels/tensor.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/allocation_counter.hpp"

namespace tori::kernels {

namespace {
constexpr size_t kAlign = 64;  // cache line; AVX-512 register width

std::atomic<int64_t> g_live{0}, g_peak{0};  // allocation_counter.hpp

void count_allocation(int64_t bytes) {
  const int64_t now = g_live.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

std::shared_ptr<std::byte[]> allocate(size_t bytes, bool zero) {
  size_t rounded = ((bytes + kAlign - 1) / kAlign) * kAlign;
  if (rounded == 0) rounded = kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) throw Error("out of memory allocating a tensor of " + std::to_string(bytes) + " bytes");
  if (zero) std::memset(p, 0, rounded);
  count_allocation(int64_t(rounded));
  return std::shared_ptr<std::byte[]>(static_cast<std::byte*>(p), [rounded](std::byte* q) {
    g_live.fetch_sub(int64_t(rounded), std::memory_order_relaxed);
    std::free(q);
  });
}
}  // namespace

int64_t tensor_bytes_live() { return g_live.load(std::memory_order_relaxed); }
int64_t tensor_bytes_peak() { return g_peak.load(std::memory_order_relaxed); }
void count_tensor_bytes(int64_t bytes) {
  if (bytes >= 0)
    count_allocation(bytes);
  else
    g_live.fetch_add(bytes, std::memory_order_relaxed);
}
void reset_tensor_bytes_peak() { g_peak.store(g_live.load(std::memory_order_relaxed), std::memory_order_relaxed); }

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::bf16: return "bf16";
    case DType::s8: return "int8";
  }
  return "?";
}

DType parse_dtype(std::string_view s, std::string_view what) {
  if (s == "f32" || s == "float32") return DType::f32;
  if (s == "bf16" || s == "bfloat16") return DType::bf16;
  if (s == "int8" || s == "s8") return DType::s8;
  throw InputError(std::string(what) + ": unknown dtype '" + std::string(s) +
                   "' (allowed: f32, bf16, int8)");
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw Error("negative dimension in shape " + shape_str(s));
    n *= d;
  }
  return n;
}

Tensor::Tensor(Shape shape, DType dtype)
    : shape_(std::move(shape)), numel_(shape_numel(shape_)), dtype_(dtype) {
  storage_ = allocate(nbytes(), true);
}

Tensor Tensor::empty(Shape shape, DType dtype) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.dtype_ = dtype;
  t.storage_ = allocate(t.nbytes(), false);
  return t;
}

Tensor Tensor::from_f32(std::span<const float> values, Shape shape) {
  Tensor t = empty(std::move(shape), DType::f32);
  if (static_cast<int64_t>(values.size()) != t.numel())
    throw Error("from_f32: " + std::to_string(values.size()) + " values for shape " +
                shape_str(t.shape()));
  std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

int64_t Tensor::size(int d) const {
  int r = rank();
  int dd = d < 0 ? d + r : d;
  if (dd < 0 || dd >= r)
    throw Error("dimension " + std::to_string(d) + " out of range for shape " + shape_str(shape_));
  return shape_[dd];
}

void Tensor::check_dtype(DType t, const char* want) const {
  if (t != dtype_)
    throw Error(std::string(want) + ": tensor is " + std::string(dtype_name(dtype_)) + ", asked for " +
                std::string(dtype_name(t)));
}

float Tensor::get(int64_t i) const {
  switch (dtype_) {
    case DType::f32: return reinterpret_cast<const float*>(raw())[i];
    case DType::bf16: return bf16::to_f32(reinterpret_cast<const uint16_t*>(raw())[i]);
    case DType::s8: return static_cast<float>(reinterpret_cast<const int8_t*>(raw())[i]);
  }
  return 0.f;
}

void Tensor::set(int64_t i, float v) {
  switch (dtype_) {
    case DType::f32: reinterpret_cast<float*>(raw())[i] = v; break;
    case DType::bf16: reinterpret_cast<uint16_t*>(raw())[i] = bf16::from_f32(v); break;
    case DType::s8: reinterpret_cast<int8_t*>(raw())[i] = static_cast<int8_t>(v); break;
  }
}

Tensor Tensor::reshape(Shape shape) const {
  if (shape_numel(shape) != numel_)
    throw Error("reshape " + shape_str(shape_) + " -> " + shape_str(shape) + ": element counts differ");
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::narrow0(int64_t start, int64_t len) const {
  if (rank() == 0 || start < 0 || len < 0 || start + len > shape_[0])
    throw Error("narrow0(" + std::to_string(start) + ", " + std::to_string(len) + ") out of range for " +
                shape_str(shape_));
  Tensor t = *this;
  int64_t row = numel_ / (shape_[0] ? shape_[0] : 1);
  t.offset_ += static_cast<size_t>(start * row) * dtype_size(dtype_);
  t.shape_[0] = len;
  t.numel_ = len * row;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_);
  if (nbytes()) std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

Tensor Tensor::to(DType target) const {
  if (target == dtype_) return *this;
  Tensor t = empty(shape_, target);
  if (target == DType::s8) throw Error("Tensor::to(int8): use kernels::quantize_int8 (needs scales)");
  for (int64_t i = 0; i < numel_; ++i) t.set(i, get(i));
  return t;
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> v(static_cast<size_t>(numel_));
  for (int64_t i = 0; i < numel_; ++i) v[static_cast<size_t>(i)] = get(i);
  return v;
}

void Tensor::fill(float v) {
  for (int64_t i = 0; i < numel_; ++i) set(i, v);
}

}  // namespace tori::kernels
