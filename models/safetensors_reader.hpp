#pragma once
// Reads tensors out of .safetensors files without loading them: the file is memory-mapped, the
// header validated up front, and read_rows() converts just the requested rows and columns of one
// tensor to f32 (F32, F16, BF16 and I8 on disk; I8 as its integer values), then drops the pages it touched, so a rank's peak
// memory is its shard, not the checkpoint. A sharded checkpoint (model.safetensors.index.json
// with a weight_map) is a SafetensorsCheckpoint over several files.
//
// Malformed files are tori::Error naming the file and what is wrong: header length past the end,
// header not JSON, unknown dtype, shape/offset mismatch, offsets past the end of the file.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/tensor.hpp"
#include "models/mapped_file.hpp"

namespace tori::models {

enum class StDtype { f32, f16, bf16, i8 };

struct StTensorInfo {
  StDtype dtype = StDtype::f32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data section
};

class SafetensorsFile {
 public:
  // allow_i8: I8 tensors are accepted (TSVD int8 factors, read as their integer values); model
  // checkpoints leave it off, so int8 weights are refused rather than read without their scales.
  explicit SafetensorsFile(const std::string& path, bool allow_i8 = false);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, StTensorInfo>& tensors() const { return tensors_; }
  bool has(const std::string& name) const { return tensors_.count(name) > 0; }
  const StTensorInfo& info(const std::string& name) const;
  // Rows [r0, r0 + nr) and columns [c0, c0 + nc) of a 2-D tensor (a 1-D tensor is one row) as an
  // f32 [nr, nc] tensor.
  kernels::Tensor read_rows(const std::string& name, int64_t r0, int64_t nr, int64_t c0, int64_t nc) const;

 private:
  std::string path_;
  MappedFile file_;
  size_t data_offset_ = 0;
  std::map<std::string, StTensorInfo> tensors_;
};

class SafetensorsCheckpoint {
 public:
  // `dir` holds model.safetensors, or model.safetensors.index.json and the files it names.
  explicit SafetensorsCheckpoint(const std::string& dir);
  bool has(const std::string& name) const { return where_.count(name) > 0; }
  const StTensorInfo& info(const std::string& name) const;
  kernels::Tensor read_rows(const std::string& name, int64_t r0, int64_t nr, int64_t c0, int64_t nc) const;
  const std::string& dir() const { return dir_; }

 private:
  const SafetensorsFile& file_of(const std::string& name) const;
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;
};

}  // namespace tori::models
