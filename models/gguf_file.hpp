#pragma once
// The llama.cpp GGUF container (versions 2 and 3, little-endian), read through a memory map:
//   "GGUF" u32 version, u64 tensor count, u64 metadata count,
//   metadata: (string key, u32 value type, value)*     (strings are u64 length + bytes, arrays are
//                                                       u32 element type + u64 count + elements)
//   tensor infos: (string name, u32 n_dims, u64 dims[n_dims], u32 ggml type, u64 offset)*
//   padding to general.alignment (default 32), then the data section; offsets are relative to it.
// dims are in ggml order: dims[0] is the innermost (fastest-varying) dimension, so a 2-D tensor
// with dims [in, out] is stored row-major as [out][in]: out rows of in elements.
//
// The whole header is parsed and validated up front (every count, length and offset checked
// against the file size, types known, offsets aligned), so a malformed file is a tori::Error
// naming the file and what is wrong, never a crash or a huge allocation. read_rows() then decodes
// only the blocks covering the requested rows and columns, and drops the pages it touched
// (madvise DONTNEED), so a rank's peak memory is its shard.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kernels/tensor.hpp"
#include "models/mapped_file.hpp"
#include "models/ggml_types.hpp"

namespace tori::models {

enum class GgufType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
  u64 = 10, i64 = 11, f64 = 12,
};
std::string to_string(GgufType t);

// One metadata value. Scalars: integers and bools in `i` (u64 values above INT64_MAX are kept in
// `u`), floats in `f`, strings in `s`. Arrays: `elem` is the element type and the elements are in
// `ints` / `floats` / `strings` (by element kind) or `arrays` (arrays of arrays).
struct GgufValue {
  GgufType type = GgufType::u8;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string s;
  GgufType elem = GgufType::u8;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
  std::vector<GgufValue> arrays;
  bool is_integer() const;
  bool is_float() const { return type == GgufType::f32 || type == GgufType::f64; }
  size_t array_size() const;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // ggml order, dims[0] innermost
  GgmlType type = GgmlType::f32;
  uint64_t offset = 0;  // into the data section
  uint64_t nbytes = 0;
  int64_t cols() const { return dims.empty() ? 1 : dims[0]; }  // elements per row
  int64_t rows() const;                                        // product of the other dims
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }

  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;
  // Typed getters: tori::Error naming file and key when the key is missing or has the wrong type.
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t dflt) const;
  double get_float(const std::string& key) const;  // accepts integer values too
  double get_float(const std::string& key, double dflt) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& dflt) const;
  const GgufValue& get_array(const std::string& key, GgufType elem) const;

  const std::map<std::string, GgufTensorInfo>& tensors() const { return tensors_; }
  bool has(const std::string& name) const { return tensors_.count(name) > 0; }
  const GgufTensorInfo& info(const std::string& name) const;
  // Rows `rows` (indices into the outer dims, flattened) and columns [c0, c0 + nc) of a tensor as
  // an f32 [rows.size(), nc] tensor. Only the blocks covering the columns are decoded.
  kernels::Tensor read_rows(const std::string& name, const std::vector<int64_t>& rows, int64_t c0, int64_t nc) const;
  // Contiguous rows [r0, r0 + nr).
  kernels::Tensor read_rows(const std::string& name, int64_t r0, int64_t nr, int64_t c0, int64_t nc) const;

 private:
  std::string path_;
  MappedFile file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::map<std::string, GgufTensorInfo> tensors_;
};

}  // namespace tori::models
