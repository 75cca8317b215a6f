#!/usr/bin/env python3
"""Independent check of `tori perplexity` on the real model: SmolLM2-135M-Instruct (Q4_1 GGUF).

Tori side: `mpirun -np N tori --json perplexity --check-reference` on the evaluation text
(launch/eval-texts: the Debian FAQ), --ctx CTX (64), the first WINDOWS (2) windows; the record holds the
sharded model's perplexity and the single-process reference's on the same windows (Tori itself
fails the run if any token's log-probability differs between the two by more than 1e-3).

Independent side: Hugging Face transformers 4.45.2 (the venv of tests/support/make-venv) loads
the same GGUF (tests/models/smollm_check.py's load_hf: transformers' own GGUF reader and
dequantiser, llama.cpp's gguf package) AND tokenises the text with its own tokenizer built from
the GGUF's vocabulary, cuts the same windows (ctx tokens each, consecutive, BOS first when the
GGUF asks for it), runs each window in one causal pass and scores its second half (positions
ctx/2 + 1 .. ctx - 1) with an f64 log-softmax of its f32 logits. No line of it is Tori's.

Pass:
  - the whole text's token count is the same on both sides (same tokenisation length);
  - |NLL_reference - NLL_hf| <= 1e-3 nats/token and the same for the sharded NLL, i.e. perplexities
    equal within 0.1 % (relative). Both compute in f32 on the same dequantised weights (Q4_1:
    d * q + m); smollm_check measured their logits 1.4e-6 - 4.4e-6 of max|logit| apart (~1e-4
    absolute at max|logit| ~ 30), which bounds each token's log-softmax difference by ~2e-4 and
    the mean by less (measured: see docs/perplexity.md). A different tokenisation, a window cut
    one token off, the first half scored too, or a missing BOS changes the NLL by 1e-2 - 1 (shown
    there by mutating this side).
SKIPPED (exit 77) without the GGUF (launch/fetch-model), the venv, or the text (launch/eval-texts).
"""
import argparse
import json
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from smollm_check import default_model, default_venv, load_hf, skip  # noqa: E402

NLL_TOLERANCE = 1e-3  # nats per token; see the docstring


def eval_text():
    r = subprocess.run([os.path.join(ROOT, "launch", "eval-texts"), "eval"], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def run_tori(args):
    cmd = [args.mpirun, "-np", str(args.ranks), "--oversubscribe", "--bind-to", "none", args.tori, "--json",
           "perplexity", "--model", args.model, "--text", args.text, "--ctx", str(args.ctx), "--windows",
           str(args.windows), "--batch", str(args.batch), "--check-reference"]
    print("+ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAILED: tori exited {r.returncode}\n{r.stdout}\n{r.stderr[-4000:]}")
    return json.loads([l for l in r.stdout.splitlines() if l.startswith("{")][-1])


def reader_pre(path):
    import gguf

    field = gguf.GGUFReader(path).fields.get("tokenizer.ggml.pre")
    return bytes(field.parts[field.data[0]]).decode() if field else None


def hf_tokens(path, text):
    """The text's ids by transformers' tokenizer from the GGUF, and the BOS id if prompts start with it."""
    import gguf
    from tokenizers import pre_tokenizers
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    # transformers 4.45 builds a GGUF's BPE tokenizer with GPT-2's pre-tokenizer whatever
    # tokenizer.ggml.pre says; SmolLM2's own tokenizer.json ("smollm") splits digits first (see
    # tests/models/data/make_smollm2_known_answers.py). Without this, whitespace before a digit
    # tokenises differently ("\n\n1.1": '\n\n','1' vs '\n','\n','1'): 43713 tokens instead of 43409
    # on the Debian FAQ.
    if reader_pre(path) == "smollm":
        tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    ids = tok(text, add_special_tokens=False)["input_ids"]
    field = gguf.GGUFReader(path).fields.get("tokenizer.ggml.add_bos_token")
    bos = tok.bos_token_id if field and bool(field.parts[field.data[0]][0]) else None
    return ([bos] if bos is not None else []) + ids, bos


def hf_perplexity(model, path, text, ctx, windows, mutate):
    """HF's NLL over the first `windows` windows' second halves (mutate: break it on purpose)."""
    import torch

    ids, bos = hf_tokens(path, text)
    if mutate == "shift":
        ids = ids[1:]
    first = ctx // 2
    nll, count = 0.0, 0
    for w in range(min(windows, len(ids) // ctx)):
        win = ids[w * ctx:(w + 1) * ctx]
        if bos is not None:
            win[0] = bos
        with torch.no_grad():
            logits = model(torch.tensor([win])).logits[0].to(torch.float64)
        lp = torch.log_softmax(logits, dim=-1)
        start = 0 if mutate == "whole" else first
        for l in range(start, ctx - 1):
            nll -= float(lp[l, win[l + 1]])
            count += 1
    return len(ids), nll / count, count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tori", required=True)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=64)
    ap.add_argument("--windows", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--text", default=None, help="the text (default: launch/eval-texts eval)")
    ap.add_argument("--model", default=default_model(), help="the GGUF (default: the launch/fetch-model cache)")
    ap.add_argument("--venv", default=default_venv(), help="the venv of tests/support/make-venv")
    ap.add_argument("--mutate", choices=["none", "shift", "whole"], default="none",
                    help="break the HF side on purpose (shift: windows one token off; whole: score every position)")
    args = ap.parse_args()
    if not os.path.isfile(args.model):
        skip(f"no model at {args.model} (run ./launch/fetch-model)")
    args.text = args.text or eval_text()
    if not args.text or not os.path.isfile(args.text):
        skip("no evaluation text (run ./launch/eval-texts; needs the Debian package debian-faq)")
    venv_python = os.path.join(args.venv, "bin", "python")
    if not os.path.isfile(venv_python):
        skip(f"no venv at {args.venv} (run ./tests/support/make-venv)")
    if os.path.realpath(sys.prefix) != os.path.realpath(args.venv):
        os.execv(venv_python, [venv_python, os.path.abspath(__file__)] + sys.argv[1:])

    rec = run_tori(args)
    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    model = load_hf(args.model)
    n_text, hf_nll, hf_count = hf_perplexity(model, args.model, text, args.ctx, args.windows, args.mutate)
    ref_nll, tori_nll = math.log(rec["reference_ppl"]), rec["nll"]
    print(f"text {args.text}: tori {rec['text_tokens']} tokens, HF {n_text}; {rec['windows']} windows of {args.ctx}, "
          f"{rec['tokens_scored']} tokens scored (HF {hf_count})")
    print(f"NLL: sharded ({rec['ranks']} ranks) {tori_nll:.6f}, reference {ref_nll:.6f}, HF {hf_nll:.6f}; "
          f"PPL {rec['ppl']:.4f} / {rec['reference_ppl']:.4f} / {math.exp(hf_nll):.4f}; largest per-token "
          f"|log p| difference sharded vs reference {rec['max_abs_log_prob_err']:.2e}")
    problems = []
    if rec["text_tokens"] != n_text:
        problems.append(f"token counts differ: tori {rec['text_tokens']}, HF {n_text}")
    if rec["tokens_scored"] != hf_count:
        problems.append(f"scored token counts differ: tori {rec['tokens_scored']}, HF {hf_count}")
    for name, nll in (("reference", ref_nll), ("sharded", tori_nll)):
        if abs(nll - hf_nll) > NLL_TOLERANCE:
            problems.append(f"{name} NLL {nll:.6f} vs HF {hf_nll:.6f}: |difference| {abs(nll - hf_nll):.2e} > "
                            f"{NLL_TOLERANCE:.0e}")
        else:
            print(f"{name} vs HF: |NLL difference| {abs(nll - hf_nll):.2e} <= {NLL_TOLERANCE:.0e}")
    if problems:
        print("FAILED: " + "; ".join(problems))
        return 1
    print("PASSED: tori perplexity == Hugging Face transformers on the same text and windows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
