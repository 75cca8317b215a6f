// libFuzzer target: the safetensors header parser (models/safetensors_reader.*) — 8-byte header
// length, JSON header, dtypes, shapes and data offsets — and row reads of what it accepted.
#include <algorithm>

#include "models/safetensors_reader.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace tori;
using namespace tori::models;

namespace {

// What the parser promises about an accepted tensor, without overflow, so that one in the parser cannot
// hide: its shape needs exactly the bytes its offsets span, inside the file.
void tensor(const SafetensorsFile& f, const std::string& name, const StTensorInfo& t, uint64_t file_size) {
  for (int64_t d : t.shape) fuzz::check(d >= 0, "tensor '" + name + "': accepted a negative dim");
  const unsigned __int128 bytes = fuzz::saturated_product(t.dtype == StDtype::f32 ? 4 : 2, t.shape);
  fuzz::check(t.begin <= t.end && t.end <= file_size && bytes == t.end - t.begin,
              "tensor '" + name + "': accepted a shape that does not match its data_offsets or the file");
  if (t.shape.size() > 2) return;
  const int64_t R = t.shape.size() == 2 ? t.shape[0] : 1, C = t.shape.empty() ? 1 : t.shape.back();
  const int64_t nr = std::min<int64_t>(R, 2), nc = std::min<int64_t>(C, 64);
  fuzz::expected([&] { f.read_rows(name, 0, nr, 0, nc); });
  fuzz::expected([&] { f.read_rows(name, R - nr, nr, C - nc, nc); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::ScratchFile file(".safetensors");
  const std::string& path = file.write(data, size);
  fuzz::expected([&] {
    SafetensorsFile f(path);
    for (const auto& [name, t] : f.tensors()) tensor(f, name, t, size);
  });
  return 0;
}
