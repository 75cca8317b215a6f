#!/usr/bin/env python3
"""Speed of `tori generate` on SmolLM2-135M-Instruct (Q4_1 GGUF) next to this machine's limits.

Not a ctest (it takes minutes and its figures depend on the machine): it prints the table of the
docs/measurements/smollm2.md. For each rank count and weight format it runs
`mpirun -np N tori --json generate` three times on one 124-token chat prompt with 32 greedy new
tokens and takes the median of
  prefill tokens/s    = prompt tokens / prefill time,
  decode ms/token     = decode time / decode steps (batch 1: one token per step).
Beside them, from one `tori --json bench kernels --quick` run on the same machine:
  prefill GFLOP/s / peak  = 2 * (decoder matmul parameters * prompt tokens + output projection
                            parameters, applied to the last position only) / prefill time over the oneDNN
                            GEMM peak of the arithmetic the weight format runs in: f32 for f32, bf16
                            for bf16, and f32 for int8 (weight-only int8: the s8 weights are widened
                            and multiplied with f32 activations, so the u8 x s8 GOP/s peak does not
                            apply); attention's FLOPs are left out (<2% at 124 tokens);
  decode GB/s / memory    = weight bytes read per token / decode time over the measured read
                            bandwidth (decode at batch 1 streams every weight once per token; the
                            KV cache adds < 2% at ~150 positions).
Weight bytes per token count the decoder matmuls and the (tied) output projection at the stored
format's size (f32 4 B, bf16 2 B, int8 1 B + one f32 scale per output column); the embedding
lookup reads one row per token and is left out.
Usage: smollm_speed.py --tori build/tori [--ranks 1,2] [--dtypes f32,bf16,int8] [--runs 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smollm_check import default_model  # noqa: E402

# SmolLM2-135M (the GGUF's metadata; smollm_check.py prints the same from transformers).
LAYERS, D_MODEL, HEADS, KV_HEADS, HEAD_DIM, D_FF, VOCAB = 30, 576, 9, 3, 64, 1536, 49152
# "<|im_start|>user\nRead the following passage and summarise it in one sentence.\n\nLarge language
# models are usually served on many accelerator chips at once, ... the best layout gathers weights
# instead.<|im_end|>\n<|im_start|>assistant\n" in SmolLM2's tokenizer: 124 tokens.
PROMPT = ("1,4093,198,6340,260,1695,7429,284,10066,769,357,281,582,6330,30,198,198,28596,1789,2859,359,2007,5019,335,"
          "800,37636,13206,418,2268,28,975,253,2244,13027,6650,7795,511,282,260,10379,5277,260,2674,13842,282,253,986,"
          "7717,30,1073,260,10379,284,260,1162,491,359,15091,277,1699,260,13206,16622,638,1083,655,314,4957,4138,940,"
          "826,601,2489,282,7867,30,1068,1165,31105,260,655,288,1012,260,10379,429,3500,34783,28,588,9840,601,690,540,"
          "13206,24208,260,28270,282,897,6171,9624,43,327,1507,31105,260,20270,34783,28,284,260,1450,10220,37372,10379,"
          "2489,30,2,198,1,520,9531,198")
NEW_TOKENS = 32


def matmul_shapes():
    """(K, N) of every matmul one token goes through: per layer q, k, v, o, gate, up, down; then the
    output projection."""
    per_layer = [(D_MODEL, HEADS * HEAD_DIM), (D_MODEL, KV_HEADS * HEAD_DIM), (D_MODEL, KV_HEADS * HEAD_DIM),
                 (HEADS * HEAD_DIM, D_MODEL), (D_MODEL, D_FF), (D_MODEL, D_FF), (D_FF, D_MODEL)]
    return per_layer * LAYERS + [(D_MODEL, VOCAB)]


def weight_bytes(dtype):
    size = {"f32": 4, "bf16": 2, "int8": 1}[dtype]
    return sum(k * n * size + (4 * n if dtype == "int8" else 0) for k, n in matmul_shapes())


def run_json(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return [json.loads(l) for l in res.stdout.splitlines() if l.startswith("{")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tori", required=True)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--ranks", default="1")
    ap.add_argument("--dtypes", default="f32,bf16,int8")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    prompt_len = len(PROMPT.split(","))
    if not os.path.isfile(args.model):
        sys.exit(f"no model at {args.model} (run ./launch/fetch-model)")

    lim = [r for r in run_json([args.tori, "--json", "bench", "kernels", "--quick", "--kernels", "ops"])
           if r.get("bench") == "machine_limits"][0]
    peak = {"f32": lim["peak_gflops_f32"], "bf16": lim["peak_gflops_bf16"], "int8": lim["peak_gflops_f32"]}
    print(f"machine: {lim['threads']} threads, {lim['cpu_features']}; GEMM peak f32 {peak['f32']:.0f} GFLOP/s, "
          f"bf16 {peak['bf16']:.0f} GFLOP/s; memory read {lim['read_gbps']:.1f} GB/s, triad {lim['triad_gbps']:.1f} "
          f"GB/s; load average {os.getloadavg()[0]:.1f}")
    shapes = matmul_shapes()
    decoder_flops_per_token = 2 * sum(k * n for k, n in shapes[:-1])
    unembed_flops = 2 * shapes[-1][0] * shapes[-1][1]  # prefill unembeds each prompt's last row only
    print("| ranks | weights | prefill tokens/s | prefill GFLOP/s (of peak) | decode ms/token "
          "| weight MB/token | decode GB/s (of read bandwidth) |")
    print("|---|---|---|---|---|---|---|")
    for n in [int(r) for r in args.ranks.split(",")]:
        for dtype in args.dtypes.split(","):
            prefill, decode = [], []
            for _ in range(args.runs):
                cmd = [args.mpirun, "-np", str(n), "--oversubscribe", "--bind-to", "none", args.tori, "--json", "generate", "--model",
                       args.model, "--prompt-tokens", PROMPT, "--max-new-tokens", str(NEW_TOKENS), "--dtype", dtype]
                s = [r for r in run_json(cmd) if "prefill_s" in r][0]
                prefill.append(s["prompt_len"] / s["prefill_s"])
                decode.append(s["decode_s_per_token"])
            tps, step = statistics.median(prefill), statistics.median(decode)
            gflops = (decoder_flops_per_token * tps + unembed_flops * tps / prompt_len) / 1e9
            mb = weight_bytes(dtype) / 1e6
            gbps = weight_bytes(dtype) / step / 1e9
            print(f"| {n} | {dtype} | {tps:.0f} | {gflops:.1f} ({gflops / peak[dtype]:.0%}) | {step * 1e3:.1f} "
                  f"| {mb:.0f} | {gbps:.1f} ({gbps / lim['read_gbps']:.0%}) |", flush=True)


if __name__ == "__main__":
    main()
