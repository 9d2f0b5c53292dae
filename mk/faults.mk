# The fault suite (issue 4): tests/faults/faults.py, README "Guarantees".
#   make faults      the long form: >= 100 kill -9 over 1 M events, every scenario at length
#   make faults-ci   the bounded form, part of `make test` (under 3 minutes on 2 cores)
# FAULTS_ARGS passes options through (--only kill9,redis, --seed N, --keep; see --help).
.PHONY: faults faults-ci
faults: all
	@BIN=$(CURDIR)/$(B) /usr/bin/python3 tests/faults/faults.py --long $(FAULTS_ARGS)

faults-ci: all
	@BIN=$(CURDIR)/$(B) /usr/bin/python3 tests/faults/faults.py $(FAULTS_ARGS)
