# tests/fuzz/fuzz.mk: the parser fuzz harnesses (docs/FUZZING.md), included by the top Makefile.
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_ONLY="safetensors pickle"]
#       builds every harness with clang, libFuzzer, ASan and UBSan in build/fuzz and runs each for
#       FUZZ_SECONDS seconds on a copy of its seeds (build/fuzz/corpus/<name>: what it finds stays
#       there, not in the repository); a crash, leak, UB report, timeout or out-of-memory is
#       written to build/fuzz/artifacts/<name>/ and makes the target fail after all have run.
#       The per-harness executions go to build/fuzz/summary.txt (FUZZ_SUMMARY=F: to F instead, so
#       that two `make fuzz` with disjoint FUZZ_ONLY can run side by side on two cores).
#   FUZZ_TESTS
#       the replay binaries of the normal build ($(BUILD)/tests/fuzz/replay_<name>, gcc, no
#       libFuzzer): each runs its harness over tests/fuzz/corpus/<name>/ and
#       tests/fuzz/regress/<name>/ as a unit test, so `make test` (and SANITIZE=1) replays every
#       seed and every bug's reproducer.

FUZZ_NAMES   := safetensors pickle pth yaml_config json_config text long_text image serve_body cub wikipedia keras
FUZZ_TESTS   := $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/replay_%)
FUZZ_SECONDS ?= 60
FUZZ_ONLY    ?= $(FUZZ_NAMES)
FUZZ_CC      ?= clang
FUZZ_OUT     := build/fuzz
FUZZ_SUMMARY ?= $(FUZZ_OUT)/summary.txt
# the library again, compiled by clang with the fuzzer's coverage and the sanitizers; without
# -fopenmp (the parsers run on one thread; omp_* calls resolve to libgomp, the runtime OpenBLAS
# already loads, so there is one OpenMP runtime in the process)
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS  := $(filter-out -fopenmp,$(CFLAGS_BASE)) -Wno-unknown-warning-option -Wno-unknown-pragmas \
                -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN)
FUZZ_LDLIBS  := $(filter-out -fopenmp,$(LDLIBS)) $(shell $(CC) -print-file-name=libgomp.so)
FUZZ_LIB     := $(FUZZ_OUT)/libattngan.a
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_OUT)/obj/%.o)
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_OUT)/fuzz_%)

.PHONY: fuzz fuzz-build

# ---- replays in the normal build (gcc; SANITIZE=1 gives them ASan and UBSan)
$(FUZZ_TESTS): $(BUILD)/tests/fuzz/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o \
               $(BUILD)/tests/fuzz/fuzz_util.o $(BUILD)/tests/test_util.o $(LINK_DEPS)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LINK_LIBS) $(LDLIBS)

# ---- libFuzzer binaries (clang)
$(FUZZ_OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_OUT)/fuzz_%: $(FUZZ_OUT)/obj/tests/fuzz/fuzz_%.o $(FUZZ_OUT)/obj/tests/fuzz/fuzz_util.o $(FUZZ_LIB)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $(filter %.o,$^) $(FUZZ_LIB) $(FUZZ_LDLIBS)

fuzz-build: $(FUZZ_ONLY:%=$(FUZZ_OUT)/fuzz_%)

# One harness after another (the machine's cores are left to the rest); every harness runs even
# when an earlier one failed, then the target fails if any did.
fuzz: fuzz-build
	@mkdir -p $(FUZZ_OUT)/artifacts; : > $(FUZZ_SUMMARY); failed=""; \
	for n in $(FUZZ_ONLY); do \
	  mkdir -p $(FUZZ_OUT)/corpus/$$n $(FUZZ_OUT)/artifacts/$$n; \
	  case $$n in image|cub|pth|keras) ml=16384;; wikipedia|safetensors) ml=8192;; *) ml=4096;; esac; \
	  dirs="$(FUZZ_OUT)/corpus/$$n tests/fuzz/corpus/$$n"; [ -d tests/fuzz/regress/$$n ] && dirs="$$dirs tests/fuzz/regress/$$n"; \
	  log=$(FUZZ_OUT)/artifacts/$$n/log.txt; \
	  echo "== fuzz_$$n for $(FUZZ_SECONDS) s"; \
	  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(FUZZ_OUT)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=3072 -max_len=$$ml \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_OUT)/artifacts/$$n/ $$dirs > $$log 2>&1; rc=$$?; \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log | tail -1); \
	  cov=$$(grep -o 'cov: [0-9]*' $$log | tail -1 | sed 's/cov: //'); \
	  units=$$(ls $(FUZZ_OUT)/corpus/$$n | wc -l); \
	  line="fuzz_$$n: $${runs:-?} executions in $(FUZZ_SECONDS) s, coverage $${cov:-?} edges, $$units inputs in its working corpus, exit $$rc"; \
	  echo "$$line"; echo "$$line" >> $(FUZZ_SUMMARY); \
	  if [ $$rc -ne 0 ]; then failed="$$failed $$n"; grep -E 'ERROR|SUMMARY|runtime error|Test unit written' $$log | head -20; \
	    echo "   (full log: $$log)"; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: FAILED:$$failed (artifacts in $(FUZZ_OUT)/artifacts/)"; exit 1; fi; \
	echo "fuzz: every harness ran $(FUZZ_SECONDS) s with no crash, leak, UB or timeout"
