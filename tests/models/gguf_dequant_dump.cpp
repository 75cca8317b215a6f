// Test helper of tests/models/gguf_dequant_check.py: reads tensors of a GGUF file through Tori's
// loader (GgufFile::read_rows, the path every GGUF checkpoint takes) and writes the f32 values, so
// that the script can compare them bit for bit with the `gguf` package's dequantisation.
//   gguf_dequant_dump FILE SPEC OUTDIR
// SPEC is a text file, one request per line: "name c0 nc [row ...]" (no rows = every row); request
// k is written to OUTDIR/k.f32 as little-endian f32, [rows][nc] row-major. Exit 1 with the error on
// stderr when Tori refuses the file or a request.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/error.hpp"
#include "models/gguf_file.hpp"

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
