# csmetrics — one non-recursive Makefile (see README "Building").
# Every .c under the module directories joins libcsm.a, except the two mains;
# each tests/unit/test_<module>.c becomes its own cmocka binary.

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
# After an install to the live system (no DESTDIR) as root: create the user, apply
# the tmpfiles entry and reload systemd (uninstall: reload). POSTINSTALL=no skips that.
POSTINSTALL ?= yes

CC      ?= cc
PKGS    := rdkafka hiredis yaml-0.1 yajl libsystemd libcrypto libmicrohttpd libcurl
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

test: deps all format-check unit check integration faults-ci

deps:
	@scripts/deps --check

demo: deps all
	@scripts/demo

bench: deps all
	@scripts/bench

# install: binaries, systemd unit, sysusers/tmpfiles entries, example configuration
# and the shipped rule files. Into the live system (no DESTDIR) an existing
# csmetrics.yaml or rule file is never overwritten: the new one lands next to it as
# *.example. The configuration may hold secrets: 0640, group csmetrics via tmpfiles.
CSM_ETC    = $(DESTDIR)$(SYSCONFDIR)/csmetrics
CSM_RULES  = $(filter-out %.test.yaml,$(wildcard rules/examples/*.yaml))
CSM_SUBST  = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'

install: all
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	  $(DESTDIR)$(TMPFILESDIR)
	install -d -m 0750 $(CSM_ETC)
	install -d -m 0755 $(CSM_ETC)/rules
	install -m 0755 $(B)/csmetricsd $(B)/csmetrics $(DESTDIR)$(BINDIR)/
	$(CSM_SUBST) systemd/csmetricsd.service >$(B)/csmetricsd.service
	install -m 0644 $(B)/csmetricsd.service $(DESTDIR)$(UNITDIR)/csmetricsd.service
	install -m 0644 systemd/csmetrics.sysusers $(DESTDIR)$(SYSUSERSDIR)/csmetrics.conf
	$(CSM_SUBST) systemd/csmetrics.tmpfiles >$(B)/csmetrics.tmpfiles
	install -m 0644 $(B)/csmetrics.tmpfiles $(DESTDIR)$(TMPFILESDIR)/csmetrics.conf
	install -d -m 0755 $(DESTDIR)$(BASHCOMPDIR)
	install -m 0644 contrib/csmetrics.bash-completion $(DESTDIR)$(BASHCOMPDIR)/csmetrics
	ln -sf csmetrics $(DESTDIR)$(BASHCOMPDIR)/csmetricsd
	@set -e; keep() { [ -z "$(DESTDIR)" ] && [ -e "$$1" ] && ! cmp -s "$$2" "$$1"; }; \
	t=$(CSM_ETC)/csmetrics.yaml; \
	if keep $$t config/csmetrics.yaml.example; then \
	  echo "keeping $$t; the new example is $$t.example"; \
	  echo "install -m 0644 config/csmetrics.yaml.example $$t.example"; \
	  install -m 0644 config/csmetrics.yaml.example $$t.example; \
	else \
	  echo "install -m 0640 config/csmetrics.yaml.example $$t"; \
	  install -m 0640 config/csmetrics.yaml.example $$t; \
	fi; \
	for f in $(CSM_RULES); do \
	  t=$(CSM_ETC)/rules/$${f##*/}; \
	  if keep $$t $$f; then \
	    echo "keeping $$t; the shipped one is $$t.example"; t=$$t.example; fi; \
	  echo "install -m 0644 $$f $$t"; install -m 0644 $$f $$t; \
	done
	@if [ -z "$(DESTDIR)" ] && [ "$(POSTINSTALL)" = yes ] && [ "$$(id -u)" = 0 ]; then \
	  if command -v systemd-sysusers >/dev/null; then \
	    echo "systemd-sysusers $(SYSUSERSDIR)/csmetrics.conf"; \
	    systemd-sysusers $(SYSUSERSDIR)/csmetrics.conf; fi; \
	  if command -v systemd-tmpfiles >/dev/null; then \
	    echo "systemd-tmpfiles --create $(TMPFILESDIR)/csmetrics.conf"; \
	    systemd-tmpfiles --create $(TMPFILESDIR)/csmetrics.conf; fi; \
	  if [ -d /run/systemd/system ]; then echo "systemctl daemon-reload"; systemctl daemon-reload; fi; \
	fi

# uninstall: removes what install put there, except a csmetrics.yaml or rule file that
# differs from the shipped one (the operator's), and the csmetrics user.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/csmetricsd $(DESTDIR)$(BINDIR)/csmetrics \
	  $(DESTDIR)$(UNITDIR)/csmetricsd.service $(DESTDIR)$(SYSUSERSDIR)/csmetrics.conf \
	  $(DESTDIR)$(TMPFILESDIR)/csmetrics.conf $(CSM_ETC)/csmetrics.yaml.example \
	  $(DESTDIR)$(BASHCOMPDIR)/csmetrics $(DESTDIR)$(BASHCOMPDIR)/csmetricsd
	@drop() { if [ ! -e "$$1" ]; then :; elif cmp -s "$$2" "$$1"; then echo "rm -f $$1"; rm -f "$$1"; \
	  else echo "keeping $$1 (changed)"; fi; }; \
	drop $(CSM_ETC)/csmetrics.yaml config/csmetrics.yaml.example; \
	for f in $(CSM_RULES); do \
	  drop $(CSM_ETC)/rules/$${f##*/} $$f; rm -f $(CSM_ETC)/rules/$${f##*/}.example; done; \
	rmdir $(CSM_ETC)/rules $(CSM_ETC) 2>/dev/null || true
	@if [ -z "$(DESTDIR)" ] && [ "$(POSTINSTALL)" = yes ] && [ -d /run/systemd/system ] && [ "$$(id -u)" = 0 ]; then \
	  echo "systemctl daemon-reload"; systemctl daemon-reload; fi

.PHONY: uninstall

format:
	clang-format -i $(LIB_SRCS) daemon/main.c $(CLI_SRCS) $(UNIT_SRCS) $(wildcard */*.h)

format-check:
	clang-format --dry-run --Werror $(LIB_SRCS) daemon/main.c $(CLI_SRCS) $(UNIT_SRCS) $(wildcard */*.h)

clean:
	rm -rf build build-san

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# Optional fragments (fuzzing, fault suite): each mk/*.mk adds its own targets.
-include $(wildcard mk/*.mk)
