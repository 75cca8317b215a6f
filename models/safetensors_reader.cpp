#include "models/safetensors_reader.hpp"


#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/bf16.hpp"
#include "kernels/error.hpp"
#include "models/f16.hpp"

namespace tori::models {

namespace {

size_t dtype_bytes(StDtype t) { return t == StDtype::f32 ? 4 : t == StDtype::i8 ? 1 : 2; }

[[noreturn]] void bad_safetensors(const std::string& path, const std::string& what) {
  throw InputError("safetensors file '" + path + "': " + what);
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path, bool allow_i8) : path_(path), file_(path) {
  const unsigned char* map = file_.data();
  const size_t file_size = file_.size();
  if (file_size < 8) bad_safetensors(path, "only " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(map[i]) << (8 * i);
  if (n > file_size - 8)
    bad_safetensors(path, "header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(file_size) +
                  " bytes)");
  data_offset_ = 8 + n;
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(map + 8, map + 8 + n);
  } catch (const std::exception& e) {
    bad_safetensors(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!h.is_object()) bad_safetensors(path, "header is not a JSON object");
  const uint64_t data_size = file_size - data_offset_;
  for (auto& [name, v] : h.items()) {
    if (name == "__metadata__") continue;
    try {
      StTensorInfo info;
      const std::string dt = v.at("dtype").get<std::string>();
      if (dt == "F32") info.dtype = StDtype::f32;
      else if (dt == "F16") info.dtype = StDtype::f16;
      else if (dt == "BF16") info.dtype = StDtype::bf16;
      else if (dt == "I8" && allow_i8) info.dtype = StDtype::i8;
      else bad_safetensors(path, "tensor '" + name + "' has dtype " + dt + (allow_i8 ? " (allowed: F32, F16, BF16, I8)" : " (allowed: F32, F16, BF16)"));
      // Integers only: converting a JSON float outside int64's range (1e43) is undefined behaviour.
      const nlohmann::json &shape = v.at("shape"), &offsets = v.at("data_offsets");
      auto integers = [](const nlohmann::json& a) {
        return a.is_array() && std::all_of(a.begin(), a.end(), [](const nlohmann::json& x) { return x.is_number_integer(); });
      };
      if (!integers(shape)) bad_safetensors(path, "tensor '" + name + "' has a shape that is not a list of integers");
      if (!integers(offsets)) bad_safetensors(path, "tensor '" + name + "' has malformed data_offsets");
      info.shape = shape.get<std::vector<int64_t>>();
      auto off = offsets.get<std::vector<uint64_t>>();
      if (off.size() != 2 || off[0] > off[1]) bad_safetensors(path, "tensor '" + name + "' has malformed data_offsets");
      info.begin = off[0];
      info.end = off[1];
      uint64_t nbytes = dtype_bytes(info.dtype);
      for (int64_t d : info.shape) {
        if (d < 0) bad_safetensors(path, "tensor '" + name + "' has a negative dimension");
        // A product that wraps around 2^64 could match the offsets (shape [2^62, 4] needs "0" bytes).
        if (__builtin_mul_overflow(nbytes, uint64_t(d), &nbytes))
          bad_safetensors(path, "tensor '" + name + "': its shape needs more than 2^64 bytes");
      }
      if (nbytes != info.end - info.begin)
        bad_safetensors(path, "tensor '" + name + "': shape needs " + std::to_string(nbytes) + " bytes but data_offsets span " +
                      std::to_string(info.end - info.begin));
      if (info.end > data_size)
        bad_safetensors(path, "tensor '" + name + "': data_offsets end at " + std::to_string(info.end) +
                      ", past the end of the data (" + std::to_string(data_size) + " bytes)");
      tensors_[name] = info;
    } catch (const nlohmann::json::exception& e) {
      bad_safetensors(path, "tensor '" + name + "': " + e.what());
    }
  }
}

SafetensorsFile::~SafetensorsFile() = default;

const StTensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) bad_safetensors(path_, "has no tensor '" + name + "'");
  return it->second;
}

kernels::Tensor SafetensorsFile::read_rows(const std::string& name, int64_t r0, int64_t nr, int64_t c0,
                                           int64_t nc) const {
  const StTensorInfo& t = info(name);
  const int64_t rows = t.shape.size() == 2 ? t.shape[0] : 1;
  const int64_t cols = t.shape.size() == 2 ? t.shape[1] : (t.shape.size() == 1 ? t.shape[0] : -1);
  if (cols < 0) bad_safetensors(path_, "tensor '" + name + "' is not 1-D or 2-D");
  if (r0 < 0 || nr < 0 || c0 < 0 || nc < 0 || r0 + nr > rows || c0 + nc > cols)
    bad_safetensors(path_, "tensor '" + name + "': rows [" + std::to_string(r0) + ", " + std::to_string(r0 + nr) +
                   ") x columns [" + std::to_string(c0) + ", " + std::to_string(c0 + nc) + ") outside its shape [" +
                   std::to_string(rows) + ", " + std::to_string(cols) + "]");
  kernels::Tensor out({nr, nc}, kernels::DType::f32);
  float* o = out.data<float>();
  const size_t esz = dtype_bytes(t.dtype);
  const unsigned char* base = file_.data() + data_offset_ + t.begin;
  for (int64_t r = 0; r < nr; ++r) {
    const unsigned char* row = base + (size_t(r0 + r) * size_t(cols) + size_t(c0)) * esz;
    float* dst = o + r * nc;
    switch (t.dtype) {
      case StDtype::f32: std::memcpy(dst, row, size_t(nc) * 4); break;
      case StDtype::f16:
        for (int64_t c = 0; c < nc; ++c) {
          uint16_t h;
          std::memcpy(&h, row + 2 * c, 2);
          dst[c] = half_to_float(h);
        }
        break;
      case StDtype::bf16:
        for (int64_t c = 0; c < nc; ++c) {
          uint16_t h;
          std::memcpy(&h, row + 2 * c, 2);
          dst[c] = kernels::bf16::to_f32(h);
        }
        break;
      case StDtype::i8:
        for (int64_t c = 0; c < nc; ++c) dst[c] = float(static_cast<int8_t>(row[c]));
        break;
    }
  }
  // Drop the pages just read from this process's resident set (the page cache keeps them).
  file_.drop(data_offset_ + t.begin + size_t(r0) * size_t(cols) * esz,
             data_offset_ + t.begin + size_t(r0 + nr) * size_t(cols) * esz);
  return out;
}

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::string& dir) : dir_(dir) {
  namespace fs = std::filesystem;
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::vector<std::string> names;
  std::map<std::string, std::string> file_of_tensor;
  if (fs::exists(index)) {
    std::ifstream in(index);
    nlohmann::json j;
    try {
      in >> j;
      for (auto& [tensor, file] : j.at("weight_map").items()) file_of_tensor[tensor] = file.get<std::string>();
    } catch (const std::exception& e) {
      throw InputError("'" + index.string() + "': not a valid index (" + e.what() + ")");
    }
    for (auto& [tensor, file] : file_of_tensor)
      if (std::find(names.begin(), names.end(), file) == names.end()) names.push_back(file);
  } else if (fs::exists(fs::path(dir) / "model.safetensors")) {
    names.push_back("model.safetensors");
  } else {
    throw InputError("checkpoint directory '" + dir +
                     "' has neither model.safetensors nor model.safetensors.index.json");
  }
  for (auto& f : names) {
    files_.push_back(std::make_unique<SafetensorsFile>((fs::path(dir) / f).string()));
    for (auto& [tensor, info] : files_.back()->tensors()) where_[tensor] = files_.size() - 1;
  }
  for (auto& [tensor, file] : file_of_tensor)
    if (!where_.count(tensor)) throw InputError("'" + index.string() + "' maps '" + tensor + "' to '" + file + "', which lacks it");
}

const SafetensorsFile& SafetensorsCheckpoint::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error("checkpoint '" + dir_ + "' has no tensor '" + name + "'");
  return *files_[it->second];
}

const StTensorInfo& SafetensorsCheckpoint::info(const std::string& name) const { return file_of(name).info(name); }

kernels::Tensor SafetensorsCheckpoint::read_rows(const std::string& name, int64_t r0, int64_t nr, int64_t c0,
                                                 int64_t nc) const {
  return file_of(name).read_rows(name, r0, nr, c0, nc);
}

}  // namespace tori::models
