/* train_cmd.c: `attngan pretrain` and `attngan train`: option parsing; the programs are in
 * src/train/pretrain.c and src/train/train_gan.c. */
#include "app.h"
#include "../train/pretrain.h"
#include "../train/train_gan.h"
#include "../core/dist.h"

#include <stdio.h>

static const char *PRETRAIN_USAGE =
    "usage: attngan pretrain [--cfg cfg/DAMSM/bird.yml] [--set KEY=VALUE]... [--data DIR] [--out DIR]\n"
    "                        [--seed N] [--threads N] [--device D] [--max-steps N] [--max-minutes M]\n"
    "                        [--resume DIR | --force] [--quiet] [--bf16]\n"
    "\n"
    "DAMSM + ZSL pretraining of the text and image encoders (the seed's pretrain_DAMSM.py).\n"
    "  --cfg FILE       YAML config with AttnGAN's keys (default cfg/DAMSM/bird.yml; a CPU-sized one:\n"
    "                   cfg/DAMSM/bird_cpu.yml, which trains on cached Inception features)\n"
    "  --set K=V        override one key, e.g. --set TRAIN.BATCH_SIZE=8 (repeatable)\n"
    "  --data DIR       AttnGAN's data/birds directory; without it $ATTNGAN_DATA/birds, else the config's\n"
    "                   DATA_DIR, else ../shared/data/birds (the rule of every command)\n"
    "  --out DIR        output directory (default out/<CONFIG_NAME>): checkpoints/, losses.csv,\n"
    "                   eval.csv, tensorboard/, and the encoders text_encoder.safetensors,\n"
    "                   image_encoder.safetensors, zsl_d.safetensors with vocab.txt and config.json\n"
    "  --seed N         overrides EXTRA.SEED\n"
    "  --threads N      threads for the math, 1..1024 (default: the cores free at start)\n"
    "  --device D       cpu (default), cuda (a `make CUDA=1` build with a GPU) or hostdev (the\n"
    "                   device path on the CPU, for tests); or ATTNGAN_DEVICE. Checkpoints are\n"
    "                   the same on every device: a run resumes on another one\n"
    "  --max-steps N    stop after N optimizer steps in all, writing a checkpoint\n"
    "  --max-minutes M  stop after M minutes of training (not counting the one-time feature cache)\n"
    "  --resume DIR     continue a run (its directory or one of its checkpoints) exactly where it stopped\n"
    "  --force          --out holds a run: remove its files first (checkpoints/, logs, tensorboard/,\n"
    "                   samples/, encoders/, the networks; cache/ is kept) and start a clean run.\n"
    "                   Without --resume or --force, an --out that holds a run is refused\n"
    "  --bf16           convolutions with bf16 operands and fp32 accumulation: faster on CPUs with\n"
    "                   AVX512-BF16, within 1e-2 of fp32 per convolution (docs/PERFORMANCE.md); the\n"
    "                   same as ATTNGAN_CONV_PRECISION=bf16\n"
    "Ctrl-C (SIGINT) or SIGTERM stops after the current step with a checkpoint; a run killed outright\n"
    "resumes from its last checkpoint (written atomically at the end of every SNAPSHOT_INTERVAL epochs).\n"
    "AttnGAN's keys keep their meaning; TRAIN.FLAG False, DATASET_NAME other than birds and\n"
    "TEXT.CAPTIONS_PER_IMAGE other than 10 are refused with what to do instead (README, Training).\n"
    "Data-parallel: mpirun -np N attngan pretrain ... trains on N ranks, each a batch of TRAIN.BATCH_SIZE\n"
    "per step; rank 0 writes everything; resume with the same N (docs/DISTRIBUTED.md).\n"
;

int cmd_pretrain(int argc, char **argv) {
    RunArgs a;
    int rc = run_parse_args(argc, argv, &a, PRETRAIN_USAGE);
    if (rc) return rc == 1 ? 0 : 2;
    a.program = "pretrain";
    if (dist_init()) { fprintf(stderr, "attngan pretrain: %s\n", err_msg()); return 2; }
    return dist_finalize(pretrain_main(&a));
}

static const char *TRAIN_USAGE =
    "usage: attngan train [--cfg cfg/bird_attn2.yml] [--set KEY=VALUE]... [--data DIR] [--out DIR]\n"
    "                     [--seed N] [--threads N] [--device D] [--max-steps N] [--max-minutes M]\n"
    "                     [--resume DIR | --force] [--quiet] [--bf16]\n"
    "\n"
    "AttnGAN + ZSL training (the seed's trainer.py) on the pretrained encoders that TRAIN.NET_E names\n"
    "(text_encoder.safetensors from attngan pretrain; image_encoder, zsl_d and vocab.txt beside it).\n"
    "  --cfg FILE       YAML config with AttnGAN's keys (default cfg/bird_attn2.yml; a 64 px CPU one:\n"
    "                   cfg/bird_attn1_cpu.yml)\n"
    "  --set K=V        override one key, e.g. --set TRAIN.BATCH_SIZE=8 (repeatable)\n"
    "  --data DIR       AttnGAN's data/birds directory; without it $ATTNGAN_DATA/birds, else the config's\n"
    "                   DATA_DIR, else ../shared/data/birds (the rule of every command)\n"
    "  --out DIR        output directory (default out/<CONFIG_NAME>): checkpoints/, samples/,\n"
    "                   losses.csv, tensorboard/, and at the end netG.safetensors (the EMA G)\n"
    "  --seed N         overrides EXTRA.SEED\n"
    "  --threads N      threads for the math, 1..1024 (default: the cores free at start)\n"
    "  --device D       cpu (default), cuda (a `make CUDA=1` build with a GPU) or hostdev (the\n"
    "                   device path on the CPU, for tests); or ATTNGAN_DEVICE. Checkpoints are\n"
    "                   the same on every device: a run resumes on another one\n"
    "  --max-steps N    stop after N optimizer steps in all, writing a checkpoint and samples\n"
    "  --max-minutes M  stop after M minutes of training, writing a checkpoint and samples\n"
    "  --resume DIR     continue a run (its directory or one of its checkpoints) exactly where it stopped\n"
    "  --force          --out holds a run: remove its files first (checkpoints/, logs, tensorboard/,\n"
    "                   samples/, encoders/, the networks; cache/ is kept) and start a clean run.\n"
    "                   Without --resume or --force, an --out that holds a run is refused\n"
    "  --bf16           convolutions with bf16 operands and fp32 accumulation: faster on CPUs with\n"
    "                   AVX512-BF16, within 1e-2 of fp32 per convolution (docs/PERFORMANCE.md); the\n"
    "                   same as ATTNGAN_CONV_PRECISION=bf16\n"
    "Ctrl-C (SIGINT) or SIGTERM stops after the current step with a checkpoint; a run killed outright\n"
    "resumes from its last checkpoint (written atomically every SNAPSHOT_INTERVAL steps).\n"
    "AttnGAN's keys keep their meaning; TRAIN.FLAG False (the original then generates: use attngan\n"
    "sample or examples), TRAIN.NET_G with TRAIN.B_NET_D True (use --resume), GAN.B_ATTENTION False,\n"
    "DATASET_NAME other than birds and TEXT.CAPTIONS_PER_IMAGE other than 10 are refused with what to\n"
    "do instead (README, Training).\n"
    "Data-parallel: mpirun -np N attngan train ... trains on N ranks, each a batch of TRAIN.BATCH_SIZE\n"
    "per step; rank 0 writes everything; resume with the same N (docs/DISTRIBUTED.md).\n"
;

int cmd_train(int argc, char **argv) {
    RunArgs a;
    int rc = run_parse_args(argc, argv, &a, TRAIN_USAGE);
    if (rc) return rc == 1 ? 0 : 2;
    a.program = "train";
    if (dist_init()) { fprintf(stderr, "attngan train: %s\n", err_msg()); return 2; }
    return dist_finalize(train_gan_main(&a));
}
