#!/usr/bin/env python3
"""llama.cpp loads and runs Tori's GGUF exports and generates the same greedy tokens as Tori.

Needs a built llama.cpp checkout: $TORI_LLAMA_SIMPLE (or --llama-simple) names its `llama-simple`
binary (CHECKOUT/build/bin/llama-simple); the checkout's include/llama.h and the libraries beside
the binary build tests/models/llama_greedy_ids.cpp, which prints llama.cpp's own prompt and greedy
token ids. SKIPPED (exit 77) without it (CI has no llama.cpp) or without SmolLM2's GGUF.

1. SmolLM2-135M-Instruct (Q4_1 GGUF, launch/fetch-model) exported as F32 GGUF, with the source's
   tokenizer: for each prompt, llama.cpp's prompt ids (its own tokenizer, from the exported metadata)
   and 12 greedy ids equal Tori's on the same file (`tori generate --dtype f32`). F32 so that both
   multiply the same weights; Q4_1 dequantises exactly into F32.
2. llama-tiny (synthetic weights) exported as F32 GGUF with the placeholder vocabulary: llama.cpp
   loads it, encodes "Hello" byte by byte, and its 8 greedy ids equal Tori's from the same prompt ids
   (Tori treats the placeholder as no tokenizer: prompts are ids).
"""
import json
import os
import sys

from export_support import ROOT, SKIP, parse_args, run

PROMPTS = ["The capital of France is", "def fibonacci(n):\n   "]
MAX_NEW = 12



def tori_ids(tori, model, max_new, prompt=None, prompt_ids=None):
    args = [tori, "--json", "generate", "--model", model, "--dtype", "f32", "--max-new-tokens", str(max_new)]
    args += ["--prompt", prompt] if prompt is not None else ["--prompt-tokens", ",".join(map(str, prompt_ids))]
    recs = [json.loads(l) for l in run(args).splitlines() if l.startswith("{") and '"sequence"' in l]
    return recs[0]["prompt"], recs[0]["generated"]


def llama_ids(helper, model, max_new, prompt):
    out = run([helper, model, str(max_new), prompt])
    rec = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    return rec["prompt"], rec["generated"]


def main():
    args = parse_args(__doc__, extra=[("--llama-simple", os.environ.get("TORI_LLAMA_SIMPLE", "")), ("--cxx", "c++")])
    if not args.llama_simple or not os.path.isfile(args.llama_simple):
        print("SKIPPED: no llama.cpp (set TORI_LLAMA_SIMPLE to a built checkout's build/bin/llama-simple)")
        sys.exit(SKIP)
    bindir = os.path.dirname(os.path.abspath(args.llama_simple))
    checkout = os.path.dirname(os.path.dirname(bindir))
    if not os.path.isfile(os.path.join(checkout, "include", "llama.h")):
        print(f"SKIPPED: {checkout}/include/llama.h not found beside {args.llama_simple}")
        sys.exit(SKIP)
    helper = os.path.join(args.workdir, "llama_greedy_ids")
    run([args.cxx, "-std=c++17", "-O1", "-I" + os.path.join(checkout, "include"),
         "-I" + os.path.join(checkout, "ggml", "include"), os.path.join(ROOT, "tests", "models", "llama_greedy_ids.cpp"),
         "-L" + bindir, "-lllama", "-lggml", "-lggml-base", "-Wl,-rpath," + bindir, "-o", helper])

    exported = os.path.join(args.workdir, "smollm2-f32.gguf")
    run([args.tori, "export", "--model", args.model, "--format", "gguf", "--dtype", "f32", "--out", exported])
    for prompt in PROMPTS:
        want = tori_ids(args.tori, exported, MAX_NEW, prompt=prompt)
        got = llama_ids(helper, exported, MAX_NEW, prompt)
        if got != want:
            print(f"FAILED: {prompt!r} on {exported}: llama.cpp prompt/greedy ids {got}, Tori {want}")
            sys.exit(1)
        print(f"SmolLM2 export: {prompt!r}: prompt ids {got[0]}, greedy {got[1]}: llama.cpp = Tori")

    tiny = os.path.join(args.workdir, "llama-tiny-f32.gguf")
    run([args.tori, "export", "--model", "llama-tiny", "--format", "gguf", "--dtype", "f32", "--out", tiny])
    ids, gen = llama_ids(helper, tiny, 8, "Hello")
    if len(gen) != 8:
        print(f"FAILED: llama.cpp generated {len(gen)} of 8 tokens from {tiny}")
        sys.exit(1)
    want = tori_ids(args.tori, tiny, 8, prompt_ids=ids)
    if (ids, gen) != want:
        print(f"FAILED: placeholder export {tiny}: llama.cpp {ids} -> {gen}, Tori {want}")
        sys.exit(1)
    print(f"llama-tiny export (placeholder vocabulary): 'Hello' -> {ids} -> {gen}: llama.cpp = Tori")
    print("PASSED")


if __name__ == "__main__":
    main()
