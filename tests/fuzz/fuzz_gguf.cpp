// libFuzzer target: the GGUF reader (models/gguf_file.*) and what reads GGUF metadata after it —
// the typed getters, block decoding of tensor rows, the Llama config and checkpoint
// (models/gguf_checkpoint.*) and the tokenizer built from tokenizer.ggml.* (BPE or SentencePiece)
// with its chat template.
#include <algorithm>

#include "models/chat_template.hpp"
#include "models/gguf_checkpoint.hpp"
#include "models/gguf_file.hpp"
#include "models/tokenizer.hpp"
#include "models/weight_names.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace tori;
using namespace tori::models;

namespace {

// Checks what the parser promises about an accepted tensor (without overflow, so that one in the
// parser cannot hide) and decodes the first and last rows' edge columns.
// (The data section is not exposed; the file size bounds it.)
void tensor(const GgufFile& f, const GgufTensorInfo& t, uint64_t file_size) {
  for (int64_t d : t.dims) fuzz::check(d > 0, "tensor '" + t.name + "': accepted a dim <= 0");
  const unsigned __int128 numel = fuzz::saturated_product(1, t.dims);
  const int64_t be = ggml_block_elems(t.type);
  fuzz::check(numel % uint64_t(be) == 0, "tensor '" + t.name + "': not whole blocks");
  const unsigned __int128 bytes = numel / uint64_t(be) * uint64_t(ggml_block_bytes(t.type));
  fuzz::check(bytes == t.nbytes && t.offset <= file_size && t.nbytes <= file_size - t.offset,
              "tensor '" + t.name + "': accepted data outside the file");
  const int64_t R = t.rows(), C = t.cols(), nc = std::min<int64_t>(C, 64);
  fuzz::expected([&] { f.read_rows(t.name, {0, R - 1}, 0, nc); });
  fuzz::expected([&] { f.read_rows(t.name, R - 1, 1, C - nc, nc); });
}

// Reads a small box at both corners of every tensor the checkpoint serves.
void checkpoint(const std::string& path) {
  GgufCheckpoint ck(path);
  for (const TensorSpec& s : model_tensors(ck.config())) {
    Box lo{kernels::Shape(s.shape.size(), 0), kernels::Shape(s.shape.size(), 1)}, hi = lo;
    for (size_t d = 0; d < s.shape.size(); ++d) hi.start[d] = s.shape[d] - 1;
    ck.read(s.name, lo);
    ck.read(s.name, hi);
  }
}

void tokenizer(const std::string& path) {
  std::unique_ptr<Tokenizer> t = open_tokenizer(path);
  if (!t) return;
  std::vector<int32_t> ids;
  if (fuzz::expected([&] { ids = t->encode_prompt("Hello, world! 123 \xe2\x96\x81 <s></s><|im_end|> caf\xc3\xa9"); }))
    fuzz::expected([&] { t->decode(ids); });
  t->end_ids();
  for (int32_t id = 0; id < std::min<int64_t>(t->vocab_size(), 512); ++id) fuzz::expected([&] { t->decode({id}); });
  if (!t->chat_template.empty())
    ChatTemplate::recognise(t->chat_template, path).render("Hi", "", "<s>", "</s>");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::ScratchFile file(".gguf");
  const std::string& path = file.write(data, size);
  fuzz::expected([&] {
    GgufFile f(path);
    for (const auto& kv : f.metadata()) {
      const std::string& key = kv.first;
      fuzz::expected([&] { f.get_int(key); });
      fuzz::expected([&] { f.get_float(key); });
      fuzz::expected([&] { f.get_string(key); });
      fuzz::expected([&] { f.get_array(key, kv.second.elem); });
    }
    for (const auto& [name, t] : f.tensors()) tensor(f, t, size);
    fuzz::expected([&] { gguf_llama_config(f); });
  });
  fuzz::expected([&] { checkpoint(path); });
  fuzz::expected([&] { tokenizer(path); });
  return 0;
}
