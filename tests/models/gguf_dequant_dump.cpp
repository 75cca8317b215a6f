// Test helper of tests/models/gguf_dequant_check.py: reads tensors of a GGUF file through Tori's
// loader (GgufFile::read_rows, the path every GGUF checkpoint takes) and writes the f32 values, so
// that the script can compare them bit for bit with the `gguf` package's dequantisation.
//   gguf_dequant_dump FILE SPEC OUTDIR
// SPEC is a text file, one request per line: "name c0 nc [row ...]" (no rows = every row); request
// k is written to OUTDIR/k.f32 as little-endian f32, [rows][nc] row-major. Exit 1 with the error on
// stderr when Tori refuses the file or a request.
// A line "int4 name FORM" (FORM int4 or int4-min) loads the whole tensor [N rows, K columns] as a
// run with --dtype FORM packs it (read as f32, transposed to the [K, N] Tori multiplies, packed by
// kernels::pack_weight) and writes what the packed weight holds, unpacked from its panels, to
// OUTDIR/k.codes (u8 [K][N]), k.scales and k.mins (f32 [K/32][N]) and k.f32 (the dequantised values,
// f32 [N][K], the file's orientation).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/embedding.hpp"
#include "kernels/error.hpp"
#include "kernels/gemm_s4_f32.hpp"
#include "kernels/packed_weight.hpp"
#include "models/gguf_file.hpp"

namespace {

void write(const std::string& path, const void* data, size_t bytes) {
  std::ofstream o(path, std::ios::binary);
  o.write(static_cast<const char*>(data), std::streamsize(bytes));
  if (!o) throw tori::Error("cannot write " + path);
}

// The int4 load of one tensor (see the header comment).
void dump_int4(const tori::models::GgufFile& file, const std::string& name, const std::string& form,
               const std::string& out) {
  using namespace tori::kernels;
  const int64_t rows = file.info(name).rows();
  const Tensor w = transpose2d(file.read_rows(name, 0, rows, 0, file.info(name).cols()));  // [K, N]
  const PackedWeight p = pack_weight(w, parse_weight_format(form, "int4 form"), Backend::onednn);
  const QuantizedInt4 q = unpack_s4_panels(p);
  std::vector<uint8_t> codes(size_t(q.q.numel()));
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = uint8_t(q.q.data<int8_t>()[i]);
  write(out + ".codes", codes.data(), codes.size());
  write(out + ".scales", q.scales.data<float>(), size_t(q.scales.numel()) * 4);
  if (q.with_min()) write(out + ".mins", q.mins.data<float>(), size_t(q.mins.numel()) * 4);
  const Tensor d = transpose2d(dequantize_int4(q));
  write(out + ".f32", d.data<float>(), size_t(d.numel()) * 4);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: gguf_dequant_dump FILE SPEC OUTDIR\n";
    return 2;
  }
  try {
    const tori::models::GgufFile file(argv[1]);
    std::ifstream spec(argv[2]);
    if (!spec) throw tori::Error(std::string("cannot read ") + argv[2]);
    std::string line;
    for (int k = 0; std::getline(spec, line); ++k) {
      std::istringstream in(line);
      std::string name;
      int64_t c0 = 0, nc = 0;
      if (line.rfind("int4 ", 0) == 0) {
        std::string form;
        in >> name >> name >> form;
        dump_int4(file, name, form, std::string(argv[3]) + "/" + std::to_string(k));
        continue;
      }
      if (!(in >> name >> c0 >> nc)) throw tori::Error("spec line " + std::to_string(k + 1) + ": '" + line + "'");
      std::vector<int64_t> rows;
      for (int64_t r; in >> r;) rows.push_back(r);
      if (rows.empty())
        for (int64_t r = 0; r < file.info(name).rows(); ++r) rows.push_back(r);
      const tori::kernels::Tensor t = file.read_rows(name, rows, c0, nc);
      const std::string out = std::string(argv[3]) + "/" + std::to_string(k) + ".f32";
      std::ofstream o(out, std::ios::binary);
      o.write(reinterpret_cast<const char*>(t.data<float>()), std::streamsize(rows.size() * size_t(nc) * 4));
      if (!o) throw tori::Error("cannot write " + out);
    }
  } catch (const std::exception& e) {
    std::cerr << "gguf_dequant_dump: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
