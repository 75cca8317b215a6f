#!/usr/bin/python3
"""calibrate -> --plan auto -> bench sweep, end to end and small (seconds):

1. `tori calibrate --quick` writes the local profile into a fresh $TORI_PROFILE_DIR, and
   `tori plan --hardware local` reads it back;
2. `mpirun -np 2 tori --json generate --plan auto` logs the planner's choice with its top
   candidates, runs the chosen plan equal to the reference, and reports mfu/mbu in (0, 1]; the
   planner priced the run's own --prefill-chunk (the default 2048, or the flag's);
3. `tori bench sweep` over 1 and 2 chips at one batch writes JSON lines and CSV whose records
   carry a positive measurement and prediction for every (chips, phase, plan), plus a summary;
4. without a local profile, --plan auto calibrates the machine once (rank 0 runs `tori calibrate`)
   and uses it; with a profile directory it cannot write, it fails with one error line.
Prints PASSED at the end; any failed check exits non-zero with the reason.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile


def run(cmd, env, ok=True):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    if ok and p.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def check(cond, what):
    if not cond:
        sys.exit("FAILED: " + what)
    print("ok:", what.split("\n")[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tori", required=True)
    ap.add_argument("--mpirun", required=True)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TORI_PROFILE_DIR=os.path.join(tmp, "profiles"))
        p = run([a.tori, "calibrate", "--quick", "--mpirun", a.mpirun], env)
        path = os.path.join(tmp, "profiles", "local.yaml")
        check(os.path.isfile(path) and path in p.stdout, f"calibrate wrote and printed {path}\n{p.stdout}")
        text = open(path).read()
        check("cpu:" in text and "link_latency_us" in text, "the profile has the cpu calibration and link figures")

        p = run([a.tori, "--json", "plan", "--hardware", "local", "--model", "palm-tiny", "--chips", "2",
                 "--batch", "4", "--prompt-len", "8", "--gen-len", "8", "--dtype", "f32"], env)
        recs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        check(recs and all(r["latency_s"] > 0 for r in recs), "tori plan --hardware local prices every plan")

        p = run([a.mpirun, "-np", "2", "--oversubscribe", a.tori, "--json", "generate", "--plan", "auto",
                 "--prompt-tokens", "1,2,3;4,5;6;7,8,9,10", "--max-new-tokens", "4", "--check-reference"], env)
        check("plan auto:" in p.stderr and p.stderr.count(" ms") >= 2,
              f"generate --plan auto logs its choice and candidates\n{p.stderr}")
        summary = [json.loads(l) for l in p.stdout.splitlines() if '"prefill_s"' in l][0]
        check(summary["reference_match"] is True, "the auto plan generates the reference's tokens")
        check(summary["plan"] in p.stderr, "the plan logged is the plan run")
        check(0 < summary["mfu"] <= 1 and 0 < summary["mbu"], f"mfu/mbu reported: {summary}")
        check("prefill chunk 2048 tokens" in p.stderr, "--plan auto prices the default prefill chunk")
        p = run([a.mpirun, "-np", "2", "--oversubscribe", a.tori, "--json", "generate", "--plan", "auto",
                 "--prefill-chunk", "4", "--prompt-tokens", "1,2,3;4,5;6;7,8,9,10", "--max-new-tokens", "2"], env)
        check("prefill chunk 4 tokens" in p.stderr, f"--plan auto prices the run's own --prefill-chunk\n{p.stderr}")

        prefix = os.path.join(tmp, "sweep")
        p = run([a.tori, "bench", "sweep", "--chips", "1,2", "--batches", "2", "--dtypes", "f32", "--prompt-len", "4",
                 "--repeats", "2", "--rounds", "2", "--refine-rounds", "1", "--refine-above", "0", "--out", prefix,
                 "--mpirun", a.mpirun], env)
        rows = [json.loads(l) for l in open(prefix + ".jsonl")]
        sweep = [r for r in rows if r["bench"] == "sweep"]
        summ = [r for r in rows if r["bench"] == "sweep_summary"]
        check(len(summ) == 1 and summ[0]["points"] == 2, f"one summary over 2 points: {summ}")
        check({r["chips"] for r in sweep} == {1, 2} and {r["phase"] for r in sweep} == {"prefill", "decode"},
              "records for 1 and 2 chips, prefill and decode")
        check(all(r["measured_s"] > 0 and r["predicted_s"] > 0 for r in sweep), "every record measured and predicted")
        for n in (1, 2):
            for ph in ("prefill", "decode"):
                pts = [r for r in sweep if r["chips"] == n and r["phase"] == ph]
                check(sum(r["auto"] for r in pts) == 1 and sum(r["fastest"] for r in pts) == 1,
                      f"one auto and one fastest plan at {n} chip(s), {ph}")
        # --refine-above 0: every (point, phase) with two or more plans times auto against its fastest
        # rival again, head to head; their records keep the first measurement beside the new one.
        for n in (1, 2):
            for ph in ("prefill", "decode"):
                pts = [r for r in sweep if r["chips"] == n and r["phase"] == ph]
                refined = [r for r in pts if r["refined"]]
                want = 2 if len(pts) >= 2 else 0
                check(len(refined) == want and any(r["auto"] for r in refined) == (want > 0),
                      f"{n} chip(s), {ph}: auto and its rival refined ({len(pts)} plans): {refined}")
                check(all(r["first_measured_s"] > 0 for r in pts) and
                      all(r["first_measured_s"] == r["measured_s"] for r in pts if not r["refined"]),
                      "first_measured_s: the first measurement, equal to measured_s where not refined")
        check(summ[0]["refined"] == sum(1 for n in (1, 2) for ph in ("prefill", "decode")
                                        if len([r for r in sweep if r["chips"] == n and r["phase"] == ph]) >= 2)
              and 0 <= summ[0]["auto_within_10pct_first"] <= 1, f"summary counts the refinements: {summ}")
        with open(prefix + ".csv") as f:
            table = list(csv.DictReader(f))
        check(len(table) == len(sweep) and "predicted_s" in table[0], "the CSV has a row per record")
        check("[sweep" in p.stderr, "progress on stderr")

        # First use: no local profile -> rank 0 calibrates this machine once, the plan is chosen on
        # it, and the next run reads it without calibrating again. $TORI_AUTO_CALIBRATE=quick runs
        # `tori calibrate --quick` (the default, a full one, takes ~90 s here and differs only in its
        # repeats); =off refuses with one error line; anything else is one error line too.
        first = os.path.join(tmp, "first-use")
        gen = [a.mpirun, "-np", "2", "--oversubscribe", a.tori, "--json", "generate", "--plan", "auto",
               "--prompt-tokens", "1,2,3;4,5", "--max-new-tokens", "2", "--check-reference"]
        for how, allowed in (("off", "run `tori calibrate` first"), ("sometimes", "(allowed: full, quick, off)")):
            p = run(gen, dict(os.environ, TORI_PROFILE_DIR=first, TORI_AUTO_CALIBRATE=how), ok=False)
            lines = [l for l in p.stderr.splitlines() if l.startswith("tori: error: --plan auto")]
            check(p.returncode != 0 and len(lines) == 1 and "TORI_AUTO_CALIBRATE" in lines[0] and allowed in lines[0]
                  and "calibrating" not in p.stderr and not os.path.exists(first) and '"bench"' not in p.stdout,
                  f"TORI_AUTO_CALIBRATE={how} without a profile: one error line, nothing calibrated\n{p.stderr}")
        env2 = dict(os.environ, TORI_PROFILE_DIR=first, TORI_AUTO_CALIBRATE="quick")
        p = run(gen, env2)
        check(p.stderr.count("calibrating it once") == 1 and "calibrate --quick" in p.stderr
              and os.path.isfile(os.path.join(first, "local.yaml")),
              f"--plan auto without a profile calibrates once and writes it\n{p.stderr}")
        check("--quick" in open(os.path.join(first, "local.yaml")).read(), "... a quick calibration, as asked")
        summary = [json.loads(l) for l in p.stdout.splitlines() if '"prefill_s"' in l][0]
        check(summary["reference_match"] is True and "plan auto:" in p.stderr,
              "... then picks a plan on it and generates the reference's tokens")
        p = run(gen, env2)
        check("calibrating" not in p.stderr and "plan auto:" in p.stderr, "the next run reads it, no calibration")

        # A profile directory that cannot be written: one error line from the job, every rank out.
        blocker = os.path.join(tmp, "a-file")
        open(blocker, "w").close()
        env3 = dict(os.environ, TORI_PROFILE_DIR=os.path.join(blocker, "sub"))
        p = run(gen, env3, ok=False)
        lines = [l for l in p.stderr.splitlines() if l.startswith("tori: error: --plan auto")]
        check(p.returncode != 0 and len(lines) == 1 and "TORI_PROFILE_DIR" in lines[0] and '"bench"' not in p.stdout,
              f"--plan auto with an unwritable profile directory: one error line naming $TORI_PROFILE_DIR\n{p.stderr}")
    print("PASSED")


if __name__ == "__main__":
    main()
