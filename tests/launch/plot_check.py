#!/usr/bin/python3
"""bench/plot on the committed sweep sample (bench/sweep_sample.jsonl, a real `tori bench sweep`
run) writes every PNG, each a real, non-empty PNG; a file with no sweep records is refused."""
import os
import subprocess
import sys
import tempfile

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A matplotlib figure with axes, points and a legend at dpi 80 is tens of KB; 2 KB catches an
# empty or truncated file without depending on font rendering.
MIN_BYTES = 2048


def main():
    plot, sample = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.run([sys.executable, plot, sample, "--out", tmp], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"FAILED: bench/plot exited {p.returncode}: {p.stderr}")
        names = ["pareto_prefill", "pareto_decode", "crossover", "predicted", "comm_share"]
        for n in names:
            path = os.path.join(tmp, n + ".png")
            if not os.path.isfile(path):
                sys.exit(f"FAILED: {path} not written")
            data = open(path, "rb").read()
            if not data.startswith(PNG_MAGIC) or len(data) < MIN_BYTES:
                sys.exit(f"FAILED: {path} is not a non-empty PNG ({len(data)} bytes)")
            print(f"ok: {n}.png {len(data)} bytes")
        bad = os.path.join(tmp, "bad.jsonl")
        open(bad, "w").write('{"bench":"overlap"}\n')
        p = subprocess.run([sys.executable, plot, bad, "--out", tmp], capture_output=True, text=True)
        if p.returncode == 0 or "no sweep records" not in p.stderr:
            sys.exit(f"FAILED: a file without sweep records was not refused: {p.stderr}")
        print("ok: a file without sweep records is refused")
    print("PASSED")


if __name__ == "__main__":
    main()
