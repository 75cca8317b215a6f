#!/usr/bin/env python3
"""Each rank reads only its shard of a checkpoint: exports llama-rss (~310 MB f32) with
`tori export`, runs `mpirun -np 8 tori generate` on it (2D weight-stationary, so no weight is ever
gathered whole), and checks that the largest peak RSS of any rank stays below 40% of the
checkpoint (a rank's shard is 1/8 of it, ~39 MB, plus the ~40 MB a tori process needs anyway).
"""
import argparse
import json
import os
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--tori", required=True)
ap.add_argument("--mpirun", default="mpirun")
ap.add_argument("--model", required=True)
ap.add_argument("--workdir", required=True)
a = ap.parse_args()
ck = os.path.join(a.workdir, "llama-rss")
subprocess.run([a.tori, "export", "--model", a.model, "--out", ck, "--dtype", "f32"], check=True)
size_mb = sum(os.path.getsize(os.path.join(ck, f)) for f in os.listdir(ck)) / 2**20
res = subprocess.run([a.mpirun, "-np", "8", "--oversubscribe", a.tori, "--json", "generate", "--model", ck,
                      "--plan", "ws2d/heads", "--prompt-tokens", "1,2,3;4,5", "--max-new-tokens", "3"],
                     capture_output=True, text=True)
if res.returncode != 0:
    print(res.stderr[-3000:])
    sys.exit(1)
summary = [json.loads(l) for l in res.stdout.splitlines() if '"peak_rss_mb"' in l][-1]
rss, weights = summary["peak_rss_mb"], summary["weight_mb_per_rank"]
print(f"checkpoint {size_mb:.0f} MiB on disk; per rank: weights {weights:.1f} MiB, peak RSS {rss:.1f} MiB "
      f"({rss / size_mb:.0%} of the checkpoint)")
ok = rss < 0.4 * size_mb
print("PASSED" if ok else "FAILED: a rank's peak RSS is not far below the whole checkpoint")
sys.exit(0 if ok else 1)
