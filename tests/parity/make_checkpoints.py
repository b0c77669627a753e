"""make_checkpoints.py OUTDIR [--no-image-encoder] [--seed N] [--keep-pth]: official-style
AttnGAN / DAMSM checkpoints with random weights, converted to safetensors, for
tests/test_checkpoints.c.

Run with Debian's /usr/bin/python3 (PyTorch 1.13). With the reference networks of
../shared/reference/ref_attngan.py (or $ATTNGAN_REFERENCE) at the tiny test sizes it builds
random-weight networks (BN affine parameters and running statistics made non-trivial), then
torch.save()s their state_dicts the way the official AttnGAN code does:

    text_encoder.pth   RNNEncoder incl. zsl_g             legacy format (pre-1.6, like AttnGAN's 2018 files)
    image_encoder.pth  CNNEncoder(own=True), trunk incl.  legacy          (skipped with --no-image-encoder)
    netG.pth           GNet, branch 3                     zip
    netD0/1/2.pth      DNet 64 / 128 / 256                legacy
    zsl_d.pth          ZSLD                               zip
    netG_module.pth    nn.DataParallel(GNet): 'module.' key prefix, legacy
    attngan_netG.pth   AttnGAN's G_NET (CA_NET + noise), branch 3  legacy, no num_batches_tracked (2018)
    attngan_text_encoder.pth  AttnGAN's RNN_ENCODER (no ZSL G)      legacy
    captions.pickle    ixtoword / wordtoix of the 60 words; attngan_tiny.yml: the original's YAML keys

Each is converted by tools/pth2safetensors.py, run with the python3 on PATH ($PTH2ST_PYTHON
overrides) and with `import torch` made to fail, so the conversion is proven torch-free:
OUTDIR/<name>.safetensors (netG_module with --strip-prefix module., and netG_f16.safetensors
from netG.pth with --dtype f16). The .pth files are deleted afterwards unless --keep-pth.

Also written: OUTDIR/config.json (the reference's upper-case config fields plus "branch" and
"correct_mask", for model_config_from_json) and OUTDIR/reference.safetensors with fixed random
inputs (in.*) and each network's eval-mode forward outputs (out.*):

    in.captions (B, T) I64, in.cap_lens (B) I64, in.z (B, ZSL_Z)
        -> out.te.words_emb (B, E, L), out.te.sent_lstm (B, E), out.te.sent_emb (B, E)
    in.sent_emb (B, E), in.words_emb (B, E, L), in.mask (B, L) I64 (1 = padding word)
        -> out.netG.imgs0/1/2 (B, 3, 64/128/256, ...), out.netG.att0/1 (B, L, 64/128, ...)
    in.img64 / in.img128 / in.img256 (BD, 3, S, S), in.cond (BD, E)
        -> out.netD<i>.code (BD, 8 DF_DIM, 4, 4), out.netD<i>.cond (BD), out.netD<i>.uncond (BD)
    in.zsl_x (B, E) -> out.zsl_d.pred (B, 1), out.zsl_d.cls (B, NUM_CLASSES)
    in.img64 -> out.ie.region (BD, E, 17, 17), out.ie.code (BD, E), out.ie.trunk_pool (BD, 2048)
    in.ca.captions, in.ca.cap_lens, in.ca.z (B, 5), in.ca.eps (B, 6) -> out.ca.words_emb,
        out.ca.sent_emb (the LSTM's code), out.ca.imgs0/1/2, out.ca.att0/1 (AttnGAN's G, eval mode)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
PTH2ST = os.path.join(ROOT, 'tools', 'pth2safetensors.py')
REF = os.environ.get('ATTNGAN_REFERENCE', os.path.join(ROOT, '..', 'shared', 'reference'))
TINY = ['--gf-dim', '4', '--df-dim', '4', '--emb-dim', '16', '--word-dim', '16', '--n-words', '60', '--words-num', '12',
        '--zsl-h', '64', '--zsl-rdc', '32', '--zsl-z', '8', '--num-classes', '10', '--r-num', '1']

ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
ap.add_argument('outdir')
ap.add_argument('--no-image-encoder', action='store_true', help='skip the image encoder (its trunk is ~87 MB)')
ap.add_argument('--seed', type=int, default=2024)
ap.add_argument('--keep-pth', action='store_true', help='keep the .pth checkpoints next to the safetensors')
ARGS = ap.parse_args()

if not os.path.exists(os.path.join(REF, 'ref_attngan.py')):
    sys.exit(f'make_checkpoints: no ref_attngan.py in {REF} (set ATTNGAN_REFERENCE)')
sys.path.insert(0, REF)
sys.argv = ['ref_attngan.py', '--threads', '2'] + TINY  # ref_attngan parses sys.argv at import
import ref_attngan as R  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

C = R.C
OUT = os.path.abspath(ARGS.outdir)
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(ARGS.seed)
gen = torch.Generator().manual_seed(ARGS.seed + 1)
B, BD = 3, 2  # batch of the text side / of the image side


def randomize_bn(module):
    """BN affine parameters away from (1, 0), so that loading them matters."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.8, 1.2)
                m.bias.normal_(0.0, 0.1)


def perturb_running_stats(module):
    """Running statistics that differ from a batch's own statistics (and from 0 / 1)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.add_(torch.randn(m.running_mean.shape) * 0.05 * m.running_var.sqrt())
                m.running_var.mul_(torch.rand(m.running_var.shape) * 0.4 + 0.8)


def calibrate(model, run):
    """Like R.calibrate_bn, with any forward (run()): every BN's running statistics from one
    synthetic batch (cumulative average), so the random nets stay O(1) in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    moms = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        run()
    for m, mom in zip(bns, moms):
        m.momentum = mom
    model.eval()


def captions_batch(n, lens):
    caps = torch.zeros(n, C.WORDS_NUM, dtype=torch.long)
    for i, k in enumerate(lens):
        caps[i, :k] = torch.randint(1, C.N_WORDS, (k,), generator=gen)
    return caps


def save(obj, name, legacy):
    path = os.path.join(OUT, name + '.pth')
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


T = []  # (name, tensor) of reference.safetensors
saved = []  # (pth path, safetensors name, extra converter args)

# ---------------------------------------------------------------- text encoder (+ ZSL G)
te = R.RNNEncoder().eval()
lens = [C.WORDS_NUM, C.WORDS_NUM - 3, 5]  # sorted descending (pack_padded_sequence)
caps = captions_batch(B, lens)
z = torch.randn(B, C.ZSL_Z, generator=gen)
R.TRACE = R.Trace()
with torch.no_grad():
    words_emb, sent_emb = te(caps, lens, z)
sent_lstm = R.TRACE.out['sent_lstm']
R.TRACE = None
T += [('in.captions', caps), ('in.cap_lens', torch.tensor(lens, dtype=torch.long)), ('in.z', z),
      ('out.te.words_emb', words_emb), ('out.te.sent_lstm', sent_lstm), ('out.te.sent_emb', sent_emb)]
saved.append((save(te.state_dict(), 'text_encoder', legacy=True), 'text_encoder', []))

# ---------------------------------------------------------------- G (branch 3)
G = R.GNet(3, correct_mask=False)
G.apply(R.weights_init)
randomize_bn(G)
L = max(lens)
mask = (caps == 0)[:, :L]
g_sent = torch.randn(B, C.EMBEDDING_DIM, generator=gen) * 0.5
g_words = torch.randn(B, C.EMBEDDING_DIM, L, generator=gen) * 0.5
calib_sent = torch.randn(8, C.EMBEDDING_DIM, generator=gen) * 0.5
calib_words = torch.randn(8, C.EMBEDDING_DIM, L, generator=gen) * 0.5
calib_mask = (captions_batch(8, [12, 11, 10, 9, 8, 7, 6, 5]) == 0)[:, :L]
calibrate(G, lambda: G(calib_sent, calib_words, calib_mask))
perturb_running_stats(G)
G.eval()
with torch.no_grad():
    imgs, atts = G(g_sent, g_words, mask)
T += [('in.sent_emb', g_sent), ('in.words_emb', g_words), ('in.mask', mask.long())]
T += [(f'out.netG.imgs{i}', x) for i, x in enumerate(imgs)] + [(f'out.netG.att{i}', a) for i, a in enumerate(atts)]
saved.append((save(G.state_dict(), 'netG', legacy=False), 'netG', []))
saved.append((os.path.join(OUT, 'netG.pth'), 'netG_f16', ['--dtype', 'f16']))
saved.append((save(nn.DataParallel(G).state_dict(), 'netG_module', legacy=True), 'netG_module',
              ['--strip-prefix', 'module.']))

# ---------------------------------------------------------------- Ds
cond = torch.randn(BD, C.EMBEDDING_DIM, generator=gen) * 0.5
T.append(('in.cond', cond))
for i in range(3):
    S = 64 * 2 ** i
    D = R.DNet(S)
    D.apply(R.weights_init)
    randomize_bn(D)
    x = torch.rand(BD, 3, S, S, generator=gen) * 2 - 1
    calib = torch.rand(8, 3, S, S, generator=gen) * 2 - 1
    calib_c = torch.randn(8, C.EMBEDDING_DIM, generator=gen) * 0.5
    calibrate(D, lambda: D.COND_DNET(D(calib), calib_c))  # the jointConv BN too
    perturb_running_stats(D)
    D.eval()
    with torch.no_grad():
        code = D(x)
        T += [(f'in.img{S}', x), (f'out.netD{i}.code', code), (f'out.netD{i}.cond', D.COND_DNET(code, cond)),
              (f'out.netD{i}.uncond', D.UNCOND_DNET(code))]
    saved.append((save(D.state_dict(), f'netD{i}', legacy=True), f'netD{i}', []))

# ---------------------------------------------------------------- ZSL D
zd = R.ZSLD().eval()
zx = torch.randn(B, C.EMBEDDING_DIM, generator=gen)
with torch.no_grad():
    pred, cls = zd(zx)
T += [('in.zsl_x', zx), ('out.zsl_d.pred', pred), ('out.zsl_d.cls', cls)]
saved.append((save(zd.state_dict(), 'zsl_d', legacy=False), 'zsl_d', []))

# ---------------------------------------------------------------- image encoder (trunk included)
if not ARGS.no_image_encoder:
    t0 = time.time()
    ie = R.CNNEncoder(own=True)
    randomize_bn(ie)
    # random trunk weights blow up in eval mode with running stats 0 / 1: calibrate them
    R.calibrate_bn(ie, torch.rand(4, 3, 64, 64, generator=gen) * 2 - 1)
    ie.eval()
    R.TRACE = R.Trace()
    with torch.no_grad():
        region, code = ie(T[[n for n, _ in T].index('in.img64')][1])
    pool = R.TRACE.out['trunk_pool']
    R.TRACE = None
    T += [('out.ie.region', region), ('out.ie.code', code), ('out.ie.trunk_pool', pool)]
    saved.append((save(ie.state_dict(), 'image_encoder', legacy=True), 'image_encoder', []))
    print(f'make_checkpoints: image encoder built in {time.time() - t0:.1f} s')

# ---------------------------------------------------------------- AttnGAN's own G and text encoder (attngan import)
# The original AttnGAN (code/model.py): G_NET with CA_NET (fc = Linear(E, 4 C) + GLU, c_code =
# eps * exp(0.5 logvar) + mu) feeding INIT_STAGE_G cat(c_code, z); RNN_ENCODER without ZSL G,
# whose sentence code is the LSTM's. Saved as its 2018 files were: legacy format, no
# num_batches_tracked (PyTorch < 0.4.1 had none); plus a captions.pickle (protocol 2, as the
# original writes it) whose ixtoword numbers the 60 words, and the YAML of these sizes.
CA_C, CA_Z = 6, 5


class CANet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(C.EMBEDDING_DIM, CA_C * 4, bias=True)
        self.relu = R.GLU()

    def forward(self, sent, eps):
        x = self.relu(self.fc(sent))
        mu, logvar = x[:, :CA_C], x[:, CA_C:]
        return eps * torch.exp(0.5 * logvar) + mu


class AttnGanG(R.GNet):
    def __init__(self, branch):
        super().__init__(branch, correct_mask=False)
        self.ca_net = CANet()
        self.h_net1 = R.InitStageG(C.GF_DIM * 16, CA_C + CA_Z)

    def forward(self, z, sent, words, mask, eps):
        h = self.h_net1(torch.cat((self.ca_net(sent, eps), z), 1))
        imgs, atts = [self.img_net1(h)], []
        for k in range(2, self.branch + 1):
            h, att = getattr(self, f'h_net{k}')(h, words, mask)
            imgs.append(getattr(self, f'img_net{k}')(h))
            atts.append(att)
        return imgs, atts


ate = R.RNNEncoder().eval()
alens = [C.WORDS_NUM - 1, 7, 4]
acaps = captions_batch(B, alens)
R.TRACE = R.Trace()
with torch.no_grad():
    a_words, _ = ate(acaps, alens, torch.zeros(B, C.ZSL_Z))
a_sent = R.TRACE.out['sent_lstm']
R.TRACE = None
ate_sd = {k: v for k, v in ate.state_dict().items() if not k.startswith('zsl_g.')}
AG = AttnGanG(3)
AG.apply(R.weights_init)
randomize_bn(AG)
aL = max(alens)
amask = (acaps == 0)[:, :aL]
calib_caps = captions_batch(8, [12, 11, 10, 9, 8, 7, 6, 5])
calibrate(AG, lambda: AG(torch.randn(8, CA_Z, generator=gen), torch.randn(8, C.EMBEDDING_DIM, generator=gen) * 0.5,
                         torch.randn(8, C.EMBEDDING_DIM, aL, generator=gen) * 0.5, (calib_caps == 0)[:, :aL],
                         torch.randn(8, CA_C, generator=gen)))
perturb_running_stats(AG)
AG.eval()
az = torch.randn(B, CA_Z, generator=gen)
aeps = torch.randn(B, CA_C, generator=gen)
with torch.no_grad():
    aimgs, aatts = AG(az, a_sent, a_words, amask, aeps)
T += [('in.ca.captions', acaps), ('in.ca.cap_lens', torch.tensor(alens, dtype=torch.long)), ('in.ca.z', az),
      ('in.ca.eps', aeps), ('out.ca.words_emb', a_words), ('out.ca.sent_emb', a_sent)]
T += [(f'out.ca.imgs{i}', x) for i, x in enumerate(aimgs)] + [(f'out.ca.att{i}', a) for i, a in enumerate(aatts)]
ag_sd = {k: v for k, v in AG.state_dict().items() if not k.endswith('num_batches_tracked')}
saved.append((save(ate_sd, 'attngan_text_encoder', legacy=True), 'attngan_text_encoder', []))
saved.append((save(ag_sd, 'attngan_netG', legacy=True), 'attngan_netG', []))
words = ['<end>', 'this', 'bird', 'is', 'red', 'with', 'white', 'wings', 'a', 'small', 'yellow', 'black', 'and', 'has',
         'beak', 'short', 'long', 'tail', 'blue', 'brown']
words += [f'word{i}' for i in range(len(words), C.N_WORDS)]
ixtoword = {i: w for i, w in enumerate(words)}
wordtoix = {w: i for i, w in enumerate(words)}
with open(os.path.join(OUT, 'captions.pickle'), 'wb') as f:
    import pickle
    pickle.dump([[[1, 2, 3]], [[4, 5]], ixtoword, wordtoix], f, protocol=2)
with open(os.path.join(OUT, 'attngan_tiny.yml'), 'w') as f:
    f.write(f"CONFIG_NAME: 'attn2_tiny'\nDATASET_NAME: 'birds'\nTREE:\n  BRANCH_NUM: 3\nGAN:\n  GF_DIM: {C.GF_DIM}\n"
            f"  Z_DIM: {CA_Z}\n  CONDITION_DIM: {CA_C}\n  R_NUM: {C.R_NUM}\nTEXT:\n  EMBEDDING_DIM: {C.EMBEDDING_DIM}\n"
            f"  WORDS_NUM: {C.WORDS_NUM}\nTRAIN:\n  FLAG: False\n  NET_G: '../models/attngan_netG.pth'\n")

# ---------------------------------------------------------------- config, reference outputs
cfg = R.config_dict()
cfg.update(branch=3, correct_mask=0, seed=ARGS.seed)
with open(os.path.join(OUT, 'config.json'), 'w') as f:
    json.dump(cfg, f, indent=1, sort_keys=True)
meta = {'format': 'make_checkpoints-1', 'config': json.dumps(cfg), 'torch': torch.__version__,
        'image_encoder': str(not ARGS.no_image_encoder).lower(), 'command': ' '.join(['make_checkpoints.py'] + sys.argv[1:])}
R.write_safetensors(os.path.join(OUT, 'reference.safetensors'), T, meta)

# ---------------------------------------------------------------- conversion, without torch
py = os.environ.get('PTH2ST_PYTHON') or shutil.which('python3') or sys.executable
with tempfile.TemporaryDirectory() as block:
    os.makedirs(os.path.join(block, 'torch'))
    with open(os.path.join(block, 'torch', '__init__.py'), 'w') as f:
        f.write("raise ImportError('make_checkpoints: pth2safetensors.py must not import torch')\n")
    env = dict(os.environ, PYTHONPATH=block + os.pathsep + os.environ.get('PYTHONPATH', ''))
    for pth, name, extra in saved:
        dst = os.path.join(OUT, name + '.safetensors')
        cmd = [py, PTH2ST, pth, dst, '-q'] + extra
        t0 = time.time()
        r = subprocess.run(cmd, env=env)
        if r.returncode:
            sys.exit(f'make_checkpoints: {" ".join(cmd)} failed (exit {r.returncode})')
        print(f'make_checkpoints: {os.path.basename(pth)} -> {name}.safetensors {" ".join(extra)} '
              f'({os.path.getsize(dst) / 2 ** 20:.2f} MiB, {time.time() - t0:.1f} s)')
if not ARGS.keep_pth:
    for pth in sorted({p for p, _, _ in saved}):
        os.remove(pth)
print(f'make_checkpoints: converted with {py}; wrote {OUT}/config.json, reference.safetensors '
      f'({len(T)} tensors){"" if ARGS.no_image_encoder else ", image encoder included"}')
