#include "models/safetensors_writer.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>

#include "kernels/error.hpp"

namespace tori::models {

namespace {
const char* st_dtype(kernels::DType t) {
  switch (t) {
    case kernels::DType::f32: return "F32";
    case kernels::DType::bf16: return "BF16";
    case kernels::DType::s8: return "I8";
  }
  return "?";
}
}  // namespace

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata,
                       const std::string& dtype_name) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  uint64_t offset = 0;
  for (auto& [name, t] : tensors) {
    header[name] = {{"dtype", dtype_name.empty() ? std::string(st_dtype(t.dtype())) : dtype_name},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';  // align the data section to 8 bytes, as the format recommends
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error("cannot write '" + path + "'");
  uint64_t n = h.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (auto& [name, t] : tensors)
    out.write(static_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
  if (!out) throw Error("error while writing '" + path + "'");
}

}  // namespace tori::models
