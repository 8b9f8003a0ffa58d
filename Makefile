# Entry points; the scripts under scripts/ do the work and can be run directly.
.PHONY: help deps run test sanity units lint bench clean

help:
	@echo "make run    - main job: PKI + delivery + mesh policy on the local control plane (or \$$KUBECONFIG)"
	@echo "make test   - every test: sanity, units, lint, integration, cluster, exporter, molecule"
	@echo "make deps   - install Debian packages and the pinned Python tools into .venv"
	@echo "make cluster-up | cluster-down | cluster-status - the local control plane"
	@echo "make bench  - the benchmarks (prints ratios against the reference tools)"

deps:
	scripts/install-deps.sh

run:
	scripts/run-main.sh

test:
	scripts/test.sh

sanity: deps
	MTLS_TEST_STEPS=sanity scripts/test.sh

units: deps
	MTLS_TEST_STEPS=units scripts/test.sh

lint: deps
	MTLS_TEST_STEPS=lint scripts/test.sh

bench: deps
	scripts/bench.sh

clean:
	rm -rf .build tests/output

-include tests/cluster/cluster.mk
