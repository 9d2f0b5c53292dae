# make guarantees: every figure of README "Guarantees" in one command (about an hour on
# 2 cores): the long fault suite, each libFuzzer harness for FUZZ_SECONDS (600), and the
# unit's `systemd-analyze security` exposure (from tests/integration/test_install.sh).
.PHONY: guarantees
guarantees: all
	@$(MAKE) --no-print-directory faults
	@$(MAKE) --no-print-directory fuzz
	@sh tests/integration/test_install.sh | grep -E 'systemd-analyze|test_install'
