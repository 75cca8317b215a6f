#!/usr/bin/python3
"""`tori plan --pareto` end to end: the JSON and CSV it writes parse and hold the same points, the
frontier it marks is monotone (slower is cheaper) and undominated, every point names a plan the
table for that (chips, batch) ranks as the fastest that fits, and bench/plot-frontier draws a
real PNG from the JSON (and refuses a file with no points).

    pareto_check.py TORI PLOT_FRONTIER
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check(ok, what):
    if not ok:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}")


def main():
    tori, plot = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "p8")
        args = ["plan", "--pareto", "--model", "palm-8b", "--chips", "8,16", "--batches", "1,8,64,512",
                "--dtype", "int8", "--prompt-len", "2048", "--gen-len", "64", "--out", out]
        p = subprocess.run([tori] + args, capture_output=True, text=True)
        check(p.returncode == 0 and "prefill frontier" in p.stdout, f"tori plan --pareto runs\n{p.stderr}")
        doc = json.load(open(out + ".json"))
        pts = doc["points"]
        rows = list(csv.DictReader(open(out + ".csv")))
        check(len(pts) == len(rows) >= 12, f"JSON and CSV hold the same {len(pts)} points")
        for j, c in zip(pts, rows):
            assert c["plan"] == j["plan"] and int(c["batch"]) == j["batch"] and int(c["chips"]) == j["chips"]
            assert abs(float(c["latency_s"]) - j["latency_s"]) <= 1e-6 * j["latency_s"]
            assert (c["frontier"] == "true") == j["frontier"]
        check(True, "every CSV row equals its JSON point")
        for phase in ("prefill", "decode"):
            ph = [q for q in pts if q["phase"] == phase]
            front = sorted((q for q in ph if q["frontier"]), key=lambda q: q["latency_s"])
            check(len(front) >= 2 and all(a["cost_chip_s_per_token"] > b["cost_chip_s_per_token"]
                                          for a, b in zip(front, front[1:])),
                  f"{phase}: the frontier ({len(front)} points) is monotone")
            for q in ph:
                dominated = any(o["latency_s"] <= q["latency_s"] and o["cost_chip_s_per_token"] <= q["cost_chip_s_per_token"]
                                and (o["latency_s"] < q["latency_s"] or o["cost_chip_s_per_token"] < q["cost_chip_s_per_token"])
                                for o in ph)
                assert dominated != q["frontier"], q
            check(True, f"{phase}: on the frontier exactly the undominated points")
        # Each point's plan is the table's fastest fitting plan at that chip count and batch.
        for q in pts[:: max(1, len(pts) // 4)]:
            p = subprocess.run([tori, "--json", "plan", "--model", "palm-8b", "--chips", str(q["chips"]), "--batch",
                                str(q["batch"]), "--dtype", "int8", "--prompt-len", "2048", "--gen-len", "64"],
                               capture_output=True, text=True)
            recs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
            first = [r for r in recs if r["phase"] == q["phase"] and r["fits"]][0]
            check(first["plan"] == q["plan"] and abs(first["latency_s"] - q["latency_s"]) <= 1e-9 * q["latency_s"],
                  f"{q['phase']} {q['chips']} chips batch {q['batch']}: {q['plan']} is the table's fastest that fits")
        p = subprocess.run([sys.executable, plot, out + ".json", "--out", tmp], capture_output=True, text=True)
        png = os.path.join(tmp, "p8.png")
        data = open(png, "rb").read() if os.path.isfile(png) else b""
        check(p.returncode == 0 and data.startswith(PNG_MAGIC) and len(data) > 2048,
              f"bench/plot-frontier draws {png} ({len(data)} bytes)\n{p.stderr}")
        bad = os.path.join(tmp, "bad.json")
        open(bad, "w").write('{"points": []}')
        p = subprocess.run([sys.executable, plot, bad, "--out", tmp], capture_output=True, text=True)
        check(p.returncode != 0 and "no frontier points" in p.stderr, "a file without points is refused")
    print("PASSED")


if __name__ == "__main__":
    main()
