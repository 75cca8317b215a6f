#!/usr/bin/env python3
"""`tori export --format gguf` round trip on the real model: tokenizer metadata and generation.

1. SmolLM2-135M-Instruct (Q4_1 GGUF, launch/fetch-model) exported as F32 GGUF: the exported file
   carries the source's tokenizer.* metadata verbatim (compared key by key with the `gguf`
   package's reader when the venv is there, else by Tori's own reading of the prompt), and
   `tori generate --dtype f32` on it gives the same prompt ids, tokens and text as on the source for
   a chat prompt and a prose prompt (Q4_1 dequantises exactly into F32, so any difference is an
   export error: a wrong Q/K permutation or a missing tokenizer key fails here).
2. llama.cpp on the exports (its own prompt and greedy token ids equal Tori's) is
   tests/models/gguf_export_llama_check.py (models:gguf_export_llama_check), which needs llama.cpp.
SKIPPED (exit 77) as a whole only when the SmolLM2 GGUF is absent.
"""
import json
import os
import subprocess
import sys

from export_support import parse_args, run

PROMPTS = ["The capital of France is", "def fibonacci(n):\n   "]
MAX_NEW = 12


def tori_generate(tori, model, prompt):
    out = run([tori, "--json", "generate", "--model", model, "--dtype", "f32", "--prompt", prompt,
               "--max-new-tokens", str(MAX_NEW)])
    rec = [json.loads(l) for l in out.splitlines() if l.startswith("{") and '"sequence"' in l][0]
    return rec["prompt"], rec["generated"], rec["text"]


def tokenizer_keys_equal(src, dst, venv):
    """The tokenizer.* fields of both files, read by llama.cpp's own `gguf` package (if present)."""
    py = os.path.join(venv, "bin", "python")
    if not os.path.isfile(py):
        return "gguf package absent (no venv): key-by-key comparison skipped"
    code = (
        "import sys, gguf\n"
        "def keys(p):\n"
        "    r = gguf.GGUFReader(p)\n"
        "    return {k: [bytes(f.parts[i]).hex() for i in f.data] + [str(f.types)] for k, f in r.fields.items()"
        " if k.startswith('tokenizer.')}\n"
        "a, b = keys(sys.argv[1]), keys(sys.argv[2])\n"
        "bad = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))\n"
        "print(len(a), 'tokenizer keys;', 'differ: ' + ', '.join(bad) if bad else 'all equal')\n"
        "sys.exit(1 if bad or not a else 0)\n")
    res = subprocess.run([py, "-c", code, src, dst], capture_output=True, text=True)
    if res.returncode != 0:
        print(f"FAILED: tokenizer metadata of {dst} differs from {src}: {res.stdout}{res.stderr[-2000:]}")
        sys.exit(1)
    return res.stdout.strip()


def main():
    args = parse_args(__doc__, venv=True)
    exported = os.path.join(args.workdir, "smollm2-f32.gguf")
    run([args.tori, "export", "--model", args.model, "--format", "gguf", "--dtype", "f32", "--out", exported])
    print("tokenizer metadata:", tokenizer_keys_equal(args.model, exported, args.venv))
    for prompt in PROMPTS:
        want = tori_generate(args.tori, args.model, prompt)
        got = tori_generate(args.tori, exported, prompt)
        if got != want:
            print(f"FAILED: prompt {prompt!r}: source {want}, exported {got}")
            sys.exit(1)
        print(f"prompt {prompt!r}: ids {got[0]} -> {got[1]} {got[2]!r}, equal on source and export")

    print("PASSED")


if __name__ == "__main__":
    main()
