#include "models/gguf_writer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>

#include "kernels/embedding.hpp"
#include "kernels/error.hpp"
#include "models/gguf_checkpoint.hpp"
#include "models/weight_names.hpp"

namespace tori::models {

namespace {

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
void put_str(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

void put_value(std::string& out, GgufType t, const GgufValue& v) {
  switch (t) {
    case GgufType::u8: put<uint8_t>(out, uint8_t(v.i)); return;
    case GgufType::i8: put<int8_t>(out, int8_t(v.i)); return;
    case GgufType::u16: put<uint16_t>(out, uint16_t(v.i)); return;
    case GgufType::i16: put<int16_t>(out, int16_t(v.i)); return;
    case GgufType::u32: put<uint32_t>(out, uint32_t(v.i)); return;
    case GgufType::i32: put<int32_t>(out, int32_t(v.i)); return;
    case GgufType::u64: put<uint64_t>(out, v.u ? v.u : uint64_t(v.i)); return;
    case GgufType::i64: put<int64_t>(out, v.i); return;
    case GgufType::f32: put<float>(out, float(v.f)); return;
    case GgufType::f64: put<double>(out, v.f); return;
    case GgufType::boolean: put<uint8_t>(out, v.i ? 1 : 0); return;
    case GgufType::string: put_str(out, v.s); return;
    case GgufType::array: {
      put<uint32_t>(out, uint32_t(v.elem));
      put<uint64_t>(out, v.array_size());
      GgufValue e;
      e.type = v.elem;
      for (int64_t x : v.ints) e.i = x, put_value(out, v.elem, e);
      for (double x : v.floats) e.f = x, put_value(out, v.elem, e);
      for (const std::string& x : v.strings) put_str(out, x);
      for (const GgufValue& x : v.arrays) put_value(out, GgufType::array, x);
      return;
    }
  }
  throw Error("GGUF writer: unknown value type " + std::to_string(uint32_t(t)));
}

}  // namespace

void GgufWriter::add(const std::string& key, GgufValue v) { kv_.emplace_back(key, std::move(v)); }
void GgufWriter::add_u32(const std::string& key, uint32_t v) {
  GgufValue x;
  x.type = GgufType::u32;
  x.i = v;
  add(key, x);
}
void GgufWriter::add_f32(const std::string& key, float v) {
  GgufValue x;
  x.type = GgufType::f32;
  x.f = v;
  add(key, x);
}
void GgufWriter::add_string(const std::string& key, const std::string& v) {
  GgufValue x;
  x.type = GgufType::string;
  x.s = v;
  add(key, x);
}
void GgufWriter::add_strings(const std::string& key, const std::vector<std::string>& v) {
  GgufValue x;
  x.type = GgufType::array;
  x.elem = GgufType::string;
  x.strings = v;
  add(key, x);
}
void GgufWriter::add_i32s(const std::string& key, const std::vector<int32_t>& v) {
  GgufValue x;
  x.type = GgufType::array;
  x.elem = GgufType::i32;
  x.ints.assign(v.begin(), v.end());
  add(key, x);
}

void GgufWriter::add_tensor(const std::string& name, const std::vector<int64_t>& dims, GgmlType type,
                            const std::vector<float>& values) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  if (n != int64_t(values.size()))
    throw Error("GGUF writer: tensor '" + name + "' has " + std::to_string(values.size()) + " values for " +
                std::to_string(n) + " elements");
  std::string data(size_t(n / ggml_block_elems(type) * ggml_block_bytes(type)), '\0');
  ggml_quantize(type, values.data(), n, reinterpret_cast<unsigned char*>(data.data()));
  tensors_.push_back({name, dims, type, std::move(data)});
}

std::string GgufWriter::bytes(uint32_t version, uint32_t alignment) const {
  std::string out = "GGUF";
  put<uint32_t>(out, version);
  put<uint64_t>(out, tensors_.size());
  bool has_alignment = false;
  for (auto& [k, v] : kv_) has_alignment |= k == "general.alignment";
  put<uint64_t>(out, kv_.size() + (alignment != 32 && !has_alignment ? 1 : 0));
  for (auto& [k, v] : kv_) {
    put_str(out, k);
    put<uint32_t>(out, uint32_t(v.type));
    put_value(out, v.type, v);
  }
  if (alignment != 32 && !has_alignment) {
    put_str(out, "general.alignment");
    put<uint32_t>(out, uint32_t(GgufType::u32));
    put<uint32_t>(out, alignment);
  }
  auto pad = [&](uint64_t n) { return (n + alignment - 1) / alignment * alignment; };
  uint64_t offset = 0;
  for (auto& t : tensors_) {
    put_str(out, t.name);
    put<uint32_t>(out, uint32_t(t.dims.size()));
    for (int64_t d : t.dims) put<uint64_t>(out, uint64_t(d));
    put<uint32_t>(out, uint32_t(t.type));
    put<uint64_t>(out, offset);
    offset = pad(offset + t.data.size());
  }
  out.resize(pad(out.size()), '\0');
  for (auto& t : tensors_) {
    out += t.data;
    out.resize(pad(out.size()), '\0');
  }
  return out;
}

void GgufWriter::write(const std::string& path, uint32_t version, uint32_t alignment) const {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw Error("cannot write '" + path + "'");
  const std::string b = bytes(version, alignment);
  f.write(b.data(), std::streamsize(b.size()));
  if (!f) throw Error("error writing '" + path + "'");
}

void export_llama_gguf(const WeightSource& src, const std::string& path, GgmlType type, const GgufMetadata& tokenizer) {
  const ModelConfig& c = src.config();
  if (c.block != Block::serial || c.norm != Norm::rmsnorm || c.mlp != Mlp::swiglu)
    throw InputError("model '" + c.name + "' (" + to_string(c.block) + ", " + to_string(c.norm) + ", " +
                     to_string(c.mlp) + ") has no llama GGUF layout (allowed: serial, rmsnorm, swiglu)");
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", c.name);
  w.add_u32("llama.block_count", uint32_t(c.n_layers));
  w.add_u32("llama.context_length", uint32_t(c.max_seq));
  w.add_u32("llama.embedding_length", uint32_t(c.d_model));
  w.add_u32("llama.feed_forward_length", uint32_t(c.d_ff));
  w.add_u32("llama.attention.head_count", uint32_t(c.n_heads));
  w.add_u32("llama.attention.head_count_kv", uint32_t(c.n_kv_heads));
  w.add_u32("llama.attention.key_length", uint32_t(c.d_head));
  w.add_u32("llama.attention.value_length", uint32_t(c.d_head));
  w.add_u32("llama.rope.dimension_count", uint32_t(c.d_head));
  w.add_f32("llama.rope.freq_base", float(c.rope_theta));
  w.add_f32("llama.attention.layer_norm_rms_epsilon", float(c.norm_eps));
  w.add_u32("llama.vocab_size", uint32_t(c.vocab));
  for (const auto& [key, value] : tokenizer) w.add(key, value);
  bool fallback_logged = false;
  for (const TensorSpec& s : model_tensors(c)) {
    const GgufLocation at = gguf_locate(c, s.name);
    kernels::Tensor t = src.read_full(s.name);
    if (at.transposed) t = kernels::transpose2d(t);  // ours [in, out] -> stored [out][in]
    if (at.permute_heads > 0) {                       // HF rows -> llama.cpp interleaved-RoPE rows
      kernels::Tensor p(t.shape(), kernels::DType::f32);
      const int64_t in = t.size(1);
      for (int64_t g = 0; g < t.size(0); ++g) {
        const int64_t hf = gguf_qk_hf_row(g, c.d_head);
        std::copy_n(t.data<float>() + hf * in, in, p.data<float>() + g * in);
      }
      t = p;
    }
    std::vector<int64_t> dims(t.shape().rbegin(), t.shape().rend());  // ggml order
    const bool matrix = s.shape.size() == 2;
    // A block type quantises each row on its own, in blocks along ne[0]: rows that are not whole
    // blocks (e.g. d_model 144 under Q8_0's 32) are written as F16, as llama.cpp's converter does.
    GgmlType tt = matrix ? type : GgmlType::f32;
    if (dims[0] % ggml_block_elems(tt) != 0) {
      if (!fallback_logged)
        spdlog::warn("export: rows of {} values are not whole {} blocks of {}: such tensors are written as F16 "
                     "(first: '{}')", dims[0], ggml_type_name(uint32_t(tt)), ggml_block_elems(tt), at.name);
      fallback_logged = true;
      tt = GgmlType::f16;
    }
    w.add_tensor(at.name, dims, tt, std::vector<float>(t.data<float>(), t.data<float>() + t.numel()));
  }
  w.write(path);
}

}  // namespace tori::models
