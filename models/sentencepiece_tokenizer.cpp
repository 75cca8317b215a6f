#include "models/sentencepiece_tokenizer.hpp"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cstring>

#include "kernels/error.hpp"
#include "models/gguf_file.hpp"
#include "models/gguf_vocabulary.hpp"

namespace tori::models {

namespace {

// SentencePiece's escaped space, U+2581 LOWER ONE EIGHTH BLOCK.
constexpr const char* kSpace = "\xe2\x96\x81";
constexpr size_t kSpaceBytes = 3;

// --- protobuf wire format: just what a ModelProto needs -------------------------------------------
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) out += char(0x80 | (v & 0x7F)), v >>= 7;
  out += char(v);
}
void put_tag(std::string& out, int field, int wire) { put_varint(out, uint64_t(field) << 3 | uint64_t(wire)); }
void put_int(std::string& out, int field, int64_t v) { put_tag(out, field, 0), put_varint(out, uint64_t(v)); }
void put_bytes(std::string& out, int field, const std::string& s) {
  put_tag(out, field, 2), put_varint(out, s.size()), out += s;
}
void put_float(std::string& out, int field, float f) {
  put_tag(out, field, 5);
  char b[4];
  std::memcpy(b, &f, 4);  // little-endian, as protobuf's fixed32
  out.append(b, 4);
}

uint64_t get_varint(const std::string& in, size_t& at) {
  uint64_t v = 0;
  for (int shift = 0; at < in.size() && shift < 64; shift += 7) {
    const auto b = uint8_t(in[at++]);
    v |= uint64_t(b & 0x7F) << shift;
    if (!(b & 0x80)) return v;
  }
  throw InputError("SentencePiece model proto: truncated varint");
}

// Calls f(field, wire, value, bytes) for each field of a protobuf message: varints in value,
// length-delimited fields in bytes; fixed32/64 are skipped.
template <typename F>
void for_each_field(const std::string& msg, F f) {
  size_t at = 0;
  while (at < msg.size()) {
    const uint64_t tag = get_varint(msg, at);
    const int field = int(tag >> 3), wire = int(tag & 7);
    if (wire == 0) {
      f(field, wire, get_varint(msg, at), std::string());
    } else if (wire == 2) {
      const uint64_t n = get_varint(msg, at);
      if (n > msg.size() - at) throw InputError("SentencePiece model proto: field runs past the end");
      f(field, wire, 0, msg.substr(at, n));
      at += n;
    } else if (wire == 1 || wire == 5) {
      at += wire == 1 ? 8 : 4;
    } else {
      throw InputError("SentencePiece model proto: unsupported wire type " + std::to_string(wire));
    }
  }
}

// The type of every piece of a serialized ModelProto (SentencePiece.type, default NORMAL = 1):
// the processor's API tells control, unknown, unused and byte pieces, but not user-defined ones.
std::vector<int32_t> piece_types(const std::string& proto) {
  std::vector<int32_t> types;
  for_each_field(proto, [&](int field, int wire, uint64_t, const std::string& piece) {
    if (field != 1 || wire != 2) return;
    int32_t type = 1;
    for_each_field(piece, [&](int f, int w, uint64_t v, const std::string&) {
      if (f == 3 && w == 0) type = int32_t(v);
    });
    types.push_back(type);
  });
  return types;
}

std::string status_text(const sentencepiece::util::Status& s) { return s.ToString(); }

}  // namespace

std::string sentencepiece_model_proto(const std::vector<std::string>& pieces, const std::vector<double>& scores,
                                      const std::vector<int64_t>& types, bool add_dummy_prefix, int32_t unk_id,
                                      int32_t bos_id, int32_t eos_id) {
  // sentencepiece_model.proto field numbers: ModelProto {pieces = 1, trainer_spec = 2,
  // normalizer_spec = 3}; SentencePiece {piece = 1, score = 2, type = 3}; TrainerSpec
  // {model_type = 3 (BPE = 2), vocab_size = 4, byte_fallback = 35, unk_id = 40, bos_id = 41,
  // eos_id = 42, pad_id = 43}; NormalizerSpec {name = 1, add_dummy_prefix = 3,
  // remove_extra_whitespaces = 4, escape_whitespaces = 5}.
  std::string out;
  int bytes = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    std::string p;
    put_bytes(p, 1, pieces[i]);
    put_float(p, 2, float(scores[i]));
    put_int(p, 3, types[i]);
    put_bytes(out, 1, p);
    bytes += types[i] == 6;
  }
  std::string trainer;
  put_int(trainer, 3, 2);
  put_int(trainer, 4, int64_t(pieces.size()));
  put_int(trainer, 35, bytes == 256);  // byte fallback needs every <0xNN> piece
  put_int(trainer, 40, unk_id);
  put_int(trainer, 41, bos_id);
  put_int(trainer, 42, eos_id);
  put_int(trainer, 43, -1);
  put_bytes(out, 2, trainer);
  std::string norm;
  put_bytes(norm, 1, "identity");
  put_int(norm, 3, add_dummy_prefix);
  put_int(norm, 4, 0);
  put_int(norm, 5, 1);
  put_bytes(out, 3, norm);
  return out;
}

SentencePieceTokenizer::SentencePieceTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp,
                                               std::string source)
    : sp_(std::move(sp)), source_(std::move(source)) {
  // Also user-defined pieces holding a raw space (Gemma 3's runs of 2..31 spaces): SentencePiece
  // escapes spaces to U+2581 before matching, so it could never produce them; llama.cpp matches
  // user-defined pieces literally in the raw text, and so do we for these.
  const std::vector<int32_t> types = piece_types(sp_->serialized_model_proto());
  for (int i = 0; i < sp_->GetPieceSize(); ++i) {
    const std::string& piece = sp_->IdToPiece(i);
    const bool spaced_user = size_t(i) < types.size() && types[size_t(i)] == 4 && piece.find(' ') != std::string::npos;
    if ((sp_->IsControl(i) || spaced_user) && !piece.empty()) controls_.push_back(i);
  }
  std::stable_sort(controls_.begin(), controls_.end(),
                   [&](int32_t a, int32_t b) { return sp_->IdToPiece(a).size() > sp_->IdToPiece(b).size(); });
  // The normaliser's add_dummy_prefix is not exposed without the proto header: a dummy prefix is
  // on exactly when a lone "x" encodes to pieces starting with U+2581.
  std::vector<std::string> probe;
  sp_->Encode("x", &probe).IgnoreError();
  dummy_prefix_ = !probe.empty() && probe[0].rfind(kSpace, 0) == 0;
  bos_id = sp_->bos_id();
  eos_id = sp_->eos_id();
  add_bos = true;  // SentencePiece models (Llama's LlamaTokenizer, llama.cpp) prepend <s> by default
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::from_file(const std::string& path) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  if (auto st = sp->Load(path); !st.ok())
    throw InputError(path + ": not a SentencePiece model (" + status_text(st) + ")");
  return std::unique_ptr<SentencePieceTokenizer>(new SentencePieceTokenizer(std::move(sp), path));
}

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::from_gguf(const GgufFile& f) {
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model != "llama")
    throw InputError(f.path() + ": tokenizer.ggml.model = '" + model + "' is not SentencePiece (allowed: llama)");
  const auto& pieces = f.get_array("tokenizer.ggml.tokens", GgufType::string).strings;
  const auto& scores = f.get_array("tokenizer.ggml.scores", GgufType::f32).floats;
  const auto& types = f.get_array("tokenizer.ggml.token_type", GgufType::i32).ints;
  if (scores.size() != pieces.size() || types.size() != pieces.size())
    throw InputError(f.path() + ": tokenizer.ggml.scores / token_type have " + std::to_string(scores.size()) + " / " +
                     std::to_string(types.size()) + " entries for " + std::to_string(pieces.size()) + " tokens");
  for (size_t i = 0; i < types.size(); ++i)
    if (types[i] < 1 || types[i] > 6)
      throw InputError(f.path() + ": tokenizer.ggml.token_type[" + std::to_string(i) + "] = " +
                       std::to_string(types[i]) + " (allowed: 1..6)");
  const int32_t unk = int32_t(f.get_int("tokenizer.ggml.unknown_token_id", 0));
  const int32_t bos = int32_t(f.get_int("tokenizer.ggml.bos_token_id", 1));
  const int32_t eos = int32_t(f.get_int("tokenizer.ggml.eos_token_id", 2));
  const bool prefix = f.get_int("tokenizer.ggml.add_space_prefix", 1) != 0;
  // SentencePiece wants its unk piece typed UNKNOWN (2); Gemma 3's GGUF types <unk> CONTROL (3)
  // and names it by tokenizer.ggml.unknown_token_id, which is what llama.cpp goes by.
  std::vector<int64_t> sp_types = types;
  if (unk >= 0 && size_t(unk) < sp_types.size() && sp_types[size_t(unk)] == 3) sp_types[size_t(unk)] = 2;
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  if (auto st = sp->LoadFromSerializedProto(sentencepiece_model_proto(pieces, scores, sp_types, prefix, unk, bos, eos));
      !st.ok())
    throw InputError(f.path() + ": the tokenizer.ggml.* vocabulary is not a valid SentencePiece model (" +
                     status_text(st) + ")");
  auto t = std::unique_ptr<SentencePieceTokenizer>(new SentencePieceTokenizer(std::move(sp), f.path()));
  read_gguf_specials(f, *t);
  return t;
}

int64_t SentencePieceTokenizer::vocab_size() const { return sp_->GetPieceSize(); }

int32_t SentencePieceTokenizer::find_token(const std::string& text) const {
  const int id = sp_->PieceToId(text);
  return id == sp_->unk_id() && text != sp_->IdToPiece(id) ? -1 : id;
}

std::vector<int32_t> SentencePieceTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> out;
  auto plain = [&](size_t a, size_t b) {
    if (a == b) return;
    std::vector<int> ids;
    if (auto st = sp_->Encode(std::string_view(text).substr(a, b - a), &ids); !st.ok())
      throw Error(source_ + ": SentencePiece encode failed: " + status_text(st));
    out.insert(out.end(), ids.begin(), ids.end());
  };
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    int32_t hit = -1;
    for (int32_t id : controls_)
      if (text.compare(i, sp_->IdToPiece(id).size(), sp_->IdToPiece(id)) == 0) { hit = id; break; }
    if (hit < 0) { ++i; continue; }
    plain(start, i);
    out.push_back(hit);
    i += sp_->IdToPiece(hit).size();
    start = i;
  }
  plain(start, text.size());
  return out;
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  bool first = true;  // the first text piece: its dummy prefix space is not part of the text
  for (int32_t id : ids) {
    if (id < 0 || id >= sp_->GetPieceSize())
      throw InputError(source_ + ": token id " + std::to_string(id) + " outside the vocabulary (0.." +
                       std::to_string(sp_->GetPieceSize() - 1) + ")");
    const std::string& p = sp_->IdToPiece(id);
    if (sp_->IsControl(id)) {
      out += p;
      continue;
    }
    if (sp_->IsUnknown(id)) {
      out += " \xe2\x81\x87 ";  // SentencePiece's unk_surface, U+2047
      first = false;
      continue;
    }
    if (sp_->IsByte(id)) {  // "<0xNN>"
      out += char(std::stoi(p.substr(3, 2), nullptr, 16));
      first = false;
      continue;
    }
    size_t i = 0;
    if (first && dummy_prefix_ && p.rfind(kSpace, 0) == 0) i = kSpaceBytes;
    first = false;
    for (size_t at; (at = p.find(kSpace, i)) != std::string::npos; i = at + kSpaceBytes) out.append(p, i, at - i) += ' ';
    out.append(p, i, std::string::npos);
  }
  return out;
}

GgufVocabulary SentencePieceTokenizer::gguf_vocabulary() const {
  GgufVocabulary v;
  v.model = "llama";
  v.add_space_prefix = dummy_prefix_;
  for (int i = 0; i < sp_->GetPieceSize(); ++i) {
    v.tokens.push_back(sp_->IdToPiece(i));
    v.scores.push_back(sp_->GetScore(i));
  }
  v.types = piece_types(sp_->serialized_model_proto());
  if (v.types.size() != v.tokens.size())
    throw InputError(source_ + ": the SentencePiece model proto lists " + std::to_string(v.types.size()) + " pieces, not " +
                std::to_string(v.tokens.size()));
  return v;
}

}  // namespace tori::models

