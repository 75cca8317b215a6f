# Writes gguf_pyref.gguf: an independent reference for Tori's GGUF reader, made with llama.cpp's
# own Python package (gguf-py). Each quantised tensor "x.TYPE" (shape [4 rows, 64 cols], ggml dims
# [64, 4]) comes with "x.TYPE.expected" (F32), gguf-py's dequantisation of the same bytes, so the
# C++ test checks our decoder against the reference bit for bit, with no Python at test time.
# Regenerate (not needed by the build or the tests):
#   python3 -m venv /tmp/v && /tmp/v/bin/pip install gguf==0.19.0 numpy==2.4.6
#   /tmp/v/bin/python tests/models/data/make_gguf_pyref.py
import os
import numpy as np
import gguf
from gguf import quants, GGMLQuantizationType as Q

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gguf_pyref.gguf")
w = gguf.GGUFWriter(out, arch="llama")
w.add_uint32("ref.u32", 123456)
w.add_int8("ref.i8", -7)
w.add_float64("ref.f64", 2.5)
w.add_bool("ref.bool", True)
w.add_string("ref.str", "h\u00e9llo")
w.add_array("ref.strs", ["a", "bc", ""])
w.add_array("ref.ints", [1, -2, 300])
rng = np.random.default_rng(1)
x = rng.standard_normal((4, 64)).astype(np.float32)
x[1, :32] = 0.0  # an all-zero block
for name, t in [("q8_0", Q.Q8_0), ("q4_0", Q.Q4_0), ("q4_1", Q.Q4_1), ("f16", Q.F16), ("bf16", Q.BF16)]:
    data = quants.quantize(x, t)
    w.add_tensor("x." + name, data, raw_dtype=t)
    w.add_tensor("x." + name + ".expected", quants.dequantize(data, t).astype(np.float32).reshape(x.shape))
w.add_tensor("x.f32", x)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print("wrote", out, os.path.getsize(out), "bytes; gguf", gguf.__version__ if hasattr(gguf, "__version__") else "0.19.0",
      "numpy", np.__version__)
