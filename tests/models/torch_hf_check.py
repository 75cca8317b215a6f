#!/usr/bin/env python3
"""Cross-check of `tori generate` on Hugging Face checkpoints against plain PyTorch.

Builds a tiny random Llama-layout checkpoint (grouped-query attention, serial block, RMSNorm,
SwiGLU) and a Falcon-7B-layout one (parallel attention + MLP, multiquery, fused query_key_value,
LayerNorm, GELU) with torch, writes them as config.json + safetensors (f32; the Falcon one split
into several files with an index, bf16 storage for a second Llama copy), runs a plain-torch
implementation of each family written from the Hugging Face layouts (weights [out, in], fused QKV),
and compares with `mpirun -np N tori generate --logits-out` at N = 1, 2 and 8 ranks.

Pass: greedy tokens identical, and for every step max|tori - torch| / max|torch| <= 1e-4
(tori computes in f32, torch in f64 on the same stored values; the layouts only reorder f32 sums,
~1e-6 relative; 1e-4 leaves ~100x headroom and catches any transposed or misplaced weight).
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
from safetensors_io import finish, read_safetensors, write_safetensors  # noqa: E402

REL_TOL = 1e-4
PROMPTS = [[3, 1, 4, 1, 5, 9, 2, 6], [27, 18, 28], [100, 200, 30, 40, 50, 11], [7], [8, 9], [10, 11, 12, 13],
           [250, 251, 252], [60, 61, 62, 63, 64]]
MAX_NEW = 6


def stored(t, dtype):
    """The value tori reads back from storage `dtype`."""
    if dtype == "F32":
        return t
    bits = t.to(torch.float32).numpy().view(np.uint32) >> 16 << 16
    return torch.from_numpy(bits.view(np.float32).copy())


def rope(x, theta):  # x [heads, T, D], rotate-half (HF Llama/Falcon)
    D, T = x.shape[-1], x.shape[-2]
    inv = theta ** (-torch.arange(0, D // 2, dtype=torch.float64) * 2.0 / D)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    return x * cos + torch.cat([-x[..., D // 2:], x[..., : D // 2]], -1) * sin


def attention(q, k, v, D):  # q [H, T, D], k/v [H, T, D]
    T = q.shape[1]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    return torch.softmax(q @ k.transpose(1, 2) / D ** 0.5 + mask, -1) @ v


def llama_forward(c, w, tokens):
    E, H, K = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    D, T = E // H, len(tokens)
    x = w["model.embed_tokens.weight"][torch.tensor(tokens)]
    rms = lambda z, g: z * torch.rsqrt(z.pow(2).mean(-1, keepdim=True) + c["rms_norm_eps"]) * g
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(T, H, D).transpose(0, 1)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(T, K, D).transpose(0, 1)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(T, K, D).transpose(0, 1)
        q, k = rope(q, c["rope_theta"]), rope(k, c["rope_theta"])
        o = attention(q, k.repeat_interleave(H // K, 0), v.repeat_interleave(H // K, 0), D)
        x = x + o.transpose(0, 1).reshape(T, H * D) @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        m = torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T) * (h @ w[p + "mlp.up_proj.weight"].T)
        x = x + m @ w[p + "mlp.down_proj.weight"].T
    x = rms(x, w["model.norm.weight"])
    return x @ w["lm_head.weight"].T


def falcon_forward(c, w, tokens):
    E, H = c["hidden_size"], c["num_attention_heads"]
    D, T = E // H, len(tokens)
    x = w["transformer.word_embeddings.weight"][torch.tensor(tokens)]
    ln = lambda z, p: torch.nn.functional.layer_norm(z, (E,), w[p + ".weight"], w[p + ".bias"], c["layer_norm_epsilon"])
    for l in range(c["num_hidden_layers"]):
        p = f"transformer.h.{l}."
        h = ln(x, p + "input_layernorm")
        qkv = (h @ w[p + "self_attention.query_key_value.weight"].T).view(T, H + 2, D)
        q, k, v = qkv[:, :H].transpose(0, 1), qkv[:, H:H + 1].transpose(0, 1), qkv[:, H + 1:].transpose(0, 1)
        q, k = rope(q, c["rope_theta"]), rope(k, c["rope_theta"])
        o = attention(q, k.expand(H, T, D), v.expand(H, T, D), D).transpose(0, 1).reshape(T, E)
        mlp = torch.nn.functional.gelu(h @ w[p + "mlp.dense_h_to_4h.weight"].T) @ w[p + "mlp.dense_4h_to_h.weight"].T
        x = x + o @ w[p + "self_attention.dense.weight"].T + mlp
    x = ln(x, "transformer.ln_f")
    return x @ w["transformer.word_embeddings.weight"].T  # tied


def make_llama(gen):
    c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
         "num_attention_heads": 8, "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 256,
         "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False}
    E, F, V, KD = 64, 128, 256, 16
    r = lambda *s, scale: torch.randn(*s, generator=gen, dtype=torch.float64) * scale
    w = {"model.embed_tokens.weight": r(V, E, scale=1.0), "model.norm.weight": 1 + r(E, scale=0.1),
         "lm_head.weight": r(V, E, scale=E ** -0.5)}
    for l in range(2):
        p = f"model.layers.{l}."
        w |= {p + "input_layernorm.weight": 1 + r(E, scale=0.1), p + "post_attention_layernorm.weight": 1 + r(E, scale=0.1),
              p + "self_attn.q_proj.weight": r(E, E, scale=E ** -0.5), p + "self_attn.k_proj.weight": r(KD, E, scale=E ** -0.5),
              p + "self_attn.v_proj.weight": r(KD, E, scale=E ** -0.5), p + "self_attn.o_proj.weight": r(E, E, scale=E ** -0.5),
              p + "mlp.gate_proj.weight": r(F, E, scale=E ** -0.5), p + "mlp.up_proj.weight": r(F, E, scale=E ** -0.5),
              p + "mlp.down_proj.weight": r(E, F, scale=F ** -0.5)}
    return c, w


def make_falcon(gen):
    c = {"architectures": ["FalconForCausalLM"], "model_type": "falcon", "hidden_size": 64, "num_attention_heads": 8,
         "num_hidden_layers": 2, "vocab_size": 256, "layer_norm_epsilon": 1e-5, "multi_query": True,
         "parallel_attn": True, "bias": False, "alibi": False, "new_decoder_architecture": False,
         "max_position_embeddings": 64, "rope_theta": 10000.0}
    E, V, D = 64, 256, 8
    r = lambda *s, scale: torch.randn(*s, generator=gen, dtype=torch.float64) * scale
    w = {"transformer.word_embeddings.weight": r(V, E, scale=1.0), "transformer.ln_f.weight": 1 + r(E, scale=0.1),
         "transformer.ln_f.bias": r(E, scale=0.1)}
    for l in range(2):
        p = f"transformer.h.{l}."
        w |= {p + "input_layernorm.weight": 1 + r(E, scale=0.1), p + "input_layernorm.bias": r(E, scale=0.1),
              p + "self_attention.query_key_value.weight": r(E + 2 * D, E, scale=E ** -0.5),
              p + "self_attention.dense.weight": r(E, E, scale=E ** -0.5),
              p + "mlp.dense_h_to_4h.weight": r(4 * E, E, scale=E ** -0.5),
              p + "mlp.dense_4h_to_h.weight": r(E, 4 * E, scale=(4 * E) ** -0.5)}
    return c, w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tori", required=True)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--ranks", default="1,2,8")
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(1234)
    failures = []
    for family, (cfg, w), dtype, split in [("llama", make_llama(gen), "F32", False), ("falcon", make_falcon(gen), "F32", True),
                                           ("llama-bf16", make_llama(gen), "BF16", False)]:
        d = os.path.join(args.workdir, family)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        if split:  # sharded checkpoint: one file per layer-ish chunk plus an index
            names = list(w)
            chunks = [names[i::3] for i in range(3)]
            index = {"metadata": {}, "weight_map": {}}
            for i, chunk in enumerate(chunks):
                fname = f"model-{i + 1:05d}-of-00003.safetensors"
                write_safetensors(os.path.join(d, fname), {n: w[n] for n in chunk}, dtype)
                index["weight_map"] |= {n: fname for n in chunk}
            with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
                json.dump(index, f)
        else:
            write_safetensors(os.path.join(d, "model.safetensors"), w, dtype)
        ws = {k: stored(v, dtype).to(torch.float64) for k, v in w.items()}
        ws = {k: v.to(torch.float32).to(torch.float64) for k, v in ws.items()}  # what f32 storage holds
        fwd = llama_forward if family.startswith("llama") else falcon_forward
        # Plain torch greedy generation: full causal pass per step.
        ref_tokens, ref_logits = [], []
        for p in PROMPTS:
            seq, steps = list(p), []
            for _ in range(MAX_NEW):
                lg = fwd(cfg, ws, seq)[-1]
                steps.append(lg)
                seq.append(int(lg.argmax()))
            ref_tokens.append(seq[len(p):])
            ref_logits.append(steps)
        prompt_arg = ";".join(",".join(map(str, p)) for p in PROMPTS)
        for n in [int(r) for r in args.ranks.split(",")]:
            out = os.path.join(d, f"logits_np{n}.safetensors")
            cmd = [args.mpirun, "-np", str(n), "--oversubscribe", args.tori, "--json", "generate", "--model", d,
                   "--prompt-tokens", prompt_arg, "--max-new-tokens", str(MAX_NEW), "--logits-out", out]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                failures.append(f"{family} np{n}: tori failed:\n{res.stderr[-2000:]}")
                continue
            records = [json.loads(l) for l in res.stdout.splitlines() if l.startswith("{")]
            toks = [r["generated"] for r in records if "sequence" in r]
            got = read_safetensors(out)
            worst = 0.0
            for s in range(MAX_NEW):
                for b in range(len(PROMPTS)):
                    want = ref_logits[b][s]
                    worst = max(worst, float((got[f"step.{s}"][b] - want).abs().max() / want.abs().max()))
            ok = toks == ref_tokens and worst <= REL_TOL
            plan = [r for r in records if "plan" in r][-1]["plan"]
            print(f"{family} np{n} ({plan}): max relative logits error {worst:.3g}, tokens "
                  f"{'match' if toks == ref_tokens else 'DIFFER'} -> {'ok' if ok else 'FAIL'}")
            if not ok:
                failures.append(f"{family} np{n}: rel err {worst:.3g}, tokens {toks} vs torch {ref_tokens}")
    finish(failures)


if __name__ == "__main__":
    main()
