#pragma once
// Writes GGUF files (version 2 or 3): metadata of any GGUF type and tensors encoded as F32, F16,
// BF16, Q8_0, Q4_0 or Q4_1 from f32 values. Used by the tests (files with known contents, and
// corrupted variants) and by export_llama_gguf(), which writes a Llama-family WeightSource the way
// llama.cpp's convert_hf_to_gguf.py does, Q and K rows permuted for interleaved RoPE included.
#include <cstdint>
#include <string>
#include <vector>

#include "models/gguf_file.hpp"
#include "models/gguf_vocabulary.hpp"
#include "models/weight_source.hpp"

namespace tori::models {

class GgufWriter {
 public:
  // Metadata, in insertion order.
  void add(const std::string& key, GgufValue v);
  void add_u32(const std::string& key, uint32_t v);
  void add_f32(const std::string& key, float v);
  void add_string(const std::string& key, const std::string& v);
  void add_strings(const std::string& key, const std::vector<std::string>& v);
  void add_i32s(const std::string& key, const std::vector<int32_t>& v);
  // A tensor with ggml dims (dims[0] innermost), `values` in storage order, encoded as `type`.
  void add_tensor(const std::string& name, const std::vector<int64_t>& dims, GgmlType type,
                  const std::vector<float>& values);
  // The file's bytes / the file itself.
  std::string bytes(uint32_t version = 3, uint32_t alignment = 32) const;
  void write(const std::string& path, uint32_t version = 3, uint32_t alignment = 32) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> dims;
    GgmlType type;
    std::string data;
  };
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

// Writes a Llama-family model (serial, rmsnorm, swiglu) as a llama.cpp GGUF: matrices as
// `type`, norms as F32, Q/K rows permuted, and the `tokenizer` metadata (gguf_vocabulary.hpp;
// llama.cpp refuses a file without it). Throws InputError for other families.
void export_llama_gguf(const WeightSource& src, const std::string& path, GgmlType type, const GgufMetadata& tokenizer);

}  // namespace tori::models
