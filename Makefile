# ZSL-AttnGAN in C.
#   make            build build/attngan and the library
#   make test       unit tests (tests/run_tests.sh); SANITIZE=1 builds them with ASan+UBSan
#   make check      install missing Debian packages (python3-torch included), write the reference
#                   dumps and checkpoints, then `make test` and `make test SANITIZE=1`
#   make dumps      PyTorch reference dumps for `attngan parity` (build/dumps; needs python3-torch)
#   make fixtures   regenerate the PyTorch value fixtures (needs Debian's python3-torch)
#   make demo       install, build and draw examples/captions.txt with the bundled model into out/
#   make install    PREFIX/bin/attngan and PREFIX/share/attngan (the model, the evaluator and its
#                   trunk, the example captions, the configs); PREFIX=/usr/local, DESTDIR staged
#   DEBUG=1         -O0 -g;  SANITIZE=1  -fsanitize=address,undefined (separate build dir)
CC      ?= gcc
PYTHON  ?= /usr/bin/python3
PREFIX  ?= /usr/local

# -fno-math-errno: nothing reads errno after libm calls; it lets sqrtf compile to the (IEEE-exact)
# vector instruction, so loops such as the Adam update vectorise with the same bits.
CFLAGS_BASE := -I/usr/include/freetype2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wshadow -Werror=implicit-function-declaration -Wno-format-truncation -fno-math-errno -fopenmp -MMD -MP
# OpenBLAS built for OpenMP (Debian libopenblas-openmp-dev), linked by path: it shares the OpenMP
# thread pool with our own parallel loops (the pthreads build busy-waits against it).
OPENBLAS_DIR ?= /usr/lib/$(shell $(CC) -print-multiarch)/openblas-openmp
LDLIBS      := -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) -lopenblas -ldnnl -lcjson -lmicrohttpd -lzip -ljpeg -lpng -lyaml -lfreetype -lpthread -lm -fopenmp

ifeq ($(SANITIZE),1)
  BUILD  := build/san
  OPT    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDOPT  := -fsanitize=address,undefined
else ifeq ($(DEBUG),1)
  BUILD  := build/debug
  OPT    := -O0 -g
else
  BUILD  := build/release
  OPT    := -O3 -march=native -g
endif
# The CUDA backend (docs/CUDA.md): `make CUDA=1` builds everything in its own directory with
# -DATTNGAN_CUDA, the CUDA kernels (src/ops/cuda, nvcc with cuBLAS and cuDNN from $(CUDA_HOME)) and
# their tests, and links them into attngan (`--device cuda`); `make test-cuda` runs the kernel tests
# (each skips visibly without a GPU). CUDA_ARCH defaults to Hopper (sm_90: H100, H200).
CUDA_HOME   ?= /usr/local/cuda
NVCC        ?= $(CUDA_HOME)/bin/nvcc
CUDA_ARCH   ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
# cuDNN from CUDA_HOME, or where CUDNN_HOME says (a pip wheel's nvidia/cudnn on the GPU machine)
CUDNN_HOME  ?= $(CUDA_HOME)
CUDNN_LIBDIR := $(firstword $(wildcard $(CUDNN_HOME)/lib64 $(CUDNN_HOME)/lib))
comma := ,
CUDA_LDLIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 \
               $(if $(CUDNN_LIBDIR),-L$(CUDNN_LIBDIR) -Wl$(comma)-rpath$(comma)$(CUDNN_LIBDIR)) -lcudnn -lcublas -lcudart -lstdc++
ifeq ($(CUDA),1)
  BUILD  := $(BUILD)-cuda
  OPT    += -DATTNGAN_CUDA -I$(CUDA_HOME)/include -I$(CUDNN_HOME)/include
  LDLIBS += $(CUDA_LDLIBS)
endif
# Data-parallel training over MPI (docs/DISTRIBUTED.md): MPI=1 builds with Open MPI (Debian's
# libopenmpi-dev, found by pkg-config), MPI=0 without; by default, with it where it is installed.
# A build without MPI trains in one process as before, and refuses to run under an MPI launcher.
# With CUDA=1 the GPUs' gradients are averaged by NCCL (CUDA_HOME's libnccl).
MPI ?= $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || echo 0)
ifeq ($(MPI),1)
  OPT    += -DATTNGAN_MPI $(shell pkg-config --cflags ompi-c)
  LDLIBS += $(shell pkg-config --libs ompi-c)
  ifeq ($(CUDA),1)
    LDLIBS += -lnccl   # the GPUs' allreduce (NCCL from CUDA_HOME)
  endif
endif
CFLAGS  := $(CFLAGS_BASE) $(OPT) $(EXTRA_CFLAGS)
LDFLAGS := $(LDOPT) $(EXTRA_LDFLAGS)

# everything but main() goes into the library, so tests can reach any layer (src/app included)
LIB_SRC  := $(sort $(wildcard src/core/*.c src/ops/*.c src/io/*.c src/nn/*.c src/data/*.c src/train/*.c src/gen/*.c src/eval/*.c) \
              $(filter-out src/app/main.c,$(wildcard src/app/*.c)))
APP_SRC  := src/app/main.c
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_LIB := tests/test_util.c

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
APP_OBJ  := $(APP_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(filter-out $(TEST_LIB),$(TEST_SRC)))
LIB      := $(BUILD)/libattngan.a

CUDA_SRC    := $(sort $(wildcard src/ops/cuda/*.cu))
CUDA_OBJ    := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
CUDA_LIB    := $(BUILD)/libattngan_cuda.a
CUDA_TEST   := $(patsubst tests/cuda/%.c,$(BUILD)/tests/cuda/%,$(sort $(wildcard tests/cuda/test_cuda_*.c)))
# what a program links: the library, and in a CUDA build the kernels too (they call each other)
ifeq ($(CUDA),1)
  LINK_LIBS := -Wl,--start-group $(LIB) $(CUDA_LIB) -Wl,--end-group
  LINK_DEPS := $(LIB) $(CUDA_LIB)
else
  LINK_LIBS := $(LIB)
  LINK_DEPS := $(LIB)
endif

.SECONDARY:
.PHONY: all test check deps dumps fixtures tools clean demo bench cuda test-cuda bench-cuda install
all: $(BUILD)/attngan $(if $(filter 1,$(CUDA)),cuda)
	@ln -sfn $(notdir $(BUILD))/attngan build/attngan

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# `attngan serve` embeds web/ with .incbin (src/app/web_assets.c): rebuild it when a page changes
$(BUILD)/src/app/web_assets.o: $(wildcard web/*)

# dist.o alone reads ATTNGAN_MPI: it is rebuilt when MPI changes (the file holds the setting and is
# rewritten only when it changes)
$(BUILD)/mpi.setting: FORCE
	@mkdir -p $(dir $@) && { echo "$(MPI)" | cmp -s - $@ || echo "$(MPI)" >$@; }
$(BUILD)/src/core/dist.o: $(BUILD)/mpi.setting
.PHONY: FORCE
FORCE:

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/attngan: $(APP_OBJ) $(LINK_DEPS)
	$(CC) $(LDFLAGS) -o $@ $(APP_OBJ) $(LINK_LIBS) $(LDLIBS)

# measurement tools (tools/*.c), e.g. build/release/tools/colour_check
TOOL_BIN := $(patsubst tools/%.c,$(BUILD)/tools/%,$(wildcard tools/*.c))
tools: $(TOOL_BIN)
$(BUILD)/tools/%: $(BUILD)/tools/%.o $(LINK_DEPS)
	$(CC) $(LDFLAGS) -o $@ $< $(LINK_LIBS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/tests/test_util.o $(LINK_DEPS)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/tests/test_util.o $(LINK_LIBS) $(LDLIBS)

tests: $(TEST_BIN)

# the fuzz harnesses (tests/fuzz/fuzz.mk: `make fuzz`, and FUZZ_TESTS, their regression replays)
-include tests/fuzz/fuzz.mk

# unit tests, the Python tests, `attngan parity` on every reference dump (skipped if none), and
# the training programs' exact resume on the real birds (skipped without ../shared/data)
test: $(TEST_BIN) $(BUILD)/attngan $(FUZZ_TESTS)
	@ATTNGAN=$(BUILD)/attngan tests/run_tests.sh $(TEST_BIN) $(FUZZ_TESTS) tests/run_py_tests.sh tests/parity/run_parity.sh tests/test_layers.sh tests/test_cli.sh tests/test_install.sh tests/test_resume.sh tests/test_zsl_runs.sh tests/test_dist.sh tests/test_ckpt.sh tests/test_kill.sh tests/test_serve.sh tests/test_browser.sh

# speed: `attngan bench` against the PyTorch reference on the rows of ../shared/reference/RESULTS-cpu.md,
# a markdown table on stdout and in build/bench/results.md (docs/PERFORMANCE.md). BENCH_QUICK=1: a short
# run; BENCH_ROWS, BENCH_ITERS, BENCH_THREADS, BENCH_REF=0, BENCH_PROFILE=1, BENCH_BF16=1: see scripts/bench.sh
bench: $(BUILD)/attngan $(BUILD)/tools/fma_peak
	@ATTNGAN=$(BUILD)/attngan FMA_PEAK=$(BUILD)/tools/fma_peak OPENBLAS_DIR=$(OPENBLAS_DIR) CC=$(CC) scripts/bench.sh

$(BUILD)/src/ops/cuda/%.o: src/ops/cuda/%.cu $(wildcard src/ops/cuda/*.h src/ops/cuda/*.cuh src/ops/*.h src/core/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) -O3 -std=c++17 $(CUDA_ARCH) -I$(CUDNN_HOME)/include -Xcompiler -Wall,-fopenmp -c $< -o $@

$(CUDA_LIB): $(CUDA_OBJ)
	ar rcs $@ $^

$(BUILD)/tests/cuda/%: tests/cuda/%.c tests/cuda/cuda_test.h $(BUILD)/tests/test_util.o $(CUDA_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(CUDA_HOME)/include $(LDFLAGS) -o $@ $< $(BUILD)/tests/test_util.o -Wl,--start-group $(LIB) $(CUDA_LIB) -Wl,--end-group $(LDLIBS) $(CUDA_LDLIBS)

cuda: $(CUDA_LIB) $(CUDA_TEST)

# the GPU's speed beside PyTorch's on the same GPU, in one call (scripts/bench_cuda.sh; skips without a GPU)
bench-cuda:
	@$(MAKE) --no-print-directory CUDA=1 all
	@ATTNGAN=build/release-cuda/attngan scripts/bench_cuda.sh

test-cuda: cuda
	@tests/run_tests.sh $(CUDA_TEST)

deps:
	@scripts/deps.sh

# the program and what it finds from PREFIX/bin through ../share/attngan (src/io/locate.h; README, Set-up)
install: $(BUILD)/attngan
	@scripts/install.sh $(BUILD)/attngan "$(DESTDIR)$(PREFIX)"

# the README's first command: install what is missing, build, and draw examples/captions.txt with
# the bundled model (models/bird64) into out/ (no data, no download)
demo:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory all
	$(BUILD)/attngan examples --model models/bird64 --captions examples/captions.txt --out out

check:
	@scripts/deps.sh --with-torch
	tests/parity/make_dumps.sh build/dumps
	tests/parity/make_checkpoints.sh build/checkpoints --keep-pth
	$(MAKE) test
	$(MAKE) test SANITIZE=1

dumps:
	@scripts/deps.sh --with-torch
	tests/parity/make_dumps.sh build/dumps

fixtures:
	@scripts/deps.sh --with-torch
	@for g in tests/fixtures/gen_*.py; do echo "$(PYTHON) $$g"; $(PYTHON) $$g || exit 1; done

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
