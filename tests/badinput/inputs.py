"""Readers and writers for the bad-input table (tests/badinput/check.py): just enough of the
safetensors and GGUF formats to take a valid file apart, change one thing, and write it back.
Debian's /usr/bin/python3 only (no numpy, no gguf package): the bytes are what is tested."""
import json
import os
import shutil
import struct

# ---- safetensors --------------------------------------------------------------------------------


def st_read(path):
    """(header dict, data bytes) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def st_write(path, header, data, header_bytes=None):
    """Writes header (or header_bytes verbatim) and data; the header is padded with spaces to 8 bytes
    as the format's writers do."""
    h = header_bytes if header_bytes is not None else json.dumps(header, separators=(",", ":")).encode()
    if header_bytes is None:
        h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def st_tensors(header):
    return [k for k in header if k != "__metadata__"]


# ---- GGUF ---------------------------------------------------------------------------------------
# Value types of GGUF v3 (llama.cpp's gguf.h).
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?", U64: "<Q",
           I64: "<q", F64: "<d"}


class Gguf:
    """A GGUF file as values: version, kv (list of [key, type, value]; arrays are (elem_type, list)),
    tensors (list of dicts name, dims, type, offset) and the tensor data (bytes after the
    alignment padding)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            raw = f.read()
        self.pos = 0
        self.raw = raw
        assert self._take(4) == b"GGUF", path
        self.version = self._get("<I")
        n_tensors, n_kv = self._get("<Q"), self._get("<Q")
        self.kv = []
        for _ in range(n_kv):
            key = self._str()
            t = self._get("<I")
            self.kv.append([key, t, self._value(t)])
        self.tensors = []
        for _ in range(n_tensors):
            name = self._str()
            nd = self._get("<I")
            dims = [self._get("<Q") for _ in range(nd)]
            self.tensors.append({"name": name, "dims": dims, "type": self._get("<I"), "offset": self._get("<Q")})
        align = self.get("general.alignment", 32)
        start = (self.pos + align - 1) // align * align
        self.data = raw[start:]
        del self.raw

    def _take(self, n):
        b = self.raw[self.pos:self.pos + n]
        self.pos += n
        return b

    def _get(self, fmt):
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]

    def _str(self):
        return self._take(self._get("<Q")).decode("utf-8", "surrogateescape")

    def _value(self, t):
        if t == STRING:
            return self._str()
        if t == ARRAY:
            et, n = self._get("<I"), self._get("<Q")
            return (et, [self._value(et) for _ in range(n)])
        return self._get(_SCALAR[t])

    def get(self, key, default=None):
        for k, _, v in self.kv:
            if k == key:
                return v
        return default

    def set(self, key, t, value):
        for e in self.kv:
            if e[0] == key:
                e[1], e[2] = t, value
                return
        self.kv.append([key, t, value])

    def remove(self, key):
        self.kv = [e for e in self.kv if e[0] != key]

    def tensor(self, name):
        return next(t for t in self.tensors if t["name"] == name)

    def write(self, path):
        out = bytearray(b"GGUF")

        def put(fmt, v):
            out.extend(struct.pack(fmt, v))

        def put_str(s):
            b = s.encode("utf-8", "surrogateescape")
            put("<Q", len(b))
            out.extend(b)

        def put_value(t, v):
            if t == STRING:
                put_str(v)
            elif t == ARRAY:
                put("<I", v[0])
                put("<Q", len(v[1]))
                for x in v[1]:
                    put_value(v[0], x)
            else:
                put(_SCALAR[t], v)

        put("<I", self.version)
        put("<Q", len(self.tensors))
        put("<Q", len(self.kv))
        for k, t, v in self.kv:
            put_str(k)
            put("<I", t)
            put_value(t, v)
        for ti in self.tensors:
            put_str(ti["name"])
            put("<I", len(ti["dims"]))
            for d in ti["dims"]:
                put("<Q", d)
            put("<I", ti["type"])
            put("<Q", ti["offset"])
        align = self.get("general.alignment", 32)
        if not isinstance(align, int) or align <= 0:
            align = 32
        out.extend(b"\0" * (-len(out) % align))
        out.extend(self.data)
        with open(path, "wb") as f:
            f.write(out)


# ---- files --------------------------------------------------------------------------------------


def linked_copy(src_dir, dst_dir):
    """dst_dir with a symlink to every file of src_dir (then replace the one a row corrupts)."""
    os.makedirs(dst_dir)
    for name in os.listdir(src_dir):
        os.symlink(os.path.join(src_dir, name), os.path.join(dst_dir, name))


def replace(path, data):
    """Replaces path (a symlink into the valid input) by a file of its own holding data."""
    if os.path.islink(path) or os.path.exists(path):
        os.remove(path)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def copy_prefix(src, dst, nbytes):
    with open(src, "rb") as f:
        replace(dst, f.read(nbytes))


def copy(src, dst):
    shutil.copyfile(src, dst)
