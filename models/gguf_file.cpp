#include "models/gguf_file.hpp"


#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>

#include "kernels/error.hpp"

namespace tori::models {

namespace {

[[noreturn]] void bad_gguf(const std::string& path, const std::string& what) {
  throw InputError("GGUF file '" + path + "': " + what);
}

// A bounds-checked little-endian cursor over the mapped header.
class Cursor {
 public:
  Cursor(const std::string& path, const unsigned char* p, size_t size) : path_(path), p_(p), size_(size) {}
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }
  const unsigned char* need(size_t n, const char* what) {
    if (n > left())
      bad_gguf(path_, std::string(what) + " at byte " + std::to_string(pos_) + " needs " + std::to_string(n) +
                     " bytes but the file ends after " + std::to_string(left()));
    const unsigned char* q = p_ + pos_;
    pos_ += n;
    return q;
  }
  template <typename T>
  T get(const char* what) {
    T v;
    std::memcpy(&v, need(sizeof(T), what), sizeof(T));
    return v;
  }
  std::string str(const char* what) {
    const uint64_t n = get<uint64_t>(what);
    if (n > left())
      bad_gguf(path_, std::string(what) + " at byte " + std::to_string(pos_ - 8) + ": string length " + std::to_string(n) +
                     " runs past the end of the file (" + std::to_string(left()) + " bytes left)");
    const unsigned char* q = need(size_t(n), what);
    return std::string(reinterpret_cast<const char*>(q), size_t(n));
  }

 private:
  const std::string& path_;
  const unsigned char* p_;
  size_t size_;
  size_t pos_ = 0;
};

bool known_type(uint32_t t) { return t <= uint32_t(GgufType::f64); }

size_t scalar_bytes(GgufType t) {
  switch (t) {
    case GgufType::u8:
    case GgufType::i8:
    case GgufType::boolean: return 1;
    case GgufType::u16:
    case GgufType::i16: return 2;
    case GgufType::u32:
    case GgufType::i32:
    case GgufType::f32: return 4;
    default: return 8;  // u64, i64, f64; strings and arrays take at least 8 (their length)
  }
}

// Reads one value of type t into v (depth limits nested arrays).
void read_value(Cursor& c, GgufType t, GgufValue& v, const std::string& path, const std::string& key, int depth) {
  v.type = t;
  switch (t) {
    case GgufType::u8: v.i = c.get<uint8_t>("value"); v.u = uint64_t(v.i); return;
    case GgufType::i8: v.i = c.get<int8_t>("value"); return;
    case GgufType::u16: v.i = c.get<uint16_t>("value"); v.u = uint64_t(v.i); return;
    case GgufType::i16: v.i = c.get<int16_t>("value"); return;
    case GgufType::u32: v.i = c.get<uint32_t>("value"); v.u = uint64_t(v.i); return;
    case GgufType::i32: v.i = c.get<int32_t>("value"); return;
    case GgufType::u64: v.u = c.get<uint64_t>("value"); v.i = int64_t(std::min<uint64_t>(v.u, INT64_MAX)); return;
    case GgufType::i64: v.i = c.get<int64_t>("value"); return;
    case GgufType::f32: v.f = c.get<float>("value"); return;
    case GgufType::f64: v.f = c.get<double>("value"); return;
    case GgufType::boolean: {
      const uint8_t b = c.get<uint8_t>("value");
      if (b > 1) bad_gguf(path, "key '" + key + "': bool value " + std::to_string(b) + " (allowed: 0, 1)");
      v.i = b;
      return;
    }
    case GgufType::string: v.s = c.str("string value"); return;
    case GgufType::array: {
      const uint32_t et = c.get<uint32_t>("array type");
      if (!known_type(et))
        bad_gguf(path, "key '" + key + "': unknown array element type " + std::to_string(et) + " (allowed: 0..12)");
      v.elem = GgufType(et);
      if (v.elem == GgufType::array && depth >= 4) bad_gguf(path, "key '" + key + "': arrays nested too deeply");
      const uint64_t n = c.get<uint64_t>("array length");
      if (n > c.left() / scalar_bytes(v.elem))
        bad_gguf(path, "key '" + key + "': array of " + std::to_string(n) + " " + to_string(v.elem) +
                      " elements runs past the end of the file (" + std::to_string(c.left()) + " bytes left)");
      GgufValue e;
      for (uint64_t k = 0; k < n; ++k) {
        read_value(c, v.elem, e, path, key, depth + 1);
        if (v.elem == GgufType::string) v.strings.push_back(std::move(e.s));
        else if (v.elem == GgufType::array) v.arrays.push_back(std::move(e)), e = GgufValue{};
        else if (e.is_float()) v.floats.push_back(e.f);
        else v.ints.push_back(e.i);
      }
      return;
    }
  }
  bad_gguf(path, "key '" + key + "': unknown value type " + std::to_string(uint32_t(t)));
}

}  // namespace

std::string to_string(GgufType t) {
  static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  return uint32_t(t) <= 12 ? names[uint32_t(t)] : "type " + std::to_string(uint32_t(t));
}

bool GgufValue::is_integer() const {
  return type != GgufType::f32 && type != GgufType::f64 && type != GgufType::string && type != GgufType::array;
}

size_t GgufValue::array_size() const { return ints.size() + floats.size() + strings.size() + arrays.size(); }

int64_t GgufTensorInfo::rows() const {
  int64_t r = 1;
  for (size_t d = 1; d < dims.size(); ++d) r *= dims[d];
  return r;
}

GgufFile::GgufFile(const std::string& path) : path_(path), file_(path) {
  const unsigned char* map = file_.data();
  const size_t file_size = file_.size();
  if (file_size < 24) bad_gguf(path, "only " + std::to_string(file_size) + " bytes, shorter than the 24-byte GGUF header");

  Cursor c(path, map, file_size);
  if (std::memcmp(c.need(4, "magic"), "GGUF", 4) != 0) bad_gguf(path, "bad magic (not a GGUF file; expected \"GGUF\")");
  version_ = c.get<uint32_t>("version");
  if (version_ != 2 && version_ != 3)
    bad_gguf(path, "version " + std::to_string(version_) + " is not supported (allowed: 2, 3)");
  const uint64_t n_tensors = c.get<uint64_t>("tensor count");
  const uint64_t n_kv = c.get<uint64_t>("metadata count");
  // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at least
  // 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
  if (n_kv > c.left() / 13)
    bad_gguf(path, "metadata count " + std::to_string(n_kv) + " cannot fit in the file (" + std::to_string(file_size) + " bytes)");
  if (n_tensors > c.left() / 24)
    bad_gguf(path, "tensor count " + std::to_string(n_tensors) + " cannot fit in the file (" + std::to_string(file_size) +
                  " bytes)");
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.str("metadata key");
    const uint32_t t = c.get<uint32_t>("metadata value type");
    if (!known_type(t))
      bad_gguf(path, "key '" + key + "': unknown value type " + std::to_string(t) + " (allowed: 0..12)");
    GgufValue v;
    read_value(c, GgufType(t), v, path, key, 0);
    if (kv_.count(key)) bad_gguf(path, "duplicate metadata key '" + key + "'");
    kv_.emplace(std::move(key), std::move(v));
  }
  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is_integer() || a->i <= 0 || (a->i & (a->i - 1)) != 0 || a->i > (1 << 20))
      bad_gguf(path, "general.alignment = " + std::to_string(a->i) + " (allowed: a power of two up to 2^20)");
    alignment_ = uint64_t(a->i);
  }
  std::vector<GgufTensorInfo> infos;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo ti;
    ti.name = c.str("tensor name");
    const uint32_t nd = c.get<uint32_t>("tensor n_dims");
    if (nd < 1 || nd > 4) bad_gguf(path, "tensor '" + ti.name + "' has " + std::to_string(nd) + " dims (allowed: 1..4)");
    uint64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const uint64_t n = c.get<uint64_t>("tensor dim");
      if (n == 0 || n > (uint64_t(1) << 40) || numel > (uint64_t(1) << 50) / n)
        bad_gguf(path, "tensor '" + ti.name + "' dim " + std::to_string(d) + " = " + std::to_string(n) +
                      " (empty or absurdly large)");
      numel *= n;
      ti.dims.push_back(int64_t(n));
    }
    const uint32_t type = c.get<uint32_t>("tensor type");
    if (!ggml_type_supported(type))
      bad_gguf(path, "tensor '" + ti.name + "' has type " + ggml_type_name(type) + " (supported: " +
                    ggml_supported_types() + ")");
    ti.type = GgmlType(type);
    const int64_t be = ggml_block_elems(ti.type);
    if (ti.dims[0] % be != 0)
      bad_gguf(path, "tensor '" + ti.name + "': innermost dim " + std::to_string(ti.dims[0]) + " is not a multiple of the " +
                    ggml_type_name(type) + " block size " + std::to_string(be));
    ti.nbytes = numel / uint64_t(be) * uint64_t(ggml_block_bytes(ti.type));
    ti.offset = c.get<uint64_t>("tensor offset");
    if (ti.offset % alignment_ != 0)
      bad_gguf(path, "tensor '" + ti.name + "': offset " + std::to_string(ti.offset) + " is not a multiple of the alignment " +
                    std::to_string(alignment_));
    infos.push_back(std::move(ti));
  }
  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (data_offset_ > file_size)
    bad_gguf(path, "data section would start at byte " + std::to_string(data_offset_) + ", past the end of the file (" +
                  std::to_string(file_size) + " bytes)");
  const uint64_t data_size = file_size - data_offset_;
  std::set<std::string> names;
  for (auto& ti : infos) {
    if (ti.offset > data_size || ti.nbytes > data_size - ti.offset)
      bad_gguf(path, "tensor '" + ti.name + "': data [" + std::to_string(ti.offset) + ", " +
                    std::to_string(ti.offset + ti.nbytes) + ") runs past the end of the data section (" +
                    std::to_string(data_size) + " bytes)");
    if (!names.insert(ti.name).second) bad_gguf(path, "duplicate tensor '" + ti.name + "'");
  }
  // Tensors may not share bytes: a wrong type or dims that make one tensor longer than it is would
  // otherwise read its neighbour's data as its own (llama.cpp requires them packed in order).
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& ti : infos) by_offset.push_back(&ti);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo &a = *by_offset[i - 1], &b = *by_offset[i];
    if (a.nbytes > 0 && b.offset < a.offset + a.nbytes)
      bad_gguf(path, "tensor '" + a.name + "' (" + ggml_type_name(uint32_t(a.type)) + ", data [" + std::to_string(a.offset) +
                    ", " + std::to_string(a.offset + a.nbytes) + ")) overlaps tensor '" + b.name + "' (from " +
                    std::to_string(b.offset) + "): wrong type or dims");
  }
  for (auto& ti : infos) {
    std::string name = ti.name;
    tensors_.emplace(std::move(name), std::move(ti));
  }
}

GgufFile::~GgufFile() = default;

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) bad_gguf(path_, "missing metadata key '" + key + "'");
  if (!v->is_integer()) bad_gguf(path_, "key '" + key + "' is a " + to_string(v->type) + ", expected an integer");
  return v->i;
}
int64_t GgufFile::get_int(const std::string& key, int64_t dflt) const { return find(key) ? get_int(key) : dflt; }

double GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) bad_gguf(path_, "missing metadata key '" + key + "'");
  if (v->is_float()) return v->f;
  if (v->is_integer()) return double(v->i);
  bad_gguf(path_, "key '" + key + "' is a " + to_string(v->type) + ", expected a number");
}
double GgufFile::get_float(const std::string& key, double dflt) const { return find(key) ? get_float(key) : dflt; }

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) bad_gguf(path_, "missing metadata key '" + key + "'");
  if (v->type != GgufType::string) bad_gguf(path_, "key '" + key + "' is a " + to_string(v->type) + ", expected a string");
  return v->s;
}
std::string GgufFile::get_string(const std::string& key, const std::string& dflt) const {
  return find(key) ? get_string(key) : dflt;
}

const GgufValue& GgufFile::get_array(const std::string& key, GgufType elem) const {
  const GgufValue* v = find(key);
  if (!v) bad_gguf(path_, "missing metadata key '" + key + "'");
  const bool int_ok = elem != GgufType::string && elem != GgufType::array && elem != GgufType::f32 &&
                      elem != GgufType::f64;
  const bool same_kind = v->elem == elem || (int_ok && v->array_size() == v->ints.size());
  if (v->type != GgufType::array || !same_kind)
    bad_gguf(path_, "key '" + key + "' is a " + to_string(v->type) +
                   (v->type == GgufType::array ? " of " + to_string(v->elem) : std::string()) + ", expected an array of " +
                   to_string(elem));
  return *v;
}

const GgufTensorInfo& GgufFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) bad_gguf(path_, "has no tensor '" + name + "'");
  return it->second;
}

kernels::Tensor GgufFile::read_rows(const std::string& name, int64_t r0, int64_t nr, int64_t c0, int64_t nc) const {
  std::vector<int64_t> rows(size_t(std::max<int64_t>(nr, 0)));
  for (int64_t r = 0; r < nr; ++r) rows[size_t(r)] = r0 + r;
  return read_rows(name, rows, c0, nc);
}

kernels::Tensor GgufFile::read_rows(const std::string& name, const std::vector<int64_t>& rows, int64_t c0,
                                    int64_t nc) const {
  const GgufTensorInfo& t = info(name);
  const int64_t R = t.rows(), C = t.cols();
  if (c0 < 0 || nc < 0 || c0 + nc > C)
    bad_gguf(path_, "tensor '" + name + "': columns [" + std::to_string(c0) + ", " + std::to_string(c0 + nc) +
                   ") outside its " + std::to_string(C) + " columns");
  for (int64_t r : rows)
    if (r < 0 || r >= R)
      bad_gguf(path_, "tensor '" + name + "': row " + std::to_string(r) + " outside its " + std::to_string(R) + " rows");
  const int64_t nrows = int64_t(rows.size());
  kernels::Tensor out({nrows, nc}, kernels::DType::f32);
  if (nrows == 0 || nc == 0) return out;
  const int64_t be = ggml_block_elems(t.type), bb = ggml_block_bytes(t.type);
  const size_t row_bytes = size_t(C / be * bb);
  const int64_t b0 = c0 / be, b1 = (c0 + nc + be - 1) / be;  // blocks covering the columns
  std::vector<float> tmp(size_t((b1 - b0) * be));
  const unsigned char* base = file_.data() + data_offset_ + t.offset;
  float* o = out.data<float>();
  size_t lo = SIZE_MAX, hi = 0;
  for (int64_t i = 0; i < nrows; ++i) {
    const size_t at = size_t(rows[size_t(i)]) * row_bytes + size_t(b0 * bb);
    ggml_dequantize(t.type, base + at, b1 - b0, tmp.data());
    std::memcpy(o + i * nc, tmp.data() + (c0 - b0 * be), size_t(nc) * 4);
    lo = std::min(lo, at);
    hi = std::max(hi, at + size_t((b1 - b0) * bb));
  }
  // Drop the pages just read from this process's resident set (the page cache keeps them).
  file_.drop(data_offset_ + t.offset + lo, data_offset_ + t.offset + hi);
  return out;
}

}  // namespace tori::models
