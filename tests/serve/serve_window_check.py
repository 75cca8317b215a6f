#!/usr/bin/env python3
"""`tori serve` with a sliding-window model: SmolLM2-135M-Instruct run StreamingLLM-style with
`--sliding-window 16 --sink-tokens 4` (every layer local: its KV cache keeps the 4 sinks and the
newest positions, 4 + 15 + 64 = 83 slots, compacting when a sequence outgrows them;
docs/multigrain.md), on 1 and 2 ranks, with the `openai` client of serve_check.py.

Prompts of 5 to 78 tokens and 12 new tokens each, so most sequences outgrow the window several
times over and the longest outgrows the cache's slots while it decodes (compaction), its prompt
longer than one in-place step (a widened copy at 1 rank; at 2 ranks --prefill-chunk 48 appends it
in two chunks):

  - every answer equals `tori generate`'s with the same window flags (greedy; one generate run of
    the batch, 1 rank);
  - slot reuse (1 rank): the longest prompt first (slot 0, compacted), then the shortest alone in
    the same slot, whose window state (slots in use, positions dropped) must have been reset;
  - concurrent requests at different positions: all prompts at once, in reverse order (the decode
    steps hold sequences of different lengths, some compacted, some not: the metrics show a decode
    batch of more than one), then the 39-token prompt alone (reuse after a concurrent run).

Prints PASSED at the end; exits 1 on the first failure, 77 (skipped) without the GGUF or the venv.
"""
import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_check  # noqa: E402  (Server, ask, check: the same harness as serve:api/batch/errors)
from serve_check import Server, ask, check  # noqa: E402

WINDOW = ["--sliding-window", "16", "--sink-tokens", "4"]
NEW_TOKENS = 12
STORY = ("Once upon a time in a small village by the sea there lived an old fisherman who every morning "
         "walked down to the harbour, looked at the sky and the colour of the water, listened to the gulls, "
         "and only then decided whether his boat would go out that day or stay tied to the pier. ")
PROMPTS = [  # 5, 17, 39 and 78 tokens
    "The capital of France is",
    "List the days of the week in order, starting with Monday: Monday, Tuesday,",
    STORY.split(", listened")[0] + ", and he said",
    STORY + "One morning the sky was red and the water was very still, and the fisherman said",
]


def generate_all(args):
    """`tori generate`'s answers for every prompt, one batch, 1 rank, the window flags."""
    cmd = [args.tori, "--json", "--threads", "1", *WINDOW, "generate", "--model", args.model,
           "--max-new-tokens", str(NEW_TOKENS), "--temperature", "0"]
    for p in PROMPTS:
        cmd += ["--prompt", p]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    check(out.returncode == 0, f"generate failed: {out.stderr}")
    recs = sorted((json.loads(l) for l in out.stdout.splitlines() if '"sequence"' in l), key=lambda r: r["sequence"])
    check(len(recs) == len(PROMPTS), f"generate gave {len(recs)} answers for {len(PROMPTS)} prompts")
    return [(r["text"], len(r["prompt"])) for r in recs]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tori", required=True)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--model", default=serve_check.GGUF)
    ap.add_argument("--workdir", default=".", help="where the servers' logs go")
    ap.add_argument("--ranks", default="1,2", type=lambda t: [int(x) for x in t.split(",")])
    args = ap.parse_args()
    if not os.path.isfile(args.model):
        print(f"SKIPPED: no model at {args.model} (run ./launch/fetch-model)")
        sys.exit(serve_check.SKIP)
    venv_python = os.path.join(serve_check.VENV, "bin", "python")
    if os.path.realpath(sys.prefix) != os.path.realpath(serve_check.VENV):
        if not os.path.isfile(venv_python):
            print(f"SKIPPED: no venv at {serve_check.VENV} (run ./tests/support/make-venv)")
            sys.exit(serve_check.SKIP)
        os.execv(venv_python, [venv_python, os.path.abspath(__file__)] + sys.argv[1:])

    want = generate_all(args)
    lengths = [n for _, n in want]
    # The longest: longer than one in-place step (83 - 4 - 15 = 64 slots), and past the 83 slots
    # during decode (compaction); the shortest: within the window.
    check(64 < max(lengths) <= 83 < max(lengths) + NEW_TOKENS and lengths[0] < 16,
          f"prompt lengths {lengths}: want one within the window and one that outgrows the cache's 83 slots")
    print(f"ok: generate {' '.join(WINDOW)}: prompts of {lengths} tokens, {NEW_TOKENS} new tokens each", flush=True)
    longest = lengths.index(max(lengths))
    for ranks in args.ranks:
        extra = ["--prefill-chunk", "48"] if ranks > 1 else []
        srv = Server(args, ranks, *WINDOW, *extra)
        client = srv.client()
        run = lambda i: ask(client, srv.model, False, PROMPTS[i], NEW_TOKENS, 0.0, 0, 0)[0]
        what = f"{ranks} rank(s){' ' + ' '.join(extra) if extra else ''}"
        if ranks == 1:  # (CI time: at 2 ranks the reuse after the concurrent requests stands for it)
            for i in (longest, 0):  # one at a time: the shortest takes slot 0 after the longest
                got = run(i)
                check(got == want[i][0], f"{what}: prompt {i} ({lengths[i]} tokens) alone: {got!r} != generate's "
                                         f"{want[i][0]!r}")
            print(f"ok: {what}: the {lengths[longest]}-token prompt, then the {lengths[0]}-token one in the same "
                  f"slot: both == generate's", flush=True)
        with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
            together = list(pool.map(run, range(len(PROMPTS) - 1, -1, -1)))[::-1]
        for i, got in enumerate(together):
            check(got == want[i][0], f"{what}: prompt {i} ({lengths[i]} tokens) among {len(PROMPTS)}: {got!r} != "
                                     f"generate's {want[i][0]!r}")
        peak = int(re.search(r"tori_decode_batch_max (\d+)", srv.metrics()).group(1))
        check(peak > 1, f"{what}: decode batch never held more than one sequence (max {peak})")
        got = run(2)
        check(got == want[2][0], f"{what}: prompt 2 after the concurrent ones: {got!r} != generate's {want[2][0]!r}")
        srv.stop()
        print(f"ok: {what}: {len(PROMPTS)} concurrent answers == generate's (decode batch max {peak}); "
              f"the next request in a reused slot too", flush=True)
    print("PASSED")


if __name__ == "__main__":
    main()
