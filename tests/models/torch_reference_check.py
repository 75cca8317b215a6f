#!/usr/bin/env python3
"""Independent check of Tori's Reference model with PyTorch.

Runs `tori dump-weights` and `tori reference --logits-out`, then recomputes every logit with
plain torch ops in float64 from the dumped config.json and weights.safetensors alone: the whole
sequence (prompt + generated tokens) goes through one causal forward pass with no KV cache, so
the cache, the incremental decode and the f32/f64 arithmetic of the Reference are all checked.

Pass: for the prefill logits of every prompt and the logits of every decode step,
    max|tori - torch| / max|torch| <= 1e-4            (REL_TOL below)
and tori's greedy tokens equal torch's argmax. The Reference stores f32 and accumulates in f64;
torch runs in f64 on the same f32 weights, so the expected error is ~1e-6 (f32 rounding of
stored activations across a few layers); 1e-4 leaves two orders of magnitude of headroom while
catching any real mistake (a wrong RoPE angle or mask moves logits by ~1e-1).

Must be run with Debian's /usr/bin/python3 (python3-torch); a missing torch is a failure, not a skip.
"""
import argparse
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from safetensors_io import finish, read_safetensors  # noqa: E402

REL_TOL = 1e-4
PROMPTS = "3,1,4,1,5,9,2,6;27,18,28;100,200,300,400,500,11,12,13,14,15,16;7"
MAX_NEW = 6
SEED = 4242


def norm(cfg, x, w, prefix):
    if cfg["norm"] == "rmsnorm":
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg["norm_eps"]) * w[prefix + ".weight"]
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w[prefix + ".weight"], w[prefix + ".bias"],
                                          cfg["norm_eps"])


def rope(x, theta):
    # x: [heads, T, D]; rotate-half convention: pairs (i, i + D/2), angle = pos * theta^(-2i/D)
    D = x.shape[-1]
    T = x.shape[-2]
    inv = theta ** (-torch.arange(0, D // 2, dtype=torch.float64) * 2.0 / D)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)
    sin = torch.cat([ang.sin(), ang.sin()], -1)
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def forward(cfg, w, tokens):
    """Logits [T, V] for a whole sequence, causal, no cache."""
    E, H, K, D = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"], cfg["d_head"]
    T = len(tokens)
    x = w["embed"][torch.tensor(tokens)]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for l in range(cfg["n_layers"]):
        p = f"layers.{l}."
        h = norm(cfg, x, w, p + "attn_norm")
        q = (h @ w[p + "wq"]).view(T, H, D).transpose(0, 1)
        k = (h @ w[p + "wk"]).view(T, K, D).transpose(0, 1)
        v = (h @ w[p + "wv"]).view(T, K, D).transpose(0, 1)
        q, k = rope(q, cfg["rope_theta"]), rope(k, cfg["rope_theta"])
        k = k.repeat_interleave(H // K, dim=0)  # query head j reads KV head j // (H/K)
        v = v.repeat_interleave(H // K, dim=0)
        att = torch.softmax(q @ k.transpose(1, 2) / D ** 0.5 + mask, dim=-1)
        o = (att @ v).transpose(0, 1).reshape(T, H * D) @ w[p + "wo"]

        def mlp(z):
            if cfg["mlp"] == "swiglu":
                return (torch.nn.functional.silu(z @ w[p + "w_gate"]) * (z @ w[p + "w_in"])) @ w[p + "w_out"]
            return torch.nn.functional.gelu(z @ w[p + "w_in"]) @ w[p + "w_out"]

        if cfg["block"] == "parallel":
            x = x + o + mlp(h)
        else:
            x = x + o
            x = x + mlp(norm(cfg, x, w, p + "ffn_norm"))
    x = norm(cfg, x, w, "final_norm")
    unembed = w["embed"].T if cfg["tied_embeddings"] else w["unembed"]
    return x @ unembed


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tori", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    common = ["--model", args.model, "--seed", str(SEED)]
    subprocess.run([args.tori, "dump-weights", *common, "--out", args.workdir], check=True)
    logits_path = os.path.join(args.workdir, "logits.safetensors")
    subprocess.run([args.tori, "reference", *common, "--prompt-tokens", PROMPTS, "--max-new-tokens",
                    str(MAX_NEW), "--logits-out", logits_path], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(args.workdir, "config.json")) as f:
        cfg = json.load(f)
    w = read_safetensors(os.path.join(args.workdir, "weights.safetensors"))
    got = read_safetensors(logits_path)

    worst = 0.0
    failures = []
    prompts = [[int(t) for t in p.split(",")] for p in PROMPTS.split(";")]
    for b, prompt in enumerate(prompts):
        gen = [int(t) for t in got[f"generated.{b}"].tolist()]
        assert [int(t) for t in got[f"prompt.{b}"].tolist()] == prompt
        ref = forward(cfg, w, prompt + gen[:-1])  # teacher-forced on tori's own tokens
        L = len(prompt)
        e = rel_err(got[f"prefill.{b}"], ref[:L])
        worst = max(worst, e)
        if e > REL_TOL:
            failures.append(f"prefill of prompt {b}: rel err {e:.3g}")
        for s in range(1, MAX_NEW):
            e = rel_err(got[f"decode.{s}"][b], ref[L - 1 + s])
            worst = max(worst, e)
            if e > REL_TOL:
                failures.append(f"decode step {s} of prompt {b}: rel err {e:.3g}")
        torch_tokens = [int(ref[L - 1 + s].argmax()) for s in range(MAX_NEW)]
        if torch_tokens != gen:
            failures.append(f"prompt {b}: tori greedy {gen} != torch argmax {torch_tokens}")
    print(f"{args.model}: {len(prompts)} prompts, {MAX_NEW} new tokens each; "
          f"max relative logits error {worst:.3g} (tolerance {REL_TOL:g})")
    finish(failures)


if __name__ == "__main__":
    main()
