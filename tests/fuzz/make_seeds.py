#!/usr/bin/env python3
"""make_seeds.py: writes the seed corpora of the fuzz harnesses (tests/fuzz/corpus/<name>/).

Run from the repository root: python3 tests/fuzz/make_seeds.py. The seeds are small valid (and a
few nearly valid) inputs that reach deep into each parser; libFuzzer mutates them. Only the
standard library is used; the image seeds are copies of tests/fixtures/image_*. Re-running
rewrites the same files."""
import json, os, pickle, shutil, struct

ROOT = "tests/fuzz/corpus"


def put(name, fname, data):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def safetensors(tensors, meta=None):
    """tensors: [(name, dtype, shape, raw bytes)] -> file bytes"""
    header, off, blobs = {}, 0, []
    if meta:
        header["__metadata__"] = meta
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def seeds_safetensors():
    f32 = struct.pack("<6f", 1.5, -2.25, 0.0, 3e-5, 65504.0, -1e-8)
    put("safetensors", "f32_i64_meta.safetensors",
        safetensors([("w", "F32", [2, 3], f32), ("steps", "I64", [2], struct.pack("<2q", 7, -1))], {"format": "pt", "step": "3"}))
    put("safetensors", "dtypes.safetensors",
        safetensors([("a", "F64", [1], struct.pack("<d", 2.5)), ("b", "F16", [2], b"\x00\x3c\x00\xc0"),
                     ("c", "BF16", [2], b"\x80\x3f\x40\xc0"), ("d", "I32", [1], struct.pack("<i", -5)),
                     ("e", "U8", [3], b"\x01\x02\xff"), ("f", "BOOL", [2], b"\x00\x01"), ("g", "I8", [1], b"\xfe"),
                     ("empty", "F32", [0, 4], b"")]))
    put("safetensors", "empty.safetensors", safetensors([]))


def seeds_pickle():
    names = ["001.Black_footed_Albatross/Black_Footed_Albatross_0046_18", "002.Laysan_Albatross/Laysan_Albatross_0002_1027"]
    put("pickle", "filenames_p2.pickle", pickle.dumps(names, protocol=2))
    put("pickle", "filenames_p0.pickle", pickle.dumps(names, protocol=0))
    put("pickle", "class_info_p4.pickle", pickle.dumps([1, 2, 2, 200, -3, 2 ** 40], protocol=4))
    caps = [[[1, 2], [2]], [[1]], {0: "<end>", 1: "hello", 2: "world"}, {"<end>": 0, "hello": 1, "world": 2}]
    put("pickle", "captions_p2.pickle", pickle.dumps(caps, protocol=2))
    put("pickle", "mixed_p3.pickle", pickle.dumps((None, True, 1.5, b"by\x00tes", "caf\u00e9", (), {}), protocol=3))


def seeds_yaml():
    for src in ["tests/configs/tiny_gan.yml", "tests/configs/tiny_damsm.yml", "cfg/bird_attn2.yml"]:
        shutil.copy(src, os.path.join(ROOT, "yaml_config", os.path.basename(src)))
    put("yaml_config", "flow_and_sets.yml",
        "TRAIN: {BATCH_SIZE: 4, SMOOTH: {GAMMA1: 4.0}}\nTEXT:\n  WORDS_NUM: 12   # a comment\nCONFIG_NAME: 'it''s \"q\"'\n"
        "DATA_DIR: \"data\\tbirds\"\n")
    put("yaml_config", "set_lines.txt", "TRAIN.BATCH_SIZE=8\nEXTRA.CORRECT_MASK=true\nTRAIN.NET_E='out/x.safetensors'\n"
        "TEXT.RNN_DROP = 0.25\nEXTRA.DIFFAUGMENT=color,translation\nGAN.B_DCGAN=False\n")


def seeds_json():
    put("json_config", "model_bird64.json", open("models/bird64/model.json", "rb").read())
    put("json_config", "model_config.json", json.dumps({"GF_DIM": 32, "DF_DIM": 64, "BETAS": [0.5, 0.999], "CA_NET": True,
                                                         "G_LR": 2e-4, "branch": 1, "correct_mask": 0}))
    put("json_config", "run_config.json", json.dumps({"TRAIN": {"BATCH_SIZE": 4, "SMOOTH": {"GAMMA1": 4.0}}, "CONFIG_NAME": "x",
                                                       "TEXT": {"WORDS_NUM": 12}, "EXTRA": {"CORRECT_MASK": True, "INCEPTION": None}}))


def seeds_text():
    put("text", "vocab.txt", "<end>\nthis\nbird\nis\nred\nwith\nwhite\nwings\n")
    put("text", "caption.txt", "This bird is RED, with white-wings and a short beak.")
    put("text", "unicode.txt", "A caf\u00e9 bird \u2014 na\u00efve \u00dcber_bird 3rd\xff\xfe \ud55c\uad6d\uc5b4 wings!".encode("utf-8", "surrogatepass"))


def seeds_long_text():
    put("long_text", "short.txt", b"\x00this bird is red with white wings")
    put("long_text", "sentences.txt", b"\x02this bird has a long tail. the crown is black! it lives in trees; "
        b"a small blue bird with a yellow belly\nand white wings? unknown words here.")
    put("long_text", "subset.txt", b"\x0bthis bird is red with white wings and a short beak and a black crown and a yellow belly")


def seeds_image():
    for f in ["image_gray2.png", "image_palette.png", "image_la.png", "image_interlaced.png", "image_rgb16.png",
              "image_progressive.jpg", "image_cmyk.jpg", "image_gray.jpg"]:
        shutil.copy(os.path.join("tests/fixtures", f), os.path.join(ROOT, "image", f))


def seeds_serve_body():
    put("serve_body", "full.json", '{"caption": "a small red bird with white wings", "seed": 42, "n": 2, "stage": 1, "format": "json"}')
    put("serve_body", "minimal.json", '{"caption":"bird"}')
    put("serve_body", "escapes.json", '{"caption": "caf\\u00e9 \\ud83d\\udc26 bird\\n", "format": null, "seed": 9007199254740991}')


def tree(files):
    """the packed form fuzz_unpack_tree reads (tests/fuzz/fuzz.h): a file's bytes end at the next "\\n@@ " """
    return b"\n".join(b"@@ " + p.encode() + b"\n" + (d.encode() if isinstance(d, str) else d) for p, d in files)


def seeds_cub():
    keys = ["001.A/a_1", "001.A/a_2", "002.B/b_1", "003.C/c_1"]
    files = [
        ("CUB_200_2011/classes.txt", "1 001.A\n2 002.B\n3 003.C"),
        ("CUB_200_2011/images.txt", "1 001.A/a_1.jpg\n2 001.A/a_2.jpg\n3 002.B/b_1.jpg\n4 003.C/c_1.jpg"),
        ("CUB_200_2011/image_class_labels.txt", "1 1\n2 1\n3 2\n4 3"),
        ("CUB_200_2011/bounding_boxes.txt", "1 1.0 2.0 30.5 40.0\n2 0 0 10 10\n3 5 5 20 20\n4 1 1 2 2"),
        ("CUB_200_2011/tight_crops.txt", "2 001.A/a_2.jpg"),
        ("CUB_200_2011/images/001.A/a_1.jpg", "x"),
        ("train/filenames.pickle", pickle.dumps(keys[:3], protocol=0)),
        ("train/class_info.pickle", pickle.dumps([1, 1, 2], protocol=2)),
        ("test/filenames.pickle", pickle.dumps(keys[3:], protocol=2)),
        ("test/class_info.pickle", pickle.dumps([3], protocol=0)),
    ]
    words = ["red", "blue", "green", "tiny"]
    for i, k in enumerate(keys):
        files.append(("text/%s.txt" % k, "\n".join("%s bird number %d." % (words[i], c) for c in range(10))))
    put("cub", "layout.tree", tree(files))
    caps = [[[1, 2]] + [[2]] * 29, [[1]] + [[2]] * 9, {0: "<end>", 1: "hello", 2: "world"}, {"<end>": 0, "hello": 1, "world": 2}]
    put("cub", "layout_captions_pickle.tree", tree(files + [("captions.pickle", pickle.dumps(caps, protocol=2))]))


def seeds_wikipedia():
    files = [
        ("articles/001.Alpha.txt", "the alpha is a bird .\nit has red wings .\nit lives in mexico ."),
        ("visual_labels/001.Alpha.txt", "0\n1\nOther"),
        ("articles/002.Beta.txt", "beta .\nbeta has a beak ."),
        ("visual_labels/002.Beta.txt", "Unlabelled\n0.5"),
        ("articles/003.Gamma.txt", "gamma .\r\ngamma sings .\r"),
        ("visual_labels/003.Gamma.txt", "0\r\n0\r"),
        ("split_easy_train.txt", "1\n3"),
        ("split_easy_test.txt", "2"),
        ("split_hard_train.txt", "2"),
        ("split_hard_test.txt", "3\n1\n"),
    ]
    put("wikipedia", "layout.tree", tree(files))


def seeds_keras():
    """the first layers of a TF.js layers model of Keras InceptionV3 (model.json and its shard):
    conv2d_1 (3x3, 3 -> 32, no bias) and batch_normalization_1 (no scale), f32, uint8 and uint16
    weights; the loader stops at the first layer missing from the topology (conv2d_2), after
    reading and checking the manifest and the shard"""
    layers = [
        {"class_name": "InputLayer", "config": {"name": "input_1", "batch_input_shape": [None, 299, 299, 3]}},
        {"class_name": "Conv2D", "name": "conv2d_1", "config": {"name": "conv2d_1", "filters": 32, "kernel_size": [3, 3],
                                                               "strides": [2, 2], "padding": "valid", "use_bias": False}},
        {"class_name": "BatchNormalization", "name": "batch_normalization_1",
         "config": {"name": "batch_normalization_1", "epsilon": 0.001, "scale": False, "center": True}},
    ]
    for l in layers[1:]:
        l["inbound_nodes"] = []

    def model(weights, paths, extra=None):
        m = {"format": "layers-model", "modelTopology": {"class_name": "Model", "model_config": {"class_name": "Model",
             "config": {"name": "inception_v3", "layers": layers}}},
             "weightsManifest": [{"paths": paths, "weights": weights}]}
        if extra:
            m.update(extra)
        return json.dumps(m, separators=(",", ":"))

    k = 3 * 3 * 3 * 32
    f32 = [{"name": "conv2d_1/kernel", "shape": [3, 3, 3, 32], "dtype": "float32"},
           {"name": "batch_normalization_1/beta", "shape": [32], "dtype": "float32"},
           {"name": "batch_normalization_1/moving_mean", "shape": [32], "dtype": "float32"},
           {"name": "batch_normalization_1/moving_variance", "shape": [32], "dtype": "float32"}]
    raw = struct.pack("<%df" % k, *[((i * 37) % 101 - 50) / 500.0 for i in range(k)])
    raw += struct.pack("<32f", *[0.01 * i for i in range(32)]) * 2 + struct.pack("<32f", *[1.0 + 0.1 * i for i in range(32)])
    put("keras", "f32.tree", tree([("model.json", model(f32, ["weights.bin"])), ("weights.bin", raw)]))
    q8 = [dict(w, quantization={"dtype": "uint8", "min": -0.1, "scale": 0.001}) for w in f32]
    raw8 = bytes((i * 7) % 256 for i in range(k + 3 * 32))
    put("keras", "uint8.tree", tree([("model.json", model(q8, ["weights.bin"])), ("weights.bin", raw8)]))
    q16 = [dict(w, quantization={"dtype": "uint16", "min": 0.0, "scale": 1e-5}) for w in f32]
    raw16 = struct.pack("<%dH" % (k + 96), *[(i * 131) % 65536 for i in range(k + 96)])
    half = len(raw16) // 2
    put("keras", "uint16_two_shards.tree", tree([("model.json", model(q16, ["group1-shard1of2.bin", "group1-shard2of2.bin"])),
                                                 ("group1-shard1of2.bin", raw16[:half]), ("group1-shard2of2.bin", raw16[half:])]))


if __name__ == "__main__":
    for name in ["safetensors", "pickle", "yaml_config", "json_config", "text", "long_text", "image", "serve_body", "cub", "wikipedia", "keras"]:
        os.makedirs(os.path.join(ROOT, name), exist_ok=True)
    seeds_safetensors(); seeds_pickle(); seeds_yaml(); seeds_json(); seeds_text(); seeds_long_text()
    seeds_image(); seeds_serve_body(); seeds_cub(); seeds_wikipedia(); seeds_keras()
