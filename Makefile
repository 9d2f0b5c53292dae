# csmetrics — one non-recursive Makefile (see README "Building").
# Every .c under the module directories joins libcsm.a, except the two mains;
# each tests/unit/test_<module>.c becomes its own cmocka binary.

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system

CC      ?= cc
PKGS    := rdkafka hiredis yaml-0.1 yajl libsystemd
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
OPT     ?= -O2 -g
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_ALL  = $(CSTD) $(WARN) $(OPT) -I. $(PKG_CFLAGS) -MMD -MP $(EXTRA_CFLAGS)
LDLIBS_ALL  = $(PKG_LIBS) -lm -lpthread $(EXTRA_LDFLAGS)

B ?= build
MODDIRS   := common config consumers aggregator rules daemon
LIB_SRCS  := $(filter-out daemon/main.c,$(wildcard $(addsuffix /*.c,$(MODDIRS))))
CLI_SRCS  := $(wildcard cli/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
LIB_OBJS  := $(LIB_SRCS:%.c=$(B)/%.o)
CLI_OBJS  := $(CLI_SRCS:%.c=$(B)/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)

.SECONDARY:
.PHONY: all test check unit integration demo bench install clean format format-check deps faults
all: $(B)/csmetricsd $(B)/csmetrics

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(B)/libcsm.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(B)/csmetricsd: $(B)/daemon/main.o $(B)/libcsm.a
	$(CC) $(OPT) $(EXTRA_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(B)/csmetrics: $(CLI_OBJS) $(B)/libcsm.a
	$(CC) $(OPT) $(EXTRA_LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(B)/tests/%: $(B)/tests/unit/%.o $(B)/libcsm.a
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(EXTRA_LDFLAGS) -o $@ $^ $(LDLIBS_ALL) -lcmocka

unit: $(UNIT_BINS)
	@scripts/run-unit $(UNIT_BINS)

# ASan + UBSan build of the library and unit tests, in its own tree.
check:
	$(MAKE) B=build-san OPT="-O1 -g -fno-omit-frame-pointer" \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" unit

integration: all
	@scripts/run-integration

test: deps all unit check integration

deps:
	@scripts/deps --check

demo: deps all
	@scripts/demo

bench: deps all
	@scripts/bench

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/csmetrics/rules $(DESTDIR)$(UNITDIR)
	install -m 0755 $(B)/csmetricsd $(B)/csmetrics $(DESTDIR)$(BINDIR)/
	install -m 0644 config/csmetrics.yaml.example $(DESTDIR)$(SYSCONFDIR)/csmetrics/csmetrics.yaml
	sed 's|@BINDIR@|$(BINDIR)|g' systemd/csmetricsd.service > $(DESTDIR)$(UNITDIR)/csmetricsd.service

format:
	clang-format -i $(LIB_SRCS) daemon/main.c $(CLI_SRCS) $(UNIT_SRCS) $(wildcard */*.h)

format-check:
	clang-format --dry-run --Werror $(LIB_SRCS) daemon/main.c $(CLI_SRCS) $(UNIT_SRCS) $(wildcard */*.h)

clean:
	rm -rf build build-san

-include $(shell find $(B) -name '*.d' 2>/dev/null)
