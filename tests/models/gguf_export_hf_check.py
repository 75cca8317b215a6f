#!/usr/bin/env python3
"""`tori export --format gguf` from a Hugging Face directory with tokenizer.json: the GGUF's
tokenizer metadata, re-read by llama.cpp's `gguf` package, equals the vocabulary it came from.

The directory is SmolLM2's tokenizer as Hugging Face ships it, rebuilt from the packaged GGUF
(launch/fetch-model), beside the weights of a small model of the same vocabulary (smollm-tiny's
shape, 2 layers, with SmolLM2's 49152 tokens; synthetic weights keep the test to seconds):
`tori export --format hf` writes config.json + safetensors, and this script writes tokenizer.json (byte-level BPE: the GGUF's tokens as the vocab, its merges in rank order,
its control tokens as special added tokens, Digits + ByteLevel pre-tokenizer as SmolLM2's own) and
tokenizer_config.json (bos/eos tokens, add_bos_token, chat template). Then `tori export --format
gguf` from that directory must give, read back by `gguf.GGUFReader`: tokenizer.ggml.model "gpt2",
pre "smollm", the same tokens, token types and merges, bos/eos ids, add_bos_token and chat
template as the source GGUF (which is what llama.cpp's convert_hf_to_gguf.py writes for SmolLM2).
SKIPPED (exit 77) without the GGUF or the venv (tests/support/make-venv, $TORI_VENV).
"""
import json
import os
import sys

from export_support import SKIP, parse_args, run

KEYS = ["tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
        "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.add_bos_token", "tokenizer.chat_template"]

# Runs in the venv: reads a GGUF's tokenizer fields as plain JSON values.
READ = r"""
import json, sys, gguf
r = gguf.GGUFReader(sys.argv[1])
out = {}
for k, f in r.fields.items():
    if not k.startswith("tokenizer."):
        continue
    t = f.types[-1] if f.types else None
    vals = []
    for i in f.data:
        p = f.parts[i]
        vals.append(bytes(p).decode("utf-8") if t == gguf.GGUFValueType.STRING else p.tolist()[0])
    out[k] = vals if f.types[0] == gguf.GGUFValueType.ARRAY else vals[0]
json.dump(out, sys.stdout)
"""


def main():
    args = parse_args(__doc__, venv=True)
    py = os.path.join(args.venv, "bin", "python")
    if not os.path.isfile(py):
        print(f"SKIPPED: no venv at {args.venv} (tests/support/make-venv): the gguf package reads the files")
        sys.exit(SKIP)
    src = json.loads(run([py, "-c", READ, args.model]))

    tokens, types = src["tokenizer.ggml.tokens"], src["tokenizer.ggml.token_type"]
    shape = os.path.join(args.workdir, "smollm-vocab.yaml")
    with open(shape, "w") as f:
        f.write(run([args.tori, "presets", "smollm-tiny"]).replace("name: smollm-tiny", "name: smollm-vocab")
                .replace("vocab: 512", f"vocab: {len(tokens)}"))
    hf = os.path.join(args.workdir, "smollm-vocab-hf")
    run([args.tori, "export", "--model", shape, "--format", "hf", "--dtype", "bf16", "--out", hf])
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, (t, ty) in enumerate(zip(tokens, types)) if ty == 3]
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": src["tokenizer.ggml.merges"]}}
    with open(os.path.join(hf, "tokenizer.json"), "w") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    with open(os.path.join(hf, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": tokens[src["tokenizer.ggml.bos_token_id"]],
                   "eos_token": tokens[src["tokenizer.ggml.eos_token_id"]],
                   "add_bos_token": src["tokenizer.ggml.add_bos_token"],
                   "chat_template": src["tokenizer.chat_template"]}, f, ensure_ascii=False)

    out = os.path.join(args.workdir, "smollm-vocab-from-hf.gguf")
    run([args.tori, "export", "--model", hf, "--format", "gguf", "--dtype", "f32", "--out", out])
    got = json.loads(run([py, "-c", READ, out]))
    bad = [k for k in KEYS if got.get(k) != src.get(k)]
    if bad:
        for k in bad:
            a, b = src.get(k), got.get(k)
            if isinstance(a, list) and isinstance(b, list):
                i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                print(f"  {k}: {len(a)} vs {len(b)} entries, first difference at {i}: "
                      f"{a[i] if i < len(a) else None!r} vs {b[i] if i < len(b) else None!r}")
            else:
                print(f"  {k}: source {str(a)[:80]!r}, export {str(b)[:80]!r}")
        print(f"FAILED: {len(bad)} tokenizer keys of {out} differ from the vocabulary's source: {', '.join(bad)}")
        sys.exit(1)
    print(f"{len(KEYS)} tokenizer keys equal ({len(tokens)} tokens, {len(src['tokenizer.ggml.merges'])} merges, "
          f"{len(added)} control tokens, pre {got['tokenizer.ggml.pre']!r})")
    print("PASSED")


if __name__ == "__main__":
    main()
