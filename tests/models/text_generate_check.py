"""End-to-end text in, text out: `tori generate --prompt TEXT` on a Hugging Face checkpoint with a
SentencePiece tokenizer.model (tok_tiny.yaml exported with synthetic weights + data/spm_tiny.model
+ a tokenizer_config.json with a Llama-2 chat template). Checks, on 1 and 2 ranks:
  - prompts are encoded with BOS (add_bos_token) and the JSON records carry text, ids, finish;
  - 2 ranks give the same ids and text as 1 rank (every rank decodes; stop decisions agree);
  - --stop S ends the sequence once its text holds S and cuts S and what follows: the text is the
    unstopped text up to S's first occurrence, its ids a prefix of the unstopped ones, fewer; the
    reference replay (--check-reference) stops identically; a run YAML does the same as the flags;
  - --chat renders the Llama-2 template ([INST] ... [/INST], <<SYS>> with --system);
  - the plain-text output prints each prompt and its text, streamed or not; errors name the flag.
Prints PASSED on success."""
import argparse
import json
import os
import shutil
import subprocess
import sys

p = argparse.ArgumentParser()
p.add_argument("--tori", required=True)
p.add_argument("--mpirun", required=True)
p.add_argument("--workdir", required=True)
a = p.parse_args()
here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, "data")
ckpt = os.path.join(a.workdir, "tok-tiny")
shutil.rmtree(a.workdir, ignore_errors=True)
os.makedirs(a.workdir)


def run(args, np=1, expect_ok=True):
    cmd = [a.mpirun, "-np", str(np), "--oversubscribe", a.tori] + args if np > 1 else [a.tori] + args
    r = subprocess.run(cmd, capture_output=True, text=True, errors="strict", timeout=120)
    if expect_ok and r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def records(args, np=1):
    out = run(["--json", "generate", "--model", ckpt] + args, np).stdout
    recs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return [r for r in recs if "sequence" in r]


def check(cond, what):
    if not cond:
        sys.exit("FAILED: " + what)


run(["export", "--model", os.path.join(data, "tok_tiny.yaml"), "--out", ckpt])
shutil.copy(os.path.join(data, "spm_tiny.model"), os.path.join(ckpt, "tokenizer.model"))
with open(os.path.join(ckpt, "tokenizer_config.json"), "w") as f:
    json.dump({"add_bos_token": True, "bos_token": "<s>", "eos_token": "</s>",
               "chat_template": "{% if messages[0]['role'] == 'system' %}{% set s = '<<SYS>>\\n' + messages[0]"
                                "['content'] + '\\n<</SYS>>\\n\\n' %}{% endif %}{{ bos_token + '[INST] ' + "
                                "content + ' [/INST]' }}"}, f)

prompts = ["Hello world", "The quick brown fox"]
base = ["--max-new-tokens", "24"] + [x for t in prompts for x in ("--prompt", t)]
one = records(base)
two = records(base, np=2)
check(len(one) == 2, f"two records, got {one}")
for r, t in zip(one, prompts):
    check(r["prompt_text"] == t, f"prompt_text {r}")
    check(r["prompt"][0] == 1 and len(r["prompt"]) > 2, f"BOS then the text's ids: {r['prompt']}")
    check(isinstance(r["text"], str) and r["finish"] in ("length", "stop_token"), f"text and finish: {r}")
check([(r["generated"], r["text"]) for r in one] == [(r["generated"], r["text"]) for r in two],
      f"1 rank vs 2 ranks differ:\n{one}\n{two}")

# A stop string taken from the middle of the first sequence's text.
text = one[0]["text"]
k = next((i for i in range(2, len(text) - 3) if text[i:i + 3].strip() == text[i:i + 3]
          and text.find(text[i:i + 3]) == i), None)
check(k is not None, f"no usable stop string in {text!r}")
stop = text[k:k + 3]
for np in (1, 2):
    cut = records(base + ["--stop", stop, "--stop", "never-appears-zq"], np)
    check(cut[0]["text"] == text[:k], f"np{np} --stop {stop!r}: {cut[0]['text']!r}, want {text[:k]!r}")
    check(cut[0]["finish"] == "stop_string", f"finish {cut[0]['finish']}")
    check(cut[0]["generated"] == one[0]["generated"][:len(cut[0]["generated"])], "stopped ids are a prefix")
    check(len(cut[0]["generated"]) < len(one[0]["generated"]) or one[0]["finish"] != "length",
          "the stop string ended the sequence early")
    check(cut[1] == one[1] or stop in one[1]["text"], "the other sequence is unaffected")

# The single-process reference replays the same sampler and stop strings: identical on 2 ranks.
ref = run(["generate", "--model", ckpt, "--check-reference", "--stop", stop] + base, np=2).stdout
check("2 of 2 sequences identical to the single-process reference\n" in ref, f"--check-reference:\n{ref}")

# The same run from a run YAML: text prompts and stop strings as keys.
run_yaml = os.path.join(a.workdir, "run.yaml")
with open(run_yaml, "w") as f:
    f.write(f"max_new_tokens: 24\nprompts: {json.dumps(prompts)}\nstop_strings: [{json.dumps(stop)}]\n")
from_yaml = records(["--config", run_yaml])
check([r["text"] for r in from_yaml] == [text[:k], one[1]["text"].split(stop)[0]], f"run YAML: {from_yaml}")

# The same prompts from files (--prompt-file, after any --prompt), at 1 and 2 ranks; a file's bytes
# are the prompt as they are (a trailing newline is part of it), and --prompt-file overrides the run
# YAML's prompts as --prompt does.
files = []
for i, t in enumerate(prompts + [prompts[0] + "\n"]):
    files.append(os.path.join(a.workdir, f"prompt{i}.txt"))
    with open(files[-1], "w") as f:
        f.write(t)
same = lambda rs: [(r["prompt"], r["generated"], r["text"]) for r in rs]
for np in (1, 2):
    from_files = records(["--max-new-tokens", "24", "--prompt-file", files[0], "--prompt-file", files[1]], np)
    check(same(from_files) == same(one), f"np{np} --prompt-file: {from_files}")
mixed = records(["--max-new-tokens", "24", "--prompt", prompts[0], "--prompt-file", files[1]])
check(same(mixed) == same(one), f"--prompt then --prompt-file: {mixed}")
newline = records(["--max-new-tokens", "24", "--prompt-file", files[2]])
check(newline[0]["prompt_text"] == prompts[0] + "\n", f"a file's trailing newline is part of its prompt: {newline[0]}")
over_yaml = records(["--config", run_yaml, "--prompt-file", files[1]])
check(len(over_yaml) == 1 and over_yaml[0]["prompt_text"] == prompts[1], f"--prompt-file over run YAML: {over_yaml}")
err = run(["generate", "--model", ckpt, "--prompt-file", os.path.join(a.workdir, "missing.txt")], expect_ok=False)
check(err.returncode != 0 and err.stderr.count("tori: error: --prompt-file: cannot read '") == 1,
      f"missing --prompt-file: {err.stderr}")

chat = records(["--max-new-tokens", "4", "--prompt", "Hello world", "--chat"])
plain_ids = one[0]["prompt"]
check(chat[0]["prompt"][0] == 1 and len(chat[0]["prompt"]) > len(plain_ids), f"chat prompt ids {chat[0]['prompt']}")
sys_chat = records(["--max-new-tokens", "4", "--prompt", "Hello world", "--chat", "--system", "Be brief."])
check(len(sys_chat[0]["prompt"]) > len(chat[0]["prompt"]), "a system turn adds tokens")

out = run(["generate", "--model", ckpt, "--prompt", "Hello world", "--max-new-tokens", "24"]).stdout
check(f'prompt 0: "Hello world"\n  -> {text}\n' in out, f"plain output:\n{out}")
# Streamed (one prompt after the other, chunk by chunk) prints the same text, stop string cut.
out = run(["generate", "--model", ckpt, "--stream", "on", "--stop", stop] + base).stdout
want = f'prompt 0: "{prompts[0]}"\n  -> {text[:k]}\nprompt 1: "{prompts[1]}"\n  -> {one[1]["text"].split(stop)[0]}\n'
check(out.startswith(want), f"streamed output:\n{out!r}\nwant:\n{want!r}")

err = run(["generate", "--model", ckpt, "--prompt", "x", "--prompt-tokens", "1,2"], expect_ok=False)
check(err.returncode != 0 and "not both" in err.stderr, f"--prompt with --prompt-tokens: {err.stderr}")
err = run(["generate", "--model", ckpt, "--chat", "--prompt-tokens", "1,2"], expect_ok=False)
check(err.returncode != 0 and "--chat: needs text prompts" in err.stderr, f"--chat with ids: {err.stderr}")
err = run(["generate", "--model", ckpt, "--system", "x", "--prompt", "x"], expect_ok=False)
check(err.returncode != 0 and "--system: needs --chat" in err.stderr, f"--system without --chat: {err.stderr}")
err = run(["generate", "--chat", "--prompt", "x"], expect_ok=False)
check(err.returncode != 0 and "--prompt: model 'palm-tiny' has no tokenizer; give --prompt-tokens" in err.stderr,
      f"--chat on a preset: {err.stderr}")
os.remove(os.path.join(ckpt, "tokenizer_config.json"))
err = run(["generate", "--model", ckpt, "--chat", "--prompt", "x"], expect_ok=False)
check(err.returncode != 0 and "has no chat template" in err.stderr, f"--chat without template: {err.stderr}")
print(f"text on 1 and 2 ranks: {text!r}; --stop {stop!r} cut it to {text[:k]!r}")
print("PASSED")
