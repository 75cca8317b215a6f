#!/usr/bin/env python3
"""`tori bench collectives` over the namespace cluster's rate-limited TCP links, next to the
configured tbf rate and to the link model (`--link-gbps`) at the same rate on one host.

Run through tests/cluster/on-cluster (which sets Open MPI's settings for the cluster and gives the
hostfile). Three steps:
  1. the cluster: launch/tori-mpirun --hostfile H --torus T bench collectives --json, one rank per
     host, with the bytes each host's tbf qdiscs passed read from `launch/cluster status` before
     and after;
  2. with --link-model: the same collectives on this one host (shared memory, the cluster's
     Open MPI settings removed) with --link-gbps RATE, the link model sleeping to that rate;
  3. one table: per op, algorithm and size, the bus bandwidth (what each rank's link carries per
     second: gbps x (G-1)/G, x 2(G-1)/G for all_reduce) measured over the links and modelled.

Pass: every host's tbf qdiscs passed traffic both ways (at least the largest size: the bench
really crossed the shaped links), and no record of Tori's own ring algorithms (ring, bidir) or of
ppermute has a bus bandwidth above RATE x (1 + tolerance) on the links. Each host has one link,
shaped both ways, which all of its sends share (both directions of a bidirectional ring too), so a
ring can carry at most RATE per rank, after the token bucket's burst (1 ms of traffic, at least
128 KiB, refilled between repeats: a transfer of B bytes takes at least (B - burst) / RATE); the
tolerance (default 15%) covers timing noise. MPI-native records are reported, not checked (their
algorithm, and so the traffic per link, is Open MPI's choice). The link model is reported, not
checked against the links: the comparison is the measurement (docs/measurements/cluster.md).
"""
import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLUSTER = os.path.join(ROOT, "launch", "cluster")
TORI_MPIRUN = os.path.join(ROOT, "launch", "tori-mpirun")
# What `launch/cluster env` sets: removed for the run on one host.
CLUSTER_ENV = ("OMPI_MCA_plm_rsh_agent", "OMPI_MCA_pml", "OMPI_MCA_btl", "OMPI_MCA_btl_tcp_if_include",
               "OMPI_MCA_oob_tcp_if_include", "OMPI_MCA_mpi_yield_when_idle", "MPIRUN_EXTRA")


def tbf_bytes():
    """{host: (sent, received)} bytes through each host's tbf qdiscs (launch/cluster status)."""
    out = subprocess.run([CLUSTER, "status"], check=True, capture_output=True, text=True).stdout
    counts = {}
    for line in out.splitlines():
        m = re.match(r"^(tori-h\d+)\s+\S+\s+\S+\s+(\d+)\s+(\d+)\s", line)
        if m:
            counts[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return counts


def bench(args, hostfile, link_gbps, env):
    cmd = [TORI_MPIRUN, "--torus", args.torus]
    if hostfile:
        cmd += ["--hostfile", hostfile]
    cmd += ["bench", "collectives", "--json", "--sizes", args.sizes, "--ops", args.ops, "--algos", args.algos,
            "--repeats", str(args.repeats)]
    if link_gbps:
        cmd += ["--link-gbps", str(link_gbps)]
    print("+ " + " ".join(cmd), flush=True)
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    if run.returncode != 0:
        sys.exit(f"FAILED: exit {run.returncode}\n{run.stdout}\n{run.stderr}")
    records = [json.loads(l) for l in run.stdout.splitlines() if l.startswith("{")]
    if not records:
        sys.exit(f"FAILED: no records\n{run.stdout}\n{run.stderr}")
    return {(r["op"], r["algo"], r["axes"], r["bytes"]): r for r in records}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tori", required=True)
    ap.add_argument("--hostfile", required=True)
    ap.add_argument("--gbps", type=float, required=True, help="the cluster's tbf rate (launch/cluster up --gbps)")
    ap.add_argument("--torus", default="2x1x1")
    ap.add_argument("--sizes", default="1MiB,4MiB")
    ap.add_argument("--ops", default="all_gather,reduce_scatter,all_reduce,ppermute")
    ap.add_argument("--algos", default="ring,bidir,mpi")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tolerance", type=float, default=0.15)
    ap.add_argument("--link-model", action="store_true", help="also run on one host with --link-gbps")
    ap.add_argument("--timeout", type=float, default=240)
    args = ap.parse_args()
    env = dict(os.environ, TORI=args.tori)

    before = tbf_bytes()
    links = bench(args, args.hostfile, 0, env)
    after = tbf_bytes()
    model = {}
    if args.link_model:
        local = {k: v for k, v in env.items() if k not in CLUSTER_ENV}
        model = bench(args, None, args.gbps, local)

    # tbf lets a burst of one bucket (launch/cluster: 1 ms of traffic, at least 128 KiB) through at
    # once, so a transfer of B bytes on a link takes at least (B - burst) / rate.
    burst = max(131072.0, args.gbps * 1e9 / 1000)

    def limit(rec):
        link_bytes = rec["bus_gbps"] * 1e9 * rec["median_s"]
        if link_bytes <= burst:
            return float("inf")
        return link_bytes / ((link_bytes - burst) / (args.gbps * 1e9)) / 1e9 * (1 + args.tolerance)
    failures = []
    largest = max(k[3] for k in links)
    with open(args.hostfile) as f:
        used = [line.split()[0] for line in f if line.strip() and not line.startswith("#")]
    print(f"\ntbf rate {args.gbps:g} GB/s per host link and direction; torus {args.torus}, one rank per host ({len(used)} hosts)")
    print(f"{'host':<9} {'sent_MB':>10} {'received_MB':>12}")
    for h in used:
        sent = after.get(h, (0, 0))[0] - before.get(h, (0, 0))[0]
        recv = after.get(h, (0, 0))[1] - before.get(h, (0, 0))[1]
        print(f"{h:<9} {sent / 1e6:10.1f} {recv / 1e6:12.1f}")
        if min(sent, recv) < largest:
            failures.append(f"{h}: only {sent} bytes sent / {recv} received through its tbf qdiscs")
    print(f"\n{'op':<15} {'algo':<6} {'axes':<4} {'bytes':>9} {'tbf_GB/s':>9} {'links_bus_GB/s':>15} "
          f"{'model_bus_GB/s':>15} {'links/tbf':>9}")
    for key in sorted(links, key=lambda k: (k[3], k[0], k[1], k[2])):
        op, algo, axes, nbytes = key
        bus = links[key]["bus_gbps"]
        m = model.get(key, {}).get("bus_gbps")
        mtext = f"{m:15.4f}" if m is not None else f"{'-':>15}"
        print(f"{op:<15} {algo:<6} {axes:<4} {nbytes:9d} {args.gbps:9.3f} {bus:15.4f} {mtext} {bus / args.gbps:9.2f}")
        if (algo in ("ring", "bidir") or op == "ppermute") and bus > limit(links[key]):
            failures.append(f"{op} {algo} {axes} {nbytes} B: {bus:.4f} GB/s over links of {args.gbps} GB/s "
                            f"(> {limit(links[key]):.4f}: did the traffic bypass the tbf qdiscs?)")
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"\nPASSED: {len(links)} records, none above the tbf rate + {args.tolerance:.0%} (after the bucket's burst)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
