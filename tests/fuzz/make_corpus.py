#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz targets: tests/fuzz/corpus/<target>/ (small valid
inputs the fuzzers mutate from; the found_* files there are inputs that found bugs, kept by hand). Plain Python 3, no packages: GGUF and safetensors files are packed
with struct. Re-run after changing it; the output is deterministic.

Usage: tests/fuzz/make_corpus.py
"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "models", "data")
OUT = os.path.join(HERE, "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


# --- GGUF ------------------------------------------------------------------------------------------
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
          U64: "<Q", I64: "<q", F64: "<d"}
GGML = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q8_0": (8, 32, 34),
        "BF16": (30, 1, 2)}  # type id, elements per block, bytes per block


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gvalue(t, v):
    if t == STR:
        return gstr(v)
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gvalue(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


def block_bytes(kind, n_blocks, seed):
    """Deterministic block data with small finite f16 scales (0x2c00 = 1/16)."""
    _, _, bb = GGML[kind]
    out = bytearray()
    for i in range(n_blocks):
        if kind in ("Q4_0", "Q8_0"):
            blk = struct.pack("<H", 0x2C00) + bytes((seed + 7 * i + k) % 256 for k in range(bb - 2))
        elif kind == "Q4_1":
            blk = struct.pack("<HH", 0x2C00, 0xAC00) + bytes((seed + 5 * i + k) % 256 for k in range(bb - 4))
        elif kind == "F32":
            blk = struct.pack("<f", ((seed + i) % 17 - 8) / 8.0)
        else:  # F16, BF16: values near +-1
            blk = struct.pack("<H", (0x3C00 if kind == "F16" else 0x3F80) | (0x8000 if (seed + i) % 3 == 0 else 0))
        out += blk
    return bytes(out)


def gguf(kv, tensors, version=3, alignment=32):
    """kv: [(key, type, value)]; tensors: [(name, dims (ggml order), kind)]."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kv))
    for k, t, v in kv:
        head += gstr(k) + struct.pack("<I", t) + gvalue(t, v)
    data, infos = b"", b""
    for i, (name, dims, kind) in enumerate(tensors):
        tid, be, _ = GGML[kind]
        numel = 1
        for d in dims:
            numel *= d
        data += b"\0" * (-len(data) % alignment)
        infos += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", tid, len(data))
        data += block_bytes(kind, numel // be, i)
    head += infos
    return head + b"\0" * (-len(head) % alignment) + data


def llama_tensors(vocab, E=32, H=2, K=1, F=32):
    """The 2 + 9 tensors of a 1-layer llama GGUF, in several block formats."""
    D = E // H
    return [("token_embd.weight", [E, vocab], "Q4_0"), ("output_norm.weight", [E], "F32"),
            ("blk.0.attn_norm.weight", [E], "F32"), ("blk.0.ffn_norm.weight", [E], "F32"),
            ("blk.0.attn_q.weight", [E, H * D], "Q8_0"), ("blk.0.attn_k.weight", [E, K * D], "Q4_1"),
            ("blk.0.attn_v.weight", [E, K * D], "F16"), ("blk.0.attn_output.weight", [H * D, E], "BF16"),
            ("blk.0.ffn_gate.weight", [E, F], "Q4_0"), ("blk.0.ffn_up.weight", [E, F], "Q4_0"),
            ("blk.0.ffn_down.weight", [F, E], "Q4_0")]


def llama_kv(E=32, H=2, K=1, F=32):
    return [("general.architecture", STR, "llama"), ("general.name", STR, "fuzz-tiny"),
            ("general.alignment", U32, 32), ("llama.block_count", U32, 1), ("llama.embedding_length", U32, E),
            ("llama.feed_forward_length", U32, F), ("llama.attention.head_count", U32, H),
            ("llama.attention.head_count_kv", U32, K), ("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
            ("llama.rope.freq_base", F32, 10000.0), ("llama.context_length", U32, 64)]


def spm_pieces(path):
    """(piece, score, type) of a SentencePiece ModelProto (field 1: pieces {1: piece, 2: score, 3: type})."""
    buf = open(path, "rb").read()

    def varint(b, i):
        v = s = 0
        while True:
            c = b[i]
            i += 1
            v |= (c & 0x7F) << s
            s += 7
            if c < 0x80:
                return v, i

    def fields(b):
        i = 0
        while i < len(b):
            tag, i = varint(b, i)
            f, w = tag >> 3, tag & 7
            if w == 0:
                v, i = varint(b, i)
            elif w == 1:
                v, i = b[i:i + 8], i + 8
            elif w == 2:
                n, i = varint(b, i)
                v, i = b[i:i + n], i + n
            elif w == 5:
                v, i = b[i:i + 4], i + 4
            else:
                raise ValueError("wire type %d" % w)
            yield f, v

    out = []
    for f, v in fields(buf):
        if f == 1:
            p = {1: b"", 2: struct.pack("<f", 0.0), 3: 1}
            p.update(dict(fields(v)))
            out.append((p[1].decode(), struct.unpack("<f", p[2])[0], p[3]))
    return out


def make_gguf():
    tok = json.load(open(os.path.join(DATA, "bpe_tiny_tokenizer.json")))
    ids = list(tok["model"]["vocab"].values()) + [a["id"] for a in tok["added_tokens"]]
    vocab = [""] * (max(ids) + 1)
    for s, i in tok["model"]["vocab"].items():
        vocab[i] = s
    for a in tok["added_tokens"]:
        vocab[a["id"]] = a["content"]
    vocab.append("<|im_end|>")  # ChatML's end of turn, which the tiny tokenizer lacks
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    types = [3 if any(a["id"] == i for a in tok["added_tokens"]) or i == len(vocab) - 1 else 1 for i in range(len(vocab))]
    chatml = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
              "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    kv = llama_kv() + [("tokenizer.ggml.model", STR, "gpt2"), ("tokenizer.ggml.pre", STR, "smollm"),
                       ("tokenizer.ggml.tokens", ARR, (STR, vocab)), ("tokenizer.ggml.token_type", ARR, (I32, types)),
                       ("tokenizer.ggml.merges", ARR, (STR, merges)), ("tokenizer.ggml.bos_token_id", U32, 0),
                       ("tokenizer.ggml.eos_token_id", U32, 0), ("tokenizer.chat_template", STR, chatml)]
    put("gguf", "llama_bpe.gguf", gguf(kv, llama_tensors(len(vocab))))

    pieces = spm_pieces(os.path.join(DATA, "spm_tiny.model"))
    llama2 = "{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}"
    kv = llama_kv() + [("tokenizer.ggml.model", STR, "llama"), ("tokenizer.ggml.tokens", ARR, (STR, [p for p, _, _ in pieces])),
                       ("tokenizer.ggml.scores", ARR, (F32, [s for _, s, _ in pieces])),
                       ("tokenizer.ggml.token_type", ARR, (I32, [t for _, _, t in pieces])),
                       ("tokenizer.ggml.unknown_token_id", U32, 0), ("tokenizer.ggml.bos_token_id", U32, 1),
                       ("tokenizer.ggml.eos_token_id", U32, 2), ("tokenizer.ggml.add_bos_token", BOOL, True),
                       ("tokenizer.ggml.add_space_prefix", BOOL, True), ("tokenizer.chat_template", STR, llama2)]
    put("gguf", "llama_spm.gguf", gguf(kv, llama_tensors(len(pieces))))

    # Every metadata type, nested arrays, version 2, one tensor per block format, no model.
    kv = [("u8", U8, 200), ("i8", I8, -5), ("u16", U16, 60000), ("i16", I16, -300), ("u32", U32, 4000000000),
          ("i32", I32, -7), ("f32", F32, 0.5), ("bool", BOOL, True), ("str", STR, "caf\u00e9"),
          ("u64", U64, 2**63 + 1), ("i64", I64, -2**40), ("f64", F64, 1e-300), ("general.alignment", U32, 64),
          ("ints", ARR, (I32, [1, -2, 3])), ("floats", ARR, (F64, [0.25, -1.0])), ("strs", ARR, (STR, ["a", ""])),
          ("nested", ARR, (ARR, [(U8, [1, 2]), (STR, ["x"])]))]
    tensors = [("t_" + k.lower(), [32, 2], k) for k in GGML]
    put("gguf", "all_types_v2.gguf", gguf(kv, tensors, version=2, alignment=64))


# --- safetensors ------------------------------------------------------------------------------------
def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape)]; data filled with a pattern."""
    head, data = {}, b""
    for name, dt, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        nbytes = n * (4 if dt == "F32" else 2)
        head[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + nbytes]}
        data += bytes((len(data) + k) % 251 for k in range(nbytes))
    if metadata is not None:
        head["__metadata__"] = metadata
    h = json.dumps(head, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def make_safetensors():
    put("safetensors", "three_dtypes.safetensors",
        safetensors([("model.embed_tokens.weight", "F32", [3, 4]), ("model.norm.weight", "F16", [4]),
                     ("lm_head.weight", "BF16", [2, 4])], {"format": "pt"}))
    put("safetensors", "scalar_and_empty.safetensors",
        safetensors([("scalar", "F32", []), ("empty", "F16", [0, 5]), ("cube", "F32", [2, 2, 2])]))
    put("safetensors", "no_tensors.safetensors", safetensors([], {}))


# --- YAML, JSON and text ------------------------------------------------------------------------------
def make_text():
    for p in sorted(os.listdir(os.path.join(ROOT, "models", "presets"))):
        if p.endswith("-tiny.yaml"):
            shutil.copy(os.path.join(ROOT, "models", "presets", p), os.path.join(OUT, "model_yaml", p))
    shutil.copy(os.path.join(DATA, "tok_tiny.yaml"), os.path.join(OUT, "model_yaml", "tok_tiny.yaml"))

    put("run_yaml", "tokens.yaml", "model: llama-tiny\nseed: 1234\ntorus: 2x1x1\nplan: default\ndtype: f32\n"
        "prompts: [[1, 2, 3], [4, 5]]\nmax_new_tokens: 4\nstop_tokens: [0, 2]\n")
    put("run_yaml", "text.yaml", "model: model.gguf\nprompts: [\"Hello\", \"Why?\"]\nchat: true\n"
        "system: \"You are terse.\"\nstop_strings: [\"\\n\\n\"]\ntemperature: 0.8\ntop_k: 40\ntop_p: 0.95\n"
        "sample_seed: 7\n")
    put("run_yaml", "plan.yaml", "torus: auto\nplan: prefill=wg_xyz/batch:xyz,decode=ws2d/batch:xyz\ndtype: int8\n")

    shutil.copy(os.path.join(DATA, "bpe_tiny_tokenizer.json"), os.path.join(OUT, "tokenizer_json", "bpe_tiny.json"))
    put("tokenizer_json", "pair_merges_digits.json", json.dumps({
        "added_tokens": [{"id": 5, "content": "<|im_end|>"}],
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                                {"type": "ByteLevel"}]},
        "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3, "\u0120ab": 4},
                  "merges": [["a", "b"], ["\u0120", "ab"]]}}))

    templates = {
        "smollm2": "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
                   "'<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                   "<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                   "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
                   "{% endif %}",
        "llama3": "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + "
                  "'<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}",
        "llama2": "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + "
                  "messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' %}{% endif %}{{ bos_token + '[INST] ' + "
                  "content | trim + ' [/INST]' }}",
        "zephyr": "{% for message in messages %}{{ '<|user|>\\n' + message['content'] + eos_token }}{{ "
                  "'<|assistant|>\\n' }}{% endfor %}",
    }
    for name, t in templates.items():
        put("chat_template", name + ".txt", t)
        put("chat_template", name + "_fields.txt", "\0".join([t, "What is 2+2?", "Be terse.", "<s>", "</s>"]))

    texts = {
        "english.txt": "Hello, world! It's a test: don't stop; we'll see.\n\nNew paragraph.",
        "digits.txt": "In 2024, 3.14159 and 1,000,000 apples cost $12.50.",
        "unicode.txt": "caf\u00e9 na\u00efve \u00fcber \u4f60\u597d \u3053\u3093\u306b\u3061\u306f \U0001F600 \u2581x",
        "specials.txt": "<|im_start|>user\nHi<|im_end|>\n<|endoftext|><s></s>",
        "whitespace.txt": "  leading\t\ttabs\r\n  trailing   \u00a0\u3000",
    }
    for target in ("bpe_codec", "spm_codec"):
        for name, t in texts.items():
            put(target, name, t)
        put(target, "invalid_utf8.bin", b"ok \xff\xfe \xc3( \xe2\x82 \xf0\x9f\x98 end")


if __name__ == "__main__":
    # Overwrites its own files only: the found_* inputs beside them (inputs that found a bug, kept
    # as regression seeds) stay.
    os.makedirs(os.path.join(OUT, "model_yaml"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "tokenizer_json"), exist_ok=True)
    make_gguf()
    make_safetensors()
    make_text()
