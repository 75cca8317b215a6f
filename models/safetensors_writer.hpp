#pragma once
// Writes tensors to a .safetensors file (8-byte little-endian header length, JSON header with
// dtype/shape/data_offsets per tensor, then the raw little-endian data). Used to dump exactly the
// weights and logits the Reference used, for the independent PyTorch check, and later by export.
#include <string>
#include <utility>
#include <vector>

#include "kernels/tensor.hpp"

namespace tori::models {

using NamedTensors = std::vector<std::pair<std::string, kernels::Tensor>>;

// Tensors keep their dtype (f32 -> "F32", bf16 -> "BF16", int8 -> "I8"), unless `dtype_name`
// names the on-disk dtype of every tensor (e.g. "F16" for IEEE halves held in 2-byte storage).
// Throws tori::Error naming the path when it cannot be written. `metadata` goes in the header's
// __metadata__.
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata = {},
                       const std::string& dtype_name = "");

}  // namespace tori::models
