#!/usr/bin/env python3
"""The memory bound (docs/generating.md "Memory"): every rank's peak RSS stays within
1.15 x (its weight bytes in the run's format + its KV cache) + 300 MiB, for each model, rank
count, weight format and plan given. Runs `tori --json generate` (a short prompt, a few tokens)
and reads the summary record: peak_rss_mb (the largest of any rank), weight_mb_per_rank and
kv_cache_mb_per_rank (the largest of any rank).

With --params, the weight bytes of the bound come from a count that does not come from Tori, so
that an inflated figure cannot loosen it: the model's parameters (from its config) / ranks x the
format's bytes, plus the f32 embedding table every format keeps for the vocabulary gather, x 1.1
for padding heads to the shard count and int8 scales (or what Tori reports, if less); over more than
one rank the count includes f32 copies of the shards, which weight-gathered plans (the default's
prefill among them) report, and hold, besides the packed ones (docs/generating.md "Memory"). The
KV cache is what the run allocates: the prompts + 4 new tokens (a few MiB), not the model's whole
context, so the bound no longer has its slack (SmolLM2's 8192 positions were 360 MiB per rank).

    memory_bound_check.py --tori T --mpirun M --case MODEL:RANKS:DTYPE:PLAN ...
Prints one row per case and PASSED, or FAILED with the rows that break the bound.
"""
import argparse
import json
import os
import subprocess
import sys

FORMAT_BYTES = {"f32": 4, "bf16": 2, "int8": 1}
# Two prompts (a batch of 2, so weight-gathered plans over 2 ranks are valid).
PROMPTS = ",".join(str(5 + i) for i in range(24)) + ";" + ",".join(str(40 + i) for i in range(9))

ap = argparse.ArgumentParser()
ap.add_argument("--tori", required=True)
ap.add_argument("--mpirun", default="mpirun")
ap.add_argument("--case", action="append", required=True, help="MODEL:RANKS:DTYPE:PLAN")
ap.add_argument("--params", action="append", default=[],
                help="MODEL=NON_EMBEDDING_PARAMS,EMBEDDING_PARAMS (independent count for the weight check)")
a = ap.parse_args()
params = {}
for p in a.params:
    m, v = p.rsplit("=", 1)
    params[m] = tuple(int(x) for x in v.split(","))

failed = []
print("| model | ranks | dtype | plan | weights MiB counted (reported) | KV MiB | peak RSS MiB | bound MiB | RSS / bound |")
print("|---|---|---|---|---|---|---|---|---|")
for case in a.case:
    model, ranks, dtype, plan = case.rsplit(":", 3)
    ranks = int(ranks)
    if model.endswith(".gguf") and not os.path.exists(model):
        print(f"| {model} | skipped: absent (launch/fetch-model fetches it) |")
        continue
    cmd = [a.mpirun, "-np", str(ranks), "--oversubscribe", a.tori, "--json", "generate", "--model", model,
           "--dtype", dtype, "--plan", plan, "--prompt-tokens", PROMPTS,
           "--max-new-tokens", "4"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        print(res.stderr[-2000:])
        failed.append(f"{case}: exit {res.returncode}")
        continue
    s = [json.loads(l) for l in res.stdout.splitlines() if '"peak_rss_mb"' in l][-1]
    w, kv, rss = s["weight_mb_per_rank"], s["kv_cache_mb_per_rank"], s["peak_rss_mb"]
    counted = w
    if model in params:
        body, embed = params[model]
        # Over more than one rank a weight-gathered layout also holds f32 plain copies of its shards
        # (what it all-gathers): counted too, so the min() below takes what Tori reports for them.
        plain = 4 if ranks > 1 else 0
        counted = min(w, 1.1 * (body * (FORMAT_BYTES[dtype] + plain) + embed * 4) / ranks / 2**20)
    bound = 1.15 * (counted + kv) + 300
    name = model.rsplit("/", 1)[-1]
    print(f"| {name} | {ranks} | {dtype} | {plan} | {counted:.0f} ({w:.0f}) | {kv:.0f} | {rss:.0f} | {bound:.0f} | "
          f"{rss / bound:.2f} |")
    if rss > bound:
        failed.append(f"{case}: peak RSS {rss:.0f} MiB > bound {bound:.0f} MiB")
for f in failed:
    print("FAILED:", f)
if not failed:
    print("PASSED")
sys.exit(1 if failed else 0)
