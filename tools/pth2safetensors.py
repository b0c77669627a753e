#!/usr/bin/env python3
"""pth2safetensors.py: convert a PyTorch checkpoint (a state_dict) to .safetensors, without torch.

Turns the official AttnGAN / DAMSM checkpoints (text_encoder200.pth, image_encoder200.pth,
netG_200000.pth, bird_AttnGAN2.pth, ...) into safetensors files that the C networks load by
state_dict key. Needs only python3 (>= 3.6): torch is never imported, numpy is used when present
(faster) and otherwise replaced by the struct and array modules.

    python3 tools/pth2safetensors.py text_encoder200.pth               # -> text_encoder200.safetensors
    python3 tools/pth2safetensors.py netG_200000.pth netG.safetensors --strip-prefix module.
    python3 tools/pth2safetensors.py ckpt.pth --key netG               # {'netG': sd, 'netD': sd}
    python3 tools/pth2safetensors.py bird_AttnGAN2.pth --list          # key, dtype, shape per tensor

Both torch.save formats are read: the legacy one (PyTorch < 1.6, what the 0.4-era AttnGAN code
wrote: magic number, protocol version and sys info pickles, the object pickle with persistent ids
for storages, the list of storage keys, then each storage's raw little-endian data) and the zip
one (<name>/data.pkl plus <name>/data/<key> records). Pickles are read by a restricted unpickler
that resolves only the globals a state_dict needs (collections.OrderedDict, torch._utils'
_rebuild_tensor / _rebuild_tensor_v2 / _rebuild_parameter, torch.<Float|Double|Half|BFloat16|Long|
Int|Byte|Bool>Storage, torch.Size), each mapped to a function of this script; any other global
(os.system, torch.storage._load_from_bytes, a model class, ...) stops the conversion with an error
naming it, before anything is called. Tensor views (storage offset, strides, shared storages)
become contiguous tensors. Float tensors are written as F32 by default (--dtype f16 for half,
--dtype keep to keep F16/BF16/F64); integer and bool tensors (e.g. num_batches_tracked) are kept.
The output is written atomically (a .tmp file renamed into place), tensors in descending element
size so each is aligned to it, with metadata {"source": <input basename>, "format": "pt"}.
Exit status: 0 on success, 1 on an error (printed as "pth2safetensors: error: FILE: reason"),
2 on a usage error.
"""
import argparse
import collections
import io
import itertools
import json
import math
import os
import pickle
import struct
import sys
import zipfile
from array import array

PROG = "pth2safetensors"

# dtype name -> (element size, is floating point)
DTYPES = {
    "F32": (4, True), "F16": (2, True), "BF16": (2, True), "F64": (8, True),
    "I64": (8, False), "I32": (4, False), "U8": (1, False), "BOOL": (1, False),
}
STORAGE_DTYPES = {
    "FloatStorage": "F32", "DoubleStorage": "F64", "HalfStorage": "F16", "BFloat16Storage": "BF16",
    "LongStorage": "I64", "IntStorage": "I32", "ByteStorage": "U8", "BoolStorage": "BOOL",
}
LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001
CHUNK = 1 << 20  # elements per chunk in the pure-python conversions


class ConvertError(Exception):
    """A problem with the input (or the options) that is reported as 'file: reason'."""


def _warn_default(msg):
    print("%s: warning: %s" % (PROG, msg), file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# What the pickles are allowed to build

class StorageType(object):
    """Stands in for torch.<X>Storage classes; only usable as the type in a persistent id."""
    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype

    def __setstate__(self, state):
        raise ConvertError("malformed pickle: tries to set the state of torch.%s" % self.name)

    def __repr__(self):
        return "torch.%s" % self.name


class Storage(object):
    """A typed storage: numel elements of dtype, whose bytes come from loader() on demand.
    A legacy storage view is a Storage over (base, elem_offset)."""
    __slots__ = ("dtype", "numel", "key", "loader", "base", "elem_offset")

    def __init__(self, dtype, numel, key, loader=None, base=None, elem_offset=0):
        self.dtype, self.numel, self.key = dtype, numel, key
        self.loader, self.base, self.elem_offset = loader, base, elem_offset

    def __setstate__(self, state):
        raise ConvertError("malformed pickle: tries to set the state of storage '%s'" % self.key)

    def nbytes(self):
        return self.numel * DTYPES[self.dtype][0]


class Tensor(object):
    """A tensor as pickled: a view (offset, shape, stride, in elements) of a storage."""
    __slots__ = ("storage", "offset", "shape", "stride")

    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    def __setstate__(self, state):
        raise ConvertError("malformed pickle: tries to set the state of a tensor")

    @property
    def dtype(self):
        return self.storage.dtype

    @property
    def numel(self):
        n = 1
        for s in self.shape:
            n *= s
        return n


def _int(v, what):
    if not isinstance(v, int):
        raise ConvertError("malformed tensor: %s is a %s, not an integer" % (what, type(v).__name__))
    return int(v)


def _ints(v, what):
    if not isinstance(v, (tuple, list)):
        raise ConvertError("malformed tensor: %s is a %s, not a tuple" % (what, type(v).__name__))
    return tuple(_int(x, what) for x in v)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    if not isinstance(storage, Storage):
        raise ConvertError("malformed tensor: its storage is a %s" % type(storage).__name__)
    t = Tensor(storage, _int(storage_offset, "storage offset"), _ints(size, "size"), _ints(stride, "stride"))
    if len(t.shape) != len(t.stride):
        raise ConvertError("malformed tensor: size %s and stride %s differ in length" % (t.shape, t.stride))
    if len(t.shape) > 8:
        raise ConvertError("tensor with %d dimensions (safetensors readers take at most 8)" % len(t.shape))
    return t


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=True, backward_hooks=None, state=None):
    if not isinstance(data, Tensor):
        raise ConvertError("malformed parameter: its data is a %s" % type(data).__name__)
    return data


def _torch_size(*args):
    if len(args) > 1:
        raise ConvertError("malformed torch.Size")
    return _ints(args[0], "torch.Size") if args else ()


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): _torch_size,
}
for _name, _dt in STORAGE_DTYPES.items():
    ALLOWED_GLOBALS[("torch", _name)] = StorageType(_name, _dt)


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only ALLOWED_GLOBALS (to this script's own functions); persistent ids go to
    the given callback. Nothing from the pickle is ever imported."""

    def __init__(self, f, persistent=None):
        super(RestrictedUnpickler, self).__init__(f, encoding="utf-8")
        self._persistent = persistent

    def find_class(self, module, name):
        fn = ALLOWED_GLOBALS.get((module, name))
        if fn is None:
            raise ConvertError(
                "unsupported global '%s.%s' in the pickle, refused without running anything (a state_dict "
                "checkpoint needs only OrderedDict, torch tensor rebuilders and torch.*Storage types; "
                "re-save the model's state_dict() if this file pickles a whole model)" % (module, name))
        return fn

    def persistent_load(self, pid):
        if self._persistent is None:
            raise ConvertError("malformed checkpoint: a persistent id outside the object pickle")
        return self._persistent(pid)


def _unpickle(f, what, persistent=None):
    try:
        return RestrictedUnpickler(f, persistent).load()
    except ConvertError:
        raise
    except EOFError as e:
        raise ConvertError("truncated file: it ends inside the %s pickle (%s)" % (what, e or "no data"))
    except RecursionError:
        raise ConvertError("malformed checkpoint: the %s pickle nests too deeply" % what)
    except Exception as e:  # UnpicklingError, TypeError from a rebuilder called with bad arguments, ...
        if "truncated" in str(e):
            raise ConvertError("truncated file: it ends inside the %s pickle (%s)" % (what, e))
        raise ConvertError("not a PyTorch checkpoint, or a damaged one: cannot read the %s pickle (%s: %s)"
                           % (what, type(e).__name__, e))


def _storage_pid(pid, legacy):
    """Checks a persistent id ('storage', type, key, location, numel[, view_metadata])."""
    if not isinstance(pid, tuple) or not pid:
        raise ConvertError("malformed checkpoint: persistent id %r is not a tuple" % (pid,))
    typename = pid[0].decode("ascii", "replace") if isinstance(pid[0], bytes) else pid[0]
    if typename == "module":
        raise ConvertError("the checkpoint pickles a whole nn.Module (torch.save(model)); "
                           "re-save model.state_dict() with torch and convert that")
    if typename != "storage":
        raise ConvertError("malformed checkpoint: unknown persistent id type %r" % (typename,))
    if len(pid) != (6 if legacy else 5):
        raise ConvertError("malformed checkpoint: storage persistent id with %d fields" % len(pid))
    stype, key, numel = pid[1], pid[2], pid[4]
    if not isinstance(stype, StorageType):
        raise ConvertError("malformed checkpoint: storage type %r" % (stype,))
    if isinstance(key, bytes):
        key = key.decode("ascii", "replace")
    if not isinstance(key, (str, int)) or not isinstance(numel, int) or numel < 0:
        raise ConvertError("malformed checkpoint: storage persistent id %r" % (pid[2:],))
    return stype.dtype, str(key), int(numel), (pid[5] if legacy else None)


# ----------------------------------------------------------------------------------------------
# The two container formats

def _load_legacy(f, file_size):
    magic = _unpickle(f, "magic number")
    if not isinstance(magic, int) or magic != LEGACY_MAGIC:
        raise ConvertError("not a PyTorch checkpoint: a pickle without torch.save's magic number")
    proto = _unpickle(f, "protocol version")
    if proto != LEGACY_PROTOCOL:
        raise ConvertError("unsupported legacy protocol version %r (expected %d)" % (proto, LEGACY_PROTOCOL))
    sys_info = _unpickle(f, "sys info")
    if not isinstance(sys_info, dict):
        raise ConvertError("malformed checkpoint: the sys info pickle is a %s" % type(sys_info).__name__)

    roots = collections.OrderedDict()  # key -> Storage
    views = {}

    def persistent(pid):
        dtype, key, numel, view = _storage_pid(pid, legacy=True)
        root = roots.get(key)
        if root is None:
            root = roots[key] = Storage(dtype, numel, key)
        elif root.dtype != dtype:
            raise ConvertError("storage '%s' used with two dtypes (%s, %s)" % (key, root.dtype, dtype))
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[1], int) and isinstance(view[2], int)):
            raise ConvertError("malformed checkpoint: storage view metadata %r" % (view,))
        vkey = view[0].decode("ascii", "replace") if isinstance(view[0], bytes) else str(view[0])
        if vkey not in views:
            if view[1] < 0 or view[2] < 0 or view[1] + view[2] > numel:
                raise ConvertError("storage view '%s' (offset %d, %d elements) outside storage '%s' of %d elements"
                                   % (vkey, view[1], view[2], key, numel))
            views[vkey] = Storage(dtype, view[2], vkey, base=root, elem_offset=view[1])
        return views[vkey]

    obj = _unpickle(f, "object", persistent)
    keys = _unpickle(f, "storage key list")
    if not isinstance(keys, list):
        raise ConvertError("malformed checkpoint: the storage key list is a %s" % type(keys).__name__)
    keys = [k.decode("ascii", "replace") if isinstance(k, bytes) else str(k) for k in keys]
    missing = [k for k in roots if k not in set(keys)]
    if missing:
        raise ConvertError("malformed checkpoint: storage '%s' has no data record" % missing[0])
    pos = f.tell()
    for k in keys:
        if k not in roots:
            raise ConvertError("malformed checkpoint: data for unknown storage '%s'" % k)
        st = roots[k]
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            raise ConvertError("truncated file: it ends at byte %d, before the data of storage '%s'" % (file_size, k))
        numel = struct.unpack("<q", head)[0]
        if numel != st.numel:
            raise ConvertError("corrupt checkpoint: storage '%s' has %d elements in the data but %d in the pickle"
                               % (k, numel, st.numel))
        start = pos + 8
        pos = start + st.nbytes()
        if pos > file_size:
            raise ConvertError("truncated file: storage '%s' needs bytes %d..%d but the file has %d bytes"
                               % (k, start, pos, file_size))
        st.loader = _file_loader(f, start, st.nbytes())
    return obj


def _file_loader(f, start, nbytes):
    def load():
        f.seek(start)
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise ConvertError("truncated file: short read at byte %d" % start)
        return data
    return load


def _load_zip(f):
    try:
        zf = zipfile.ZipFile(f)
        names = zf.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise ConvertError("truncated or damaged zip checkpoint (%s)" % e)
    pkls = [n for n in names if n == "data.pkl" or (n.endswith("/data.pkl") and n.count("/") == 1)]
    if len(pkls) != 1:
        hint = " (a TorchScript archive? use torch to save its state_dict)" if any(
            n.endswith("constants.pkl") for n in names) else ""
        raise ConvertError("zip archive with %d <name>/data.pkl records: not a torch.save checkpoint%s"
                           % (len(pkls), hint))
    prefix = pkls[0][:-len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise ConvertError("unknown byteorder record %r" % byteorder)
    storages = {}

    def persistent(pid):
        dtype, key, numel, _ = _storage_pid(pid, legacy=False)
        st = storages.get(key)
        if st is not None:
            if st.dtype != dtype:
                raise ConvertError("storage '%s' used with two dtypes (%s, %s)" % (key, st.dtype, dtype))
            return st
        name = prefix + "data/" + key
        try:
            info = zf.getinfo(name)
        except KeyError:
            raise ConvertError("malformed checkpoint: storage record '%s' is missing" % name)
        st = Storage(dtype, numel, key)
        if info.file_size < st.nbytes():
            raise ConvertError("corrupt checkpoint: record '%s' has %d bytes, storage needs %d"
                               % (name, info.file_size, st.nbytes()))
        st.loader = _zip_loader(zf, name, st.nbytes(), DTYPES[dtype][0] if byteorder == "big" else 1)
        storages[key] = st
        return st

    try:
        data = zf.read(pkls[0])
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ConvertError("damaged zip checkpoint: cannot read %s (%s)" % (pkls[0], e))
    return _unpickle(io.BytesIO(data), "object (%s)" % pkls[0], persistent)


def _zip_loader(zf, name, nbytes, swap):
    def load():
        try:
            data = zf.read(name)[:nbytes]
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise ConvertError("damaged zip checkpoint: cannot read %s (%s)" % (name, e))
        return _byteswap(data, swap) if swap > 1 else data
    return load


def _byteswap(data, size):
    out = bytearray(len(data))
    for i in range(size):
        out[i::size] = data[size - 1 - i::size]
    return bytes(out)


def load_checkpoint(path):
    """Reads a torch.save file; returns (object, close) where object holds Tensor values whose
    data is read lazily (call close() when done)."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ConvertError("cannot open: %s" % (e.strerror or e))
    try:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(0)
        head = f.read(512)
        f.seek(0)
        if size == 0:
            raise ConvertError("empty file: not a PyTorch checkpoint")
        if size < 4 and b"PK\x03\x04".startswith(head):
            raise ConvertError("truncated file: %d bytes, the start of a zip signature" % size)
        if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
            obj = _load_zip(f)
        elif len(head) >= 262 and head[257:262] == b"ustar":
            raise ConvertError("tar-based checkpoint (PyTorch < 0.1.10 format) is not supported; "
                               "load and re-save it with torch")
        elif head[:1] == b"\x80":
            obj = _load_legacy(f, size)
        elif len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < size:
            raise ConvertError("this is already a safetensors file, not a PyTorch checkpoint")
        else:
            raise ConvertError("not a PyTorch checkpoint: starts with neither a zip nor a pickle signature")
    except BaseException:
        f.close()
        raise
    return obj, f.close


# ----------------------------------------------------------------------------------------------
# Choosing the state_dict

def _count_tensors(d):
    return sum(1 for v in d.values() if isinstance(v, Tensor))


def select_state_dict(obj, key=None, warn=_warn_default):
    """Returns an OrderedDict key -> Tensor from a loaded checkpoint (see --key)."""
    if key is not None:
        if not isinstance(obj, dict):
            raise ConvertError("--key %r given, but the checkpoint holds a %s, not a dict" % (key, type(obj).__name__))
        if key not in obj:
            raise ConvertError("no key %r in the checkpoint; its top-level keys: %s"
                               % (key, ", ".join(repr(k) for k in obj) or "(none)"))
        obj = obj[key]
        if not isinstance(obj, dict):
            raise ConvertError("checkpoint[%r] is a %s, not a state_dict" % (key, type(obj).__name__))
    if isinstance(obj, Tensor):
        raise ConvertError("the checkpoint holds a single tensor, not a state_dict")
    if not isinstance(obj, dict):
        raise ConvertError("the checkpoint holds a %s, not a state_dict" % type(obj).__name__)
    if _count_tensors(obj) == 0:
        subs = [(k, v) for k, v in obj.items() if isinstance(v, dict)]
        if subs:
            raise ConvertError("the checkpoint is a dict of dicts; choose one with --key: %s" % ", ".join(
                "%r (%d tensors)" % (k, _count_tensors(v)) for k, v in subs))
        raise ConvertError("no tensors in the checkpoint (top-level keys: %s)"
                           % (", ".join(repr(k) for k in obj) or "none"))
    out = collections.OrderedDict()
    for k, v in obj.items():
        if not isinstance(v, Tensor):
            warn("skipping non-tensor entry %r (%s)" % (k, type(v).__name__))
        elif not isinstance(k, str):
            warn("skipping tensor with a non-string key %r" % (k,))
        else:
            out[k] = v
    return out


def rename(tensors, prefix="", strip_prefix="", warn=_warn_default):
    out = collections.OrderedDict()
    stripped = 0
    for k, v in tensors.items():
        if strip_prefix and k.startswith(strip_prefix):
            k = k[len(strip_prefix):]
            stripped += 1
        k = prefix + k
        if not k:
            raise ConvertError("an empty tensor name after renaming")
        if k in out:
            raise ConvertError("two tensors named %r after renaming" % k)
        out[k] = v
    if strip_prefix and not stripped:
        warn("no tensor name starts with %r; nothing stripped" % strip_prefix)
    return out


# ----------------------------------------------------------------------------------------------
# Tensor data: strided gather and dtype conversion

def output_dtype(src, mode):
    if mode == "keep" or not DTYPES[src][1]:
        return src
    return {"f32": "F32", "f16": "F16"}[mode]


def _is_contiguous(shape, stride):
    expect = 1
    for sz, st in zip(reversed(shape), reversed(stride)):
        if sz != 1 and st != expect:
            return False
        expect *= sz
    return True


def _storage_bytes(st, cache):
    """The bytes of a storage (a view resolves to its base), cached for the last storage read."""
    base, off = st, 0
    while base.base is not None:
        off += base.elem_offset
        base = base.base
    if cache.get("key") is not base:
        if base.loader is None:
            raise ConvertError("malformed checkpoint: storage '%s' has no data" % base.key)
        data = base.loader()
        if len(data) != base.nbytes():
            raise ConvertError("storage '%s': %d bytes read, %d expected" % (base.key, len(data), base.nbytes()))
        cache.clear()
        cache["key"], cache["data"] = base, data
    return cache["data"], off


def _check_bounds(name, t):
    if t.numel == 0:
        return
    if t.offset < 0 or any(s < 0 for s in t.shape) or any(s < 0 for s in t.stride):
        raise ConvertError("tensor %r: negative offset, size or stride (offset %d, size %s, stride %s)"
                           % (name, t.offset, t.shape, t.stride))
    last = t.offset + sum((sz - 1) * st for sz, st in zip(t.shape, t.stride))
    if last >= t.storage.numel:
        raise ConvertError("tensor %r: view (offset %d, size %s, stride %s) reaches element %d of a storage with %d "
                           "(corrupt checkpoint)" % (name, t.offset, t.shape, t.stride, last, t.storage.numel))


def _gather_py(data, esize, base_off, t):
    """Row-major contiguous bytes of tensor t, from the storage bytes data (pure python)."""
    n = t.numel
    off = base_off + t.offset
    if n == 0:
        return b""
    if _is_contiguous(t.shape, t.stride):
        return bytes(data[off * esize:(off + n) * esize])
    # drop size-1 dims, merge dims that are contiguous with their inner neighbour
    dims = [(sz, st) for sz, st in zip(t.shape, t.stride) if sz != 1]
    merged = []
    for sz, st in dims:
        if merged and merged[-1][1] == st * sz:
            merged[-1] = (merged[-1][0] * sz, st)
        else:
            merged.append((sz, st))
    fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[esize]
    mv = memoryview(data).cast("B")
    mv = mv[:len(mv) - len(mv) % esize].cast(fmt)
    inner_n, inner_s = merged[-1]
    outer = merged[:-1]
    parts = []
    for idx in itertools.product(*[range(sz) for sz, _ in outer]):
        b = off + sum(i * st for i, (_, st) in zip(idx, outer))
        if inner_s == 0:
            parts.append(mv[b:b + 1].tobytes() * inner_n)
        else:
            parts.append(mv[b:b + (inner_n - 1) * inner_s + 1:inner_s].tobytes())
    return b"".join(parts)


def _pack_f32(values):
    a = array("f", values)
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()


def _to_f16_py(vals):
    try:
        return struct.pack("<%de" % len(vals), *vals)
    except OverflowError:  # values beyond the half range become +-inf, like torch's .half()
        out = []
        for v in vals:
            try:
                out.append(struct.pack("<e", v))
            except OverflowError:
                out.append(struct.pack("<e", math.copysign(math.inf, v)))
        return b"".join(out)


def _convert_py(data, src, dst):
    """Converts little-endian bytes between float dtypes, exactly as torch's .float()/.half()."""
    if src == dst:
        return data
    if src == "BF16":  # bf16 -> f32 is exact: the bf16 bits become the high half
        out = bytearray(len(data) * 2)
        out[2::4] = data[0::2]
        out[3::4] = data[1::2]
        return _convert_py(bytes(out), "F32", dst)
    if src == "F64" and dst == "F16":  # torch rounds double -> float -> half
        return _convert_py(_convert_py(data, "F64", "F32"), "F32", "F16")
    if dst == "BF16":
        raise ConvertError("conversion to BF16 is not supported")
    code = {"F16": "e", "F32": "f", "F64": "d"}[src]
    es = DTYPES[src][0]
    n = len(data) // es
    parts = []
    for i in range(0, n, CHUNK):
        m = min(CHUNK, n - i)
        vals = struct.unpack_from("<%d%s" % (m, code), data, i * es)
        parts.append(_pack_f32(vals) if dst == "F32" else _to_f16_py(vals))
    return b"".join(parts)


_NP_FLOAT = {"F16": "<f2", "F32": "<f4", "F64": "<f8"}


def _tensor_bytes_np(np, data, esize, base_off, t, src, dst):
    n = t.numel
    if n == 0:
        return b""
    udt = "u1" if esize == 1 else "<u%d" % esize
    arr = np.frombuffer(data, dtype=udt, count=len(data) // esize)[base_off + t.offset:]
    a = np.lib.stride_tricks.as_strided(arr, shape=t.shape, strides=[s * esize for s in t.stride], writeable=False)
    a = np.ascontiguousarray(a)
    if src == dst:
        return a.tobytes()
    if src == "BF16":
        a = (a.astype("<u4") << 16).view("<f4")
    else:
        a = a.view(_NP_FLOAT[src])
    with np.errstate(over="ignore", invalid="ignore"):
        if src == "F64" and dst == "F16":
            a = a.astype("<f4")
        return a.astype(_NP_FLOAT[dst]).tobytes()


def tensor_bytes(name, t, dst, cache, np=None):
    """The contiguous little-endian bytes of tensor t in dtype dst."""
    _check_bounds(name, t)
    data, base_off = _storage_bytes(t.storage, cache)
    esize = DTYPES[t.dtype][0]
    if np is not None:
        out = _tensor_bytes_np(np, data, esize, base_off, t, t.dtype, dst)
    else:
        out = _convert_py(_gather_py(data, esize, base_off, t), t.dtype, dst)
    if len(out) != t.numel * DTYPES[dst][0]:
        raise ConvertError("tensor %r: internal size mismatch" % name)
    return out


def _numpy(use_numpy):
    if not use_numpy:
        return None
    try:
        import numpy
        return numpy
    except ImportError:
        return None


# ----------------------------------------------------------------------------------------------
# safetensors output

def write_safetensors(path, tensors, dtype_mode="f32", metadata=None, use_numpy=True):
    """Writes key -> Tensor as safetensors at path (atomically). Returns (count, bytes)."""
    np = _numpy(use_numpy)
    items = [(k, t, output_dtype(t.dtype, dtype_mode)) for k, t in tensors.items()]
    for k, t, _ in items:
        _check_bounds(k, t)
    items.sort(key=lambda it: -DTYPES[it[2]][0])  # stable: larger elements first keeps every tensor aligned
    header = collections.OrderedDict()
    if metadata:
        header["__metadata__"] = metadata
    off = 0
    for k, t, dt in items:
        nb = t.numel * DTYPES[dt][0]
        header[k] = collections.OrderedDict([("dtype", dt), ("shape", list(t.shape)), ("data_offsets", [off, off + nb])])
        off += nb
    hjson = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)
    tmp = "%s.tmp%d" % (path, os.getpid())
    cache = {}
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(hjson)))
            f.write(hjson)
            for k, t, dt in items:
                f.write(tensor_bytes(k, t, dt, cache, np))
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise ConvertError("cannot write %s: %s" % (path, e.strerror or e))
    except BaseException:
        _remove(tmp)
        raise
    return len(items), 8 + len(hjson) + off


def _remove(p):
    try:
        os.remove(p)
    except OSError:
        pass


def convert(src, dst, dtype="f32", prefix="", strip_prefix="", key=None, use_numpy=True, warn=_warn_default):
    """Converts checkpoint src to safetensors dst; returns (number of tensors, output bytes)."""
    if os.path.abspath(src) == os.path.abspath(dst):
        raise ConvertError("output path is the input path")
    obj, close = load_checkpoint(src)
    try:
        tensors = rename(select_state_dict(obj, key, warn), prefix, strip_prefix, warn)
        meta = collections.OrderedDict([("source", os.path.basename(src)), ("format", "pt")])
        return write_safetensors(dst, tensors, dtype, meta, use_numpy)
    finally:
        close()


def list_checkpoint(src, prefix="", strip_prefix="", key=None, out=sys.stdout, warn=_warn_default):
    obj, close = load_checkpoint(src)
    try:
        if key is None and isinstance(obj, dict) and _count_tensors(obj) == 0 and any(
                isinstance(v, dict) for v in obj.values()):
            for k, v in obj.items():
                if not isinstance(v, dict):
                    desc = type(v).__name__
                elif _count_tensors(v):
                    desc = "%d tensors (use --key %s)" % (_count_tensors(v), k)
                else:
                    desc = "dict without tensors"
                out.write("%s: %s\n" % (k, desc))
            return
        tensors = rename(select_state_dict(obj, key, warn), prefix, strip_prefix, warn)
        w = max(len(k) for k in tensors)
        for k, t in tensors.items():
            out.write("%-*s  %-4s  [%s]\n" % (w, k, t.dtype, ", ".join(str(s) for s in t.shape)))
    finally:
        close()


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="pth2safetensors.py",
        description="Convert a PyTorch checkpoint (a state_dict, legacy or zip torch.save format) to "
                    ".safetensors, without torch. Float tensors become F32 by default; integer and bool "
                    "tensors are kept.",
        epilog="Example: python3 tools/pth2safetensors.py netG_200000.pth netG.safetensors --strip-prefix module.")
    ap.add_argument("input", help="the .pth / .pt / .pkl checkpoint")
    ap.add_argument("output", nargs="?", help="the .safetensors file to write (default: the input path with "
                                              "its extension replaced by .safetensors)")
    ap.add_argument("--dtype", choices=("f32", "f16", "keep"), default="f32",
                    help="dtype of floating-point tensors in the output (default f32; keep: as stored)")
    ap.add_argument("--prefix", default="", metavar="P", help="prepend P to every tensor name")
    ap.add_argument("--strip-prefix", default="", metavar="P",
                    help="remove P from the start of tensor names that have it (e.g. 'module.'), before --prefix")
    ap.add_argument("--key", metavar="K", help="use checkpoint[K] as the state_dict (e.g. netG, state_dict)")
    ap.add_argument("--list", action="store_true", help="print name, dtype and shape of each tensor; write nothing")
    ap.add_argument("--no-numpy", action="store_true", help="do not use numpy even when it is installed")
    ap.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    args = ap.parse_args(argv)

    def warn(msg):
        _warn_default("%s: %s" % (args.input, msg))

    try:
        if args.list:
            list_checkpoint(args.input, args.prefix, args.strip_prefix, args.key, sys.stdout, warn)
            return 0
        out = args.output or os.path.splitext(args.input)[0] + ".safetensors"
        n, nbytes = convert(args.input, out, args.dtype, args.prefix, args.strip_prefix, args.key,
                            not args.no_numpy, warn)
    except ConvertError as e:
        print("%s: error: %s: %s" % (PROG, args.input, e), file=sys.stderr)
        return 1
    if not args.quiet:
        print("wrote %s: %d tensors, %d bytes" % (out, n, nbytes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
