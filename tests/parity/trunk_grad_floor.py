"""trunk_grad_floor.py DUMP [TRUNK]: how far apart two correct implementations of the G-step
losses are on d errG / d fake_imgs (DUMP_FORMAT stage 4), measured with the reference itself.

Replays stage 4 of a gan_step dump (the dump's fakes, the dump's updated D weights) in PyTorch
float32 at 1 and 2 threads and in float64, and prints the norm-relative distance of each
dfake_imgs<i> to the dump and to float64. The gradient of the last image goes back through the
frozen random Inception trunk, whose ReLU kinks make it ill-conditioned: this is why `attngan
parity` gates it with --tol-trunk-grad instead of --tol-grad.
"""
import json
import os
import sys

dump = sys.argv[1]
trunk_arg = sys.argv[2] if len(sys.argv) > 2 else None
here = os.path.dirname(os.path.abspath(__file__))
ref = os.environ.get('ATTNGAN_REFERENCE', os.path.join(here, '..', '..', '..', 'shared', 'reference'))
sys.path.insert(0, ref)
with open(dump, 'rb') as f:
    import struct
    n = struct.unpack('<Q', f.read(8))[0]
    meta = json.loads(f.read(n))['__metadata__']
cfg = json.loads(meta['config'])
flags = ['--mode', 'gan_step', '--branch', str(cfg['branch']), '--batch', str(cfg['batch'])]
for flag, field in (('--gf-dim', 'GF_DIM'), ('--df-dim', 'DF_DIM'), ('--n-words', 'N_WORDS'), ('--words-num', 'WORDS_NUM'),
                    ('--word-dim', 'WORD_DIM'), ('--emb-dim', 'EMBEDDING_DIM'), ('--num-classes', 'NUM_CLASSES'),
                    ('--zsl-h', 'ZSL_H'), ('--zsl-rdc', 'ZSL_RDC'), ('--zsl-z', 'ZSL_Z'), ('--r-num', 'R_NUM')):
    flags += [flag, str(cfg[field])]
sys.argv = ['ref_attngan.py'] + flags
import ref_attngan as R  # noqa: E402
import torch  # noqa: E402

T, _ = R.read_safetensors(dump)
trunk = trunk_arg or os.path.join(os.path.dirname(dump), meta['trunk_file'])
trunk_sd, _ = R.read_safetensors(trunk)


def stage4(dtype, threads):
    torch.set_num_threads(threads)
    ie, zd = R.CNNEncoder(own=True), R.ZSLD()
    ie.load_trunk(trunk_sd, trunk)
    ie.load_state_dict({k[len('param.image_encoder.'):]: v for k, v in T.items() if k.startswith('param.image_encoder.')}, strict=False)
    zd.load_state_dict({k[len('param.zsl_d.'):]: v for k, v in T.items() if k.startswith('param.zsl_d.')})
    Ds = []
    for i in range(cfg['branch']):
        D = R.DNet(64 * 2 ** i)
        sd = {k[len(f'param.netD{i}.'):]: v for k, v in T.items() if k.startswith(f'param.netD{i}.')}
        sd.update({k[len(f'after.netD{i}.'):]: v for k, v in T.items() if k.startswith(f'after.netD{i}.')})
        D.load_state_dict(sd)
        Ds.append(D.to(dtype).train())
    ie, zd = ie.to(dtype).eval(), zd.to(dtype).eval()
    fakes = [T[f'out.fake_imgs{i}'].to(dtype).requires_grad_() for i in range(cfg['branch'])]
    B = fakes[0].shape[0]
    err, _ = R.generator_loss(Ds, ie, zd, fakes, torch.ones(B, dtype=dtype), T['out.words_emb'].to(dtype),
                              T['out.sent_emb'].to(dtype), torch.arange(B), T['batch.cap_lens'].tolist(), T['batch.class_ids'])
    return torch.autograd.grad(err, fakes)


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


g64 = stage4(torch.float64, 2)
for threads in (1, 2):
    g32 = stage4(torch.float32, threads)
    for i, g in enumerate(g32):
        print(f'float32 {threads} thread(s) dfake_imgs{i}: vs dump {rel(g, T[f"out.dfake_imgs{i}"]):.2e}  vs float64 {rel(g, g64[i]):.2e}')
for i, g in enumerate(g64):
    print(f'float64 dfake_imgs{i}: dump vs float64 {rel(T[f"out.dfake_imgs{i}"], g):.2e}')
