#!/usr/bin/env python3
"""Tests of tools/pth2safetensors.py (the torch-free checkpoint converter).

Run:  /usr/bin/python3 -m unittest discover -s tests -p 'test_pth2safetensors.py'
  or  /usr/bin/python3 tests/test_pth2safetensors.py

PyTorch (Debian's python3-torch) is used only to write the test checkpoints and as the oracle;
without it every test that needs it is skipped with a message. The converter is run in-process
(with and without numpy) and, to prove the standalone path, under a python3 that cannot import
torch (the first one found on PATH or under ~/.pyenv), through its command line.
"""
import collections
import glob
import importlib.util
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPT = os.path.join(ROOT, "tools", "pth2safetensors.py")

_spec = importlib.util.spec_from_file_location("pth2safetensors", SCRIPT)
p2s = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(p2s)

try:
    import torch
    import torch.nn as nn
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False
NO_TORCH_MSG = "PyTorch is not installed for %s: cannot create test checkpoints (apt-get install python3-torch)" % sys.executable

ELEM = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}


# ----------------------------------------------------------------------------------------------
# a plain safetensors reader that also checks the layout rules the converter promises

def read_safetensors(tc, path):
    """Returns (metadata, OrderedDict name -> (dtype, shape, bytes)); asserts the layout."""
    with open(path, "rb") as f:
        blob = f.read()
    tc.assertGreaterEqual(len(blob), 8)
    hlen = struct.unpack("<Q", blob[:8])[0]
    tc.assertEqual((8 + hlen) % 8, 0, "header not padded to 8 bytes")
    hbytes = blob[8:8 + hlen]
    tc.assertEqual(hbytes, hbytes.rstrip(b" ") + b" " * (len(hbytes) - len(hbytes.rstrip(b" "))))
    header = json.loads(hbytes.decode("utf-8"), object_pairs_hook=collections.OrderedDict)
    meta = header.pop("__metadata__", None)
    data = blob[8 + hlen:]
    out = collections.OrderedDict()
    spans = []
    for name, e in header.items():
        dt, shape, (b, end) = e["dtype"], e["shape"], e["data_offsets"]
        n = 1
        for s in shape:
            n *= s
        tc.assertEqual(end - b, n * ELEM[dt], name)
        tc.assertEqual((8 + hlen + b) % ELEM[dt], 0, "%s not aligned to its element size" % name)
        spans.append((b, end))
        out[name] = (dt, list(shape), data[b:end])
    spans.sort()
    pos = 0
    for b, end in spans:  # contiguous, no holes, no overlap, covers the data area
        tc.assertEqual(b, pos)
        pos = end
    tc.assertEqual(pos, len(data))
    return meta, out


# ----------------------------------------------------------------------------------------------
# checkpoints

def torch_dtype_name(t):
    return {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
            torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}[t.dtype]


def torch_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def expected(t, mode):
    """(dtype name, bytes) that the converter must produce for tensor t, from torch itself."""
    t = t.detach()
    if t.is_floating_point() and mode == "f32":
        t = t.float()
    elif t.is_floating_point() and mode == "f16":
        t = t.half()
    return torch_dtype_name(t), list(t.shape), torch_bytes(t)


def make_state_dict(seed=0):
    torch.manual_seed(seed)
    m = nn.Module()
    m.fc = nn.Linear(5, 3)
    m.conv = nn.Conv2d(3, 4, 3, padding=1)
    m.bn = nn.BatchNorm2d(4)
    m.rnn = nn.LSTM(4, 6, batch_first=True, bidirectional=True)
    m.emb = nn.Embedding(10, 4)
    m.train()
    with torch.no_grad():
        m.bn(torch.randn(2, 4, 5, 5))  # running stats move, num_batches_tracked becomes 1
    sd = m.state_dict()
    base = torch.randn(6, 8)
    sd["extra.transposed"] = torch.randn(3, 5).t()
    sd["extra.slice"] = base[1:5, 2::3]  # storage offset and strides; shares base's storage
    sd["extra.row"] = base[2]
    sd["extra.expanded"] = torch.randn(3, 1).expand(3, 4)  # stride 0
    sd["extra.f16"] = torch.randn(4, 6).half()
    sd["extra.f16_t"] = torch.randn(4, 6).half().t()
    sd["extra.bf16"] = torch.randn(7).bfloat16()
    f64 = torch.randn(6, dtype=torch.float64)
    f64[0], f64[1], f64[2] = 1e300, -1e-300, 1 + 2 ** -11 + 2 ** -40  # overflow, underflow, double rounding
    sd["extra.f64"] = f64
    sd["extra.f32_range"] = torch.tensor([70000.0, -1e5, 65519.0, 65520.0, 1e-8, 3e-5, -0.0, 1.0 + 2 ** -11])
    sd["extra.i32"] = torch.randint(-100, 100, (5,), dtype=torch.int32)
    sd["extra.u8"] = torch.randint(0, 255, (2, 3), dtype=torch.uint8)
    sd["extra.bool"] = torch.rand(6) > 0.5
    sd["extra.scalar"] = torch.tensor(3.5)
    sd["extra.empty"] = torch.zeros(0, 3)
    return sd


def save(obj, path, legacy):
    if legacy:
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        torch.save(obj, path)
    return path


class _Evil(object):
    """Pickles as a call of os.system (posix.system) that would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch %s" % self.marker,))


class _Reducer(object):
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


class _Py2Pickler(pickle._Pickler):
    """Pure-python pickler that writes str as Python 2 byte strings (SHORT_BINSTRING /
    BINSTRING), the way the PyTorch 0.4 / Python 2.7 AttnGAN checkpoints were written."""
    dispatch = pickle._Pickler.dispatch.copy()

    def save_str(self, obj):
        b = obj.encode("utf-8")
        if len(b) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(b)]) + b)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(b)) + b)
        self.memoize(obj)
    dispatch[str] = save_str


class _FakeStorage(object):
    def __init__(self, pid):
        self.pid = pid


class _FakeTensor(object):
    def __init__(self, storage, offset, size, stride, v1=False):
        self.args = (storage, offset, size, stride)
        self.v1 = v1

    def __reduce__(self):
        if self.v1:  # PyTorch 0.3 style
            return (torch._utils._rebuild_tensor, self.args)
        return (torch._utils._rebuild_tensor_v2, self.args + (False, collections.OrderedDict()))


def write_py2_legacy(path):
    """Writes, by hand, a legacy torch.save file as Python 2 + PyTorch 0.3/0.4 did: py2 strings,
    'cuda:0' locations, a storage view (view_metadata) and a _rebuild_tensor (v1) tensor."""
    root = struct.pack("<12f", *[float(i) * 0.5 - 1 for i in range(12)])
    longs = struct.pack("<3q", 7, -2, 1 << 40)
    storages = {"140001": (torch.FloatStorage, 12, root), "140002": (torch.LongStorage, 3, longs)}
    s_root = _FakeStorage(("storage", torch.FloatStorage, "140001", "cuda:0", 12, None))
    s_view = _FakeStorage(("storage", torch.FloatStorage, "140001", "cuda:0", 12, ("140009", 4, 6)))
    s_long = _FakeStorage(("storage", torch.LongStorage, "140002", "cpu", 3, None))
    sd = collections.OrderedDict()
    sd["encoder.weight"] = _FakeTensor(s_root, 0, (3, 4), (4, 1))
    sd["encoder.weight_t"] = _FakeTensor(s_root, 1, (3, 2), (1, 4), v1=True)
    sd["view.part"] = _FakeTensor(s_view, 1, (2, 2), (2, 1))  # elements 5..8 of the root
    sd["count"] = _FakeTensor(s_long, 0, (3,), (1,))

    def dump(obj, f, persistent=False):
        p = _Py2Pickler(f, protocol=2)
        if persistent:
            p.persistent_id = lambda o: o.pid if isinstance(o, _FakeStorage) else None
        p.dump(obj)

    with open(path, "wb") as f:
        dump(p2s.LEGACY_MAGIC, f)
        dump(1001, f)
        dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 8}}, f)
        dump(sd, f, persistent=True)
        keys = sorted(storages)
        dump(keys, f)
        for k in keys:
            f.write(struct.pack("<q", storages[k][1]))
            f.write(storages[k][2])
    return path


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def python_without_torch():
    """A python3 that cannot import torch (the plain `python3` of a user), or None."""
    cands = [shutil.which("python3"), shutil.which("python")]
    cands += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/*/bin/python3")))
    cands += ["/root/.pyenv/shims/python3"]
    for c in cands:
        if not c or not os.path.exists(c):
            continue
        try:
            r = subprocess.run([c, "-c", "import sys; assert sys.version_info >= (3, 6); import torch"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode != 0:
            r2 = subprocess.run([c, "-c", "import sys; assert sys.version_info >= (3, 6)"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r2.returncode == 0:
                return c
    return None


def run_cli(args, python=None):
    r = subprocess.run([python or sys.executable, SCRIPT] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    return r.returncode, r.stdout, r.stderr


# ----------------------------------------------------------------------------------------------

@unittest.skipUnless(HAVE_TORCH, NO_TORCH_MSG)
class TestPth2Safetensors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pth2st_")
        cls.sd = make_state_dict()
        cls.ckpt = {}
        for fmt in ("zip", "legacy"):
            cls.ckpt[fmt] = save(cls.sd, os.path.join(cls.tmp, "sd_%s.pth" % fmt), fmt == "legacy")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def check_output(self, out, sd, mode, src_name, names=None):
        """Every tensor of sd (renamed by names, a dict old -> new) is in out, bit for bit."""
        meta, got = read_safetensors(self, out)
        self.assertEqual(meta, {"source": src_name, "format": "pt"})
        want = collections.OrderedDict(((names or {}).get(k, k), v) for k, v in sd.items())
        self.assertEqual(sorted(got), sorted(want))
        for k, t in want.items():
            dt, shape, data = expected(t, mode)
            self.assertEqual(got[k][0], dt, k)
            self.assertEqual(got[k][1], shape, k)
            self.assertEqual(got[k][2], data, "%s: data differs (mode %s)" % (k, mode))
        return got

    def convert(self, src, out, **kw):
        warnings = []
        kw.setdefault("warn", warnings.append)
        p2s.convert(src, out, **kw)
        return warnings

    # -- formats, dtypes, views ----------------------------------------------------------------

    def test_zip_and_legacy_all_dtype_modes(self):
        for fmt, src in self.ckpt.items():
            for mode in ("f32", "keep", "f16"):
                for use_numpy in (True, False):
                    with self.subTest(fmt=fmt, mode=mode, numpy=use_numpy):
                        out = self.path("out_%s_%s_%d.safetensors" % (fmt, mode, use_numpy))
                        w = self.convert(src, out, dtype=mode, use_numpy=use_numpy)
                        self.assertEqual(w, [])
                        got = self.check_output(out, self.sd, mode, os.path.basename(src))
                        self.assertEqual(got["bn.num_batches_tracked"][:2], ("I64", []))
                        self.assertEqual(struct.unpack("<q", got["bn.num_batches_tracked"][2])[0], 1)

    def test_numpy_and_pure_python_agree(self):
        a, b = self.path("np.safetensors"), self.path("py.safetensors")
        for mode in ("f32", "f16", "keep"):
            self.convert(self.ckpt["legacy"], a, dtype=mode, use_numpy=True)
            self.convert(self.ckpt["legacy"], b, dtype=mode, use_numpy=False)
            with open(a, "rb") as fa, open(b, "rb") as fb:
                self.assertEqual(fa.read(), fb.read(), mode)

    def test_hand_written_py2_legacy_with_storage_view(self):
        src = write_py2_legacy(self.path("py2_legacy.pth"))
        ref = torch.load(src, map_location="cpu")  # the writer above is right if torch reads it
        self.assertEqual(list(ref), ["encoder.weight", "encoder.weight_t", "view.part", "count"])
        for use_numpy in (True, False):
            out = self.path("py2_%d.safetensors" % use_numpy)
            self.convert(src, out, dtype="keep", use_numpy=use_numpy)
            self.check_output(out, ref, "keep", "py2_legacy.pth")

    def test_big_endian_zip(self):
        """A zip checkpoint with a 'byteorder' record of 'big' (newer torch on a big-endian host)."""
        obj, close = p2s.load_checkpoint(self.ckpt["zip"])
        esize = {t.storage.key: p2s.DTYPES[t.dtype][0] for t in obj.values()}
        close()
        src = self.path("big_endian.pth")
        with zipfile.ZipFile(self.ckpt["zip"]) as zin, zipfile.ZipFile(src, "w") as zout:
            prefix = [n for n in zin.namelist() if n.endswith("/data.pkl")][0][:-len("data.pkl")]
            for n in zin.namelist():
                data = zin.read(n)
                if n.startswith(prefix + "data/"):
                    data = p2s._byteswap(data, esize[n[len(prefix + "data/"):]])
                zout.writestr(n, data)
            zout.writestr(prefix + "byteorder", b"big")
        for use_numpy in (True, False):
            out = self.path("big_endian_%d.safetensors" % use_numpy)
            self.convert(src, out, dtype="keep", use_numpy=use_numpy)
            self.check_output(out, self.sd, "keep", "big_endian.pth")

    # -- the standalone path: a python3 without torch ------------------------------------------

    def test_standalone_python_without_torch(self):
        py = python_without_torch()
        if py is None:
            self.skipTest("no python3 without torch found on PATH or under ~/.pyenv")
        r = subprocess.run([py, "-c", "import sys; print(sys.version.split()[0])"], stdout=subprocess.PIPE,
                           universal_newlines=True)
        sys.stderr.write("\n  [standalone python: %s, Python %s] " % (py, r.stdout.strip()))
        for fmt, src in self.ckpt.items():
            for mode in ("f32", "f16"):
                with self.subTest(fmt=fmt, mode=mode):
                    out = self.path("standalone_%s_%s.safetensors" % (fmt, mode))
                    rc, so, se = run_cli([src, out, "--dtype", mode], python=py)
                    self.assertEqual(rc, 0, se)
                    self.assertIn("wrote %s" % out, so)
                    self.check_output(out, self.sd, mode, os.path.basename(src))
            rc, so, se = run_cli([src, "--list"], python=py)
            self.assertEqual(rc, 0, se)
            self.assertIn("bn.num_batches_tracked", so)
        out = self.path("standalone_py2.safetensors")
        src = write_py2_legacy(self.path("py2_legacy_s.pth"))
        rc, so, se = run_cli([src, out, "--dtype", "keep"], python=py)
        self.assertEqual(rc, 0, se)
        self.check_output(out, torch.load(src, map_location="cpu"), "keep", "py2_legacy_s.pth")

    # -- names and nesting ---------------------------------------------------------------------

    def test_dataparallel_prefix(self):
        dp = collections.OrderedDict(("module." + k, v) for k, v in self.sd.items())
        for fmt in ("zip", "legacy"):
            src = save(dp, self.path("dp_%s.pth" % fmt), fmt == "legacy")
            out = self.path("dp_%s.safetensors" % fmt)
            self.assertEqual(self.convert(src, out, strip_prefix="module."), [])
            self.check_output(out, self.sd, "f32", os.path.basename(src))
            self.convert(src, out, strip_prefix="module.", prefix="text_encoder.")
            self.check_output(out, self.sd, "f32", os.path.basename(src),
                              {k: "text_encoder." + k for k in self.sd})
        # nothing to strip: a warning, names unchanged
        out = self.path("nostrip.safetensors")
        w = self.convert(self.ckpt["zip"], out, strip_prefix="module.")
        self.assertTrue(any("module." in x for x in w), w)
        self.check_output(out, self.sd, "f32", "sd_zip.pth")
        rc, so, se = run_cli([self.ckpt["zip"], self.path("cli_prefix.safetensors"), "--prefix", "damsm."])
        self.assertEqual(rc, 0, se)
        self.check_output(self.path("cli_prefix.safetensors"), self.sd, "f32", "sd_zip.pth",
                          {k: "damsm." + k for k in self.sd})

    def test_nested_checkpoint(self):
        sd_d = make_state_dict(seed=1)
        for fmt in ("zip", "legacy"):
            src = save({"netG": self.sd, "netD": sd_d, "epoch": 3}, self.path("nested_%s.pth" % fmt), fmt == "legacy")
            out = self.path("nested_%s.safetensors" % fmt)
            with self.assertRaises(p2s.ConvertError) as cm:
                self.convert(src, out)
            msg = str(cm.exception)
            self.assertIn("--key", msg)
            self.assertIn("'netG'", msg)
            self.assertIn("'netD'", msg)
            self.assertFalse(os.path.exists(out))
            self.convert(src, out, key="netG")
            self.check_output(out, self.sd, "f32", os.path.basename(src))
            rc, so, se = run_cli([src, out, "--key", "netD", "--dtype", "keep"])
            self.assertEqual(rc, 0, se)
            self.check_output(out, sd_d, "keep", os.path.basename(src))
            with self.assertRaises(p2s.ConvertError) as cm:
                self.convert(src, out, key="netE")
            self.assertIn("'netG'", str(cm.exception))
            rc, so, se = run_cli([src, "--list"])
            self.assertEqual(rc, 0, se)
            self.assertIn("netG: %d tensors" % len(self.sd), so)
        src = save({"state_dict": self.sd, "epoch": 5, "optimizer": {"lr": 0.1}}, self.path("sd_key.pth"), False)
        rc, so, se = run_cli([src, self.path("sd_key.safetensors")])
        self.assertEqual(rc, 1)
        self.assertIn("--key", se)
        self.assertIn("'state_dict' (%d tensors)" % len(self.sd), se)
        rc, so, se = run_cli([src, self.path("sd_key.safetensors"), "--key", "state_dict"])
        self.assertEqual(rc, 0, se)
        self.check_output(self.path("sd_key.safetensors"), self.sd, "f32", "sd_key.pth")

    def test_non_tensor_entries_are_skipped_with_a_warning(self):
        sd = collections.OrderedDict(self.sd)
        sd["step"] = 5
        sd["name"] = "attngan"
        src = save(sd, self.path("mixed.pth"), True)
        out = self.path("mixed.safetensors")
        w = self.convert(src, out)
        self.assertEqual(len(w), 2, w)
        self.assertIn("'step'", w[0])
        self.check_output(out, self.sd, "f32", "mixed.pth")
        rc, so, se = run_cli([src, out])
        self.assertEqual(rc, 0, se)
        self.assertIn("warning", se)
        self.assertIn("'name'", se)

    def test_list(self):
        for fmt, src in self.ckpt.items():
            rc, so, se = run_cli([src, "--list", "--prefix", "x."])
            self.assertEqual(rc, 0, se)
            rows = [line.split(None, 2) for line in so.splitlines()]
            self.assertEqual([r[0] for r in rows], ["x." + k for k in self.sd])
            for (k, dt, shape), t in zip(rows, self.sd.values()):
                self.assertEqual(dt, torch_dtype_name(t), k)
                self.assertEqual(json.loads(shape), list(t.shape), k)
            self.assertEqual(os.listdir(self.tmp).count("sd_%s.safetensors" % fmt), 0)  # wrote nothing

    def test_help_and_default_output(self):
        rc, so, se = run_cli(["--help"])
        self.assertEqual(rc, 0)
        for opt in ("--dtype", "--prefix", "--strip-prefix", "--key", "--list"):
            self.assertIn(opt, so)
        src = shutil.copy(self.ckpt["legacy"], self.path("netG_200000.pth"))
        rc, so, se = run_cli([src, "-q"])
        self.assertEqual((rc, so), (0, ""), se)
        self.check_output(self.path("netG_200000.safetensors"), self.sd, "f32", "netG_200000.pth")
        rc, so, se = run_cli([src, src])
        self.assertEqual(rc, 1)
        self.assertIn("input path", se)

    # -- hostile and broken input --------------------------------------------------------------

    def assert_rejected(self, src, *needles):
        out = self.path("rejected.safetensors")
        with self.assertRaises(p2s.ConvertError) as cm:
            self.convert(src, out)
        for n in needles:
            self.assertIn(n, str(cm.exception))
        self.assertFalse(os.path.exists(out))
        rc, so, se = run_cli([src, out])
        self.assertEqual(rc, 1, se)
        self.assertTrue(se.startswith("pth2safetensors: error: %s: " % src), se)
        self.assertNotIn("Traceback", se)
        self.assertFalse(os.path.exists(out))
        return str(cm.exception)

    def test_malicious_pickles_are_rejected_without_running(self):
        marker = self.path("pwned")
        sysname = "%s.%s" % (os.system.__module__, os.system.__name__)  # posix.system
        evil = _Evil(marker)
        cases = {
            "evil_zip.pth": lambda p: torch.save({"w": torch.ones(2), "x": evil}, p),
            "evil_legacy.pth": lambda p: torch.save({"w": torch.ones(2), "x": evil}, p,
                                                    _use_new_zipfile_serialization=False),
        }
        for proto in (2, 4):  # a bare pickle: the restricted unpickler also reads the magic-number pickle
            cases["evil_raw%d.pkl" % proto] = lambda p, proto=proto: write_file(p, pickle.dumps(evil, proto))
        # a zip whose data.pkl is a bare evil pickle
        cases["evil_datapkl.pth"] = lambda p: zipfile.ZipFile(p, "w").writestr("archive/data.pkl", pickle.dumps(evil, 2))
        for name, make in cases.items():
            with self.subTest(name):
                make(self.path(name))
                self.assert_rejected(self.path(name), "unsupported global", sysname)
                self.assertFalse(os.path.exists(marker), "the pickle ran os.system")
        # torch.storage._load_from_bytes (what torch.save uses for storages pickled outside torch.save)
        lfb = _Reducer(torch.storage._load_from_bytes, (b"\x80\x02K\x01.",))
        for legacy in (False, True):
            src = save({"w": lfb}, self.path("lfb_%d.pth" % legacy), legacy)
            self.assert_rejected(src, "torch.storage._load_from_bytes")
        src = self.path("eval.pth")
        save({"w": _Reducer(eval, ("__import__('os').system('touch %s')" % marker,))}, src, False)
        self.assert_rejected(src, "unsupported global", "eval'")  # __builtin__.eval at protocol 2
        self.assertFalse(os.path.exists(marker))
        # a whole pickled model (torch.save(model)) names its class
        src = save(nn.Sequential(nn.Linear(2, 2)), self.path("model.pth"), True)
        self.assert_rejected(src, "unsupported global", "torch.nn.modules")

    def test_truncated_files(self):
        for fmt, src in self.ckpt.items():
            with open(src, "rb") as f:
                blob = f.read()
            for cut in sorted({len(blob) - 1, len(blob) - 30, len(blob) - 500, len(blob) // 2, 400, 60, 20, 3}):
                with self.subTest(fmt=fmt, cut=cut):
                    p = self.path("cut_%s_%d.pth" % (fmt, cut))
                    with open(p, "wb") as f:
                        f.write(blob[:cut])
                    self.assert_rejected(p, "truncated")

    def test_not_a_checkpoint(self):
        cases = {"text.pth": b"hello, this is not a checkpoint\n", "empty.pth": b"",
                 "random.pth": bytes(range(7, 255)) * 3, "pickle_list.pkl": pickle.dumps([1, 2, 3], 2),
                 "corrupt_zip.pth": b"PK\x03\x04" + b"\0" * 100}
        for name, data in cases.items():
            with self.subTest(name):
                with open(self.path(name), "wb") as f:
                    f.write(data)
                msg = self.assert_rejected(self.path(name))
                self.assertTrue(any(s in msg for s in ("not a PyTorch checkpoint", "empty", "damaged")), msg)
        st = self.path("already.safetensors")
        self.convert(self.ckpt["zip"], st)
        self.assert_rejected(st, "already a safetensors")
        self.assert_rejected(self.path("does_not_exist.pth"), "cannot open")
        # a single tensor, and a list, are not state_dicts
        self.assert_rejected(save(torch.ones(3), self.path("tensor.pth"), False), "single tensor")
        self.assert_rejected(save([torch.ones(3)], self.path("list.pth"), True), "list")


class TestWithoutTorch(unittest.TestCase):
    """Checks that need no torch: the writer and reader on hand-made tensors."""

    def test_writer_layout_and_alignment(self):
        tmp = tempfile.mkdtemp(prefix="pth2st_")
        try:
            f32 = p2s.Storage("F32", 3, "a", loader=lambda: struct.pack("<3f", 1, 2, 3))
            u8 = p2s.Storage("U8", 3, "b", loader=lambda: b"\x01\x02\x03")
            i64 = p2s.Storage("I64", 1, "c", loader=lambda: struct.pack("<q", -5))
            f16 = p2s.Storage("F16", 2, "d", loader=lambda: struct.pack("<2e", 0.5, -2.0))
            ts = collections.OrderedDict([
                ("u8", p2s.Tensor(u8, 0, (3,), (1,))), ("f16", p2s.Tensor(f16, 0, (2,), (1,))),
                ("f32", p2s.Tensor(f32, 0, (3,), (1,))), ("i64", p2s.Tensor(i64, 0, (), ())),
                ("f32_rev", p2s.Tensor(f32, 1, (2,), (1,)))])
            out = os.path.join(tmp, "w.safetensors")
            p2s.write_safetensors(out, ts, "f32", {"source": "x", "format": "pt"}, use_numpy=False)
            meta, got = read_safetensors(self, out)
            self.assertEqual(meta, {"source": "x", "format": "pt"})
            self.assertEqual(got["f16"], ("F32", [2], struct.pack("<2f", 0.5, -2.0)))
            self.assertEqual(got["i64"], ("I64", [], struct.pack("<q", -5)))
            self.assertEqual(got["f32_rev"][2], struct.pack("<2f", 2, 3))
            self.assertEqual(got["u8"][2], b"\x01\x02\x03")
            bad = collections.OrderedDict([("oob", p2s.Tensor(f32, 2, (2,), (1,)))])
            with self.assertRaises(p2s.ConvertError) as cm:
                p2s.write_safetensors(out + "2", bad)
            self.assertIn("reaches element 3", str(cm.exception))
            self.assertFalse(os.path.exists(out + "2"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if not HAVE_TORCH:
        print("NOTE: " + NO_TORCH_MSG + "; the checkpoint tests are skipped", file=sys.stderr)
    unittest.main(verbosity=2)
