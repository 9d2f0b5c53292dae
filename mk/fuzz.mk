# Fuzzing (README "Fuzzing"): libFuzzer harnesses of fuzz/*.c, built with clang, ASan and
# UBSan into their own tree (FUZZ_B; the library is compiled again there with clang:
# gcc objects of $(B) are never mixed in).
#   make fuzz          each harness for FUZZ_SECONDS (default 600) on a copy of its corpus
#   make fuzz-smoke    the same for 30 s each (what CI runs: .ci/run, after `make test`)
#   make fuzz-build    only build build-fuzz/fuzz_<name>
#   FUZZ_TARGETS="decode expr" limits the run; crash files land in build-fuzz/findings/.
FUZZ_B       ?= build-fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 600
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS   = $(CSTD) $(WARN) -O1 -g -fno-omit-frame-pointer -I. $(PKG_CFLAGS) -MMD -MP \
                $(FUZZ_SAN)
FUZZ_SRCS    := $(wildcard fuzz/fuzz_*.c)
FUZZ_ALL     := $(FUZZ_SRCS:fuzz/fuzz_%.c=%)
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_BINS     = $(FUZZ_TARGETS:%=$(FUZZ_B)/fuzz_%)
# Only the pure modules the harnesses link against (not the daemon's I/O shell).
FUZZ_LIB_SRCS := $(wildcard $(addsuffix /*.c,common config consumers aggregator rules))
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(FUZZ_B)/%.o)

.PHONY: fuzz fuzz-smoke fuzz-build

# The library: coverage-instrumented, not linked with libFuzzer's main.
$(FUZZ_B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_B)/libcsm.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_B)/fuzz_%: $(FUZZ_B)/fuzz/fuzz_%.o $(FUZZ_B)/libcsm.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS_ALL)

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	@fuzz/run.sh $(FUZZ_B) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=30

-include $(shell find $(FUZZ_B) -name '*.d' 2>/dev/null)

# Regenerates the seed corpora fuzz/corpus/<harness>/ from the spec's example events, the
# shipped configuration and rule files, the test fixtures and the unit tests' tables.
FUZZ_SEEDGEN := $(FUZZ_ALL:%=$(FUZZ_B)/seedgen_%)
SEED_DEF_decode := SEED_DECODE
SEED_DEF_config := SEED_CONFIG
SEED_DEF_rules  := SEED_RULES
SEED_DEF_expr   := SEED_EXPR
.PHONY: fuzz-seeds
$(FUZZ_SEEDGEN): $(FUZZ_B)/seedgen_%: fuzz/seedgen.c $(FUZZ_B)/libcsm.a
	$(FUZZ_CC) $(filter-out -MMD -MP,$(FUZZ_CFLAGS)) -fsanitize=fuzzer-no-link \
	  -D$(SEED_DEF_$*) -o $@ $< $(FUZZ_B)/libcsm.a $(LDLIBS_ALL) -lcmocka

fuzz-seeds: $(FUZZ_SEEDGEN)
	@fuzz/seeds.sh $(FUZZ_B)

# `make clean` also drops the fuzz tree (and the corpus the runs grew there).
.PHONY: fuzz-clean
fuzz-clean:
	rm -rf $(FUZZ_B)
clean: fuzz-clean
