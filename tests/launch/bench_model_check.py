#!/usr/bin/python3
"""`tori bench model` on a tiny matrix (llama-tiny; f32 and int8; 1 rank x 2 threads and 2 ranks x 1
thread; one prefill test, two decode batches): the structure of every output and the consistency
of every figure.

- JSON lines (stdout with --json, and PREFIX.jsonl): one record per (configuration, dtype, test),
  each with the CSV's columns; len(times_s) = --repeats, median_s = their median, min/max theirs;
  tokens = B·P (prefill) or B·G (decode); tokens_per_s = tokens / median_s; mfu = model_flops /
  (median_s · peak_gflops) with peak_gflops the limits' figure of the dtype's arithmetic (f32 for
  f32, bf16 for int8); mbu = model_bytes / (median_s · read_gbps); a load average in every record.
- model_flops and (f32) model_bytes against an independent count from llama-tiny's shape: every
  matmul (2·rows·K·N; prefill's logits on the last row only), causal attention (4·H·D per query-key
  pair, queries attending themselves), weights read once per decode step plus the KV cache.
- CSV: the header, one row per record, the same values. Markdown (PREFIX.md and stdout without
  --json): one full-table row per record, a ranks-vs-threads row per 2x1 record whose ratio is the
  records' tokens/s ratio, the summary; `--report PREFIX.jsonl` prints the same markdown again.
  PREFIX.png: a non-empty PNG.
"""
import csv
import json
import os
import statistics
import subprocess
import sys

TORI, WORK = sys.argv[1], sys.argv[2]
REPEATS, P, C, G = 3, 24, 5, 4
BATCHES = [1, 3]
CONFIGS = ["1x2", "2x1"]
# llama-tiny (models/presets/llama-tiny.yaml)
L, E, H, K, D, F, V = 4, 256, 8, 2, 32, 768, 512
LAYER = 2 * E * H * D + 2 * E * K * D + 3 * E * F  # q, o; k, v; gate, up, down
COLUMNS = ["model", "dtype", "ranks", "threads", "torus", "plan", "phase", "test", "batch", "prompt_len",
           "context", "gen_len", "tokens", "repeats", "warmup", "median_s", "min_s", "max_s", "tokens_per_s",
           "peak_dtype", "peak_gflops", "mfu", "read_gbps", "mbu", "achieved_gflops", "achieved_gbps",
           "loadavg_1m", "limits_loadavg_1m"]


def fail(msg):
    print("FAILED:", msg)
    sys.exit(1)


def close(a, b, rel=1e-9):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


def attention_flops(batch, new, cached):
    # 4·H·D per (query, key) pair, causal: each new token attends the cache and the new tokens up to itself.
    return L * 4 * H * D * batch * (new * cached + new * (new + 1) // 2)


def expected_work(r):
    B = r["batch"]
    if r["phase"] == "prefill":
        flops = L * 2 * B * r["prompt_len"] * LAYER + 2 * B * E * V + attention_flops(B, r["prompt_len"], 0)
        return flops, None
    flops = bytes_ = 0
    for i in range(r["gen_len"]):
        T = r["context"] + i
        flops += L * 2 * B * LAYER + 2 * B * E * V + attention_flops(B, 1, T)
        bytes_ += 4 * (L * LAYER + E * V) + L * B * K * (T + 1) * D * 2 * 4
    return flops, bytes_


def check_records(recs, configs, dtypes):
    want = len(configs) * len(dtypes) * (1 + len(BATCHES))
    if len(recs) != want or any(r.get("bench") != "model" for r in recs):
        fail(f"{len(recs)} records, expected {want} model records")
    seen = set()
    for r in recs:
        where = f"{r['dtype']} {r['ranks']}x{r['threads']} {r['test']} b{r['batch']}"
        missing = [c for c in COLUMNS if c not in r]
        if missing:
            fail(f"{where}: missing {missing}")
        seen.add((r["dtype"], f"{r['ranks']}x{r['threads']}", r["phase"], r["batch"]))
        t = r["times_s"]
        if len(t) != REPEATS or r["repeats"] != REPEATS or r["warmup"] != 1:
            fail(f"{where}: {len(t)} times for --repeats {REPEATS}")
        if not close(r["median_s"], statistics.median(t)) or r["min_s"] != min(t) or r["max_s"] != max(t):
            fail(f"{where}: median/min/max {r['median_s']}/{r['min_s']}/{r['max_s']} are not those of {t}")
        tokens = r["batch"] * (r["prompt_len"] if r["phase"] == "prefill" else r["gen_len"])
        if r["tokens"] != tokens or not close(r["tokens_per_s"], tokens / r["median_s"]):
            fail(f"{where}: tokens {r['tokens']} (want {tokens}), tokens/s {r['tokens_per_s']} != tokens / median")
        lim = r["limits"]
        peak_dtype = "f32" if r["dtype"] == "f32" else "bf16"
        if r["peak_dtype"] != peak_dtype or not close(r["peak_gflops"], lim["peak_gflops_" + peak_dtype]):
            fail(f"{where}: peak {r['peak_dtype']} {r['peak_gflops']}, want the limits' {peak_dtype} figure")
        if not close(r["read_gbps"], lim["read_gbps"]) or lim["ranks"] != r["ranks"]:
            fail(f"{where}: read_gbps {r['read_gbps']} is not the limits' {lim['read_gbps']}")
        if not (r["peak_gflops"] > 0 and r["read_gbps"] > 0 and r["loadavg_1m"] >= 0 and r["limits_loadavg_1m"] >= 0):
            fail(f"{where}: limits {r['peak_gflops']} GFLOP/s, {r['read_gbps']} GB/s, load {r['loadavg_1m']}")
        if not close(r["mfu"], r["model_flops"] * 1e-9 / r["median_s"] / r["peak_gflops"]) or \
                not close(r["mbu"], r["model_bytes"] * 1e-9 / r["median_s"] / r["read_gbps"]):
            fail(f"{where}: mfu {r['mfu']} / mbu {r['mbu']} are not model work / (median * limit)")
        flops, bytes_ = expected_work(r)
        if not close(r["model_flops"], flops):
            fail(f"{where}: model_flops {r['model_flops']}, independent count {flops}")
        if bytes_ is not None and r["dtype"] == "f32" and not close(r["model_bytes"], bytes_):
            fail(f"{where}: model_bytes {r['model_bytes']}, independent count {bytes_}")
        if r["dtype"] == "int8" and r["phase"] == "decode" and not 0.24 < r["model_bytes"] / bytes_ < 0.3:
            fail(f"{where}: int8 model_bytes {r['model_bytes']} not about a quarter of f32's {bytes_}")
    if len(seen) != want:
        fail(f"records repeat a (dtype, configuration, phase, batch): {len(seen)} distinct of {want}")
    return want


def main():
    os.makedirs(WORK, exist_ok=True)
    prefix = os.path.join(WORK, "bm")
    def matrix(configs, dtypes):
        return ["bench", "model", "--model", "llama-tiny", "--dtypes", ",".join(dtypes), "--ranks-threads",
                ",".join(configs), "--prompt-lens", str(P), "--prefill-batches", "1", "--batches",
                ",".join(map(str, BATCHES)), "--contexts", str(C), "--gen-lens", str(G), "--repeats",
                str(REPEATS), "--warmup", "1", "--limits-gemm", "256", "--limits-stream-mib", "16",
                "--limits-repeats", "2"]
    args = [TORI] + matrix(CONFIGS, ["f32"]) + ["--out", prefix]
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        fail(f"{' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr[-3000:]}")
    md_stdout = res.stdout
    recs = [json.loads(l) for l in open(prefix + ".jsonl") if l.strip()]
    check_records(recs, CONFIGS, ["f32"])
    want = len(recs)
    print(f"ok: {len(recs)} JSON records consistent (tokens/s, medians, MFU, MBU, model work)")

    rows = list(csv.reader(open(prefix + ".csv")))
    if rows[0] != COLUMNS or len(rows) != want + 1:
        fail(f"CSV header {rows[0]} / {len(rows) - 1} rows, expected {COLUMNS} / {want}")
    for r, row in zip(recs, rows[1:]):
        for c, v in zip(COLUMNS, row):
            if isinstance(r[c], str) and v != r[c] or isinstance(r[c], (int, float)) and not close(float(v), r[c]):
                fail(f"CSV {c} = {v!r}, JSON {r[c]!r}")
    print(f"ok: CSV header and {want} rows equal to the JSON records")

    md = open(prefix + ".md").read()
    if md != md_stdout:
        fail("stdout's markdown differs from PREFIX.md")
    lines = md.splitlines()
    full = [l for l in lines if l.startswith("| f32 |")]
    vs = [l for l in lines if " vs 1x2 |" in l]
    if len([l for l in full if " vs " not in l]) < want or len(vs) != want // 2:
        fail(f"markdown: {len(full)} table rows, {len(vs)} ranks-vs-threads rows:\n{md}")
    by = {(r["dtype"], r["test"], r["batch"], f"{r['ranks']}x{r['threads']}"): r for r in recs}
    for l in vs:
        cells = [c.strip() for c in l.strip("|").split("|")]
        a, b = by[(cells[0], cells[1], int(cells[2]), "2x1")], by[(cells[0], cells[1], int(cells[2]), "1x2")]
        if abs(float(cells[5]) - a["tokens_per_s"] / b["tokens_per_s"]) > 0.006:
            fail(f"markdown ratio {cells[5]} is not {a['tokens_per_s']} / {b['tokens_per_s']}")
    print(f"ok: markdown with {len(vs)} ranks-vs-threads ratios equal to the records'")

    # --report: the same tables again from the JSON lines, nothing run.
    res = subprocess.run([TORI, "bench", "model", "--report", prefix + ".jsonl", "--no-png"], capture_output=True,
                         text=True)
    if res.returncode != 0 or res.stdout != md:
        fail(f"--report {prefix}.jsonl printed other tables (exit {res.returncode}):\n{res.stdout}{res.stderr[-1000:]}")
    print("ok: --report prints the same tables from the JSON lines")

    png = open(prefix + ".png", "rb").read()
    if not png.startswith(b"\x89PNG\r\n\x1a\n") or len(png) < 2048:
        fail(f"{prefix}.png is not a non-empty PNG ({len(png)} bytes)")
    print(f"ok: {prefix}.png, {len(png)} bytes")

    # --json (1 rank x 1 thread, int8: MFU against the bf16 peak): the records alone on stdout.
    res = subprocess.run([TORI, "--json"] + matrix(["1x1"], ["int8"]), capture_output=True, text=True)
    out = [json.loads(l) for l in res.stdout.splitlines() if l.strip()]
    if res.returncode != 0:
        fail(f"--json exited {res.returncode}:\n{res.stdout}{res.stderr[-2000:]}")
    check_records(out, ["1x1"], ["int8"])
    print("ok: --json prints the records alone, consistent")

    # A TSVD checkpoint (llama-tiny, ratio 4, every decoder matrix): decode's model_bytes and
    # model_flops are the factors' (Σ r·(T_k + T_n) numbers per matrix, from tsvd.json), not the dense
    # model's, so MBU and MFU hold the run against what it reads and multiplies.
    ckpt = os.path.join(WORK, "tsvd4")
    res = subprocess.run([TORI, "compress", "--model", "llama-tiny", "--ratio", "4", "--out", ckpt],
                         capture_output=True, text=True)
    if res.returncode != 0:
        fail(f"compress exited {res.returncode}:\n{res.stderr[-2000:]}")
    meta = json.load(open(os.path.join(ckpt, "tsvd.json")))
    tk, tn = meta["tile"]
    numbers = sum(sum(r * (tk + tn) for r in m["ranks"]) for m in meta["matrices"].values())
    if len(meta["matrices"]) != 7 * L or not numbers < L * LAYER / 3:
        fail(f"tsvd.json: {len(meta['matrices'])} matrices, {numbers} numbers (dense {L * LAYER})")
    args = [TORI, "--json"] + matrix(["1x1"], ["f32"])
    args[args.index("llama-tiny")] = ckpt
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        fail(f"bench model on {ckpt} exited {res.returncode}:\n{res.stdout}{res.stderr[-2000:]}")
    decodes = [json.loads(l) for l in res.stdout.splitlines() if l.strip() and '"decode"' in l]
    for r in decodes:
        B = r["batch"]
        flops = bytes_ = 0
        for i in range(r["gen_len"]):
            T = r["context"] + i
            flops += 2 * B * (numbers + E * V) + attention_flops(B, 1, T)
            bytes_ += 4 * (numbers + E * V) + L * B * K * (T + 1) * D * 2 * 4
        if not close(r["model_bytes"], bytes_) or not close(r["model_flops"], flops):
            fail(f"TSVD decode batch {B}: model_bytes {r['model_bytes']} / flops {r['model_flops']}, "
                 f"independent count {bytes_} / {flops}")
    if len(decodes) != len(BATCHES):
        fail(f"TSVD run: {len(decodes)} decode records, expected {len(BATCHES)}")
    print(f"ok: a TSVD checkpoint's decode work is its factors' ({numbers} numbers of {L * LAYER})")
    print("PASSED")


if __name__ == "__main__":
    main()
