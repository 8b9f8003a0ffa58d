# Make targets of the local control plane; the top-level Makefile includes this file:
#   include tests/cluster/cluster.mk
# Variables: MTLS_CLUSTER_DIR (state, default .cluster), MTLS_CACHE_DIR (binaries).
CLUSTER_SCRIPTS := $(dir $(lastword $(MAKEFILE_LIST)))

.PHONY: cluster-build cluster-up cluster-down cluster-purge cluster-status cluster-test molecule-local

cluster-build: ## Build (once) and cache the local control plane binaries
	$(CLUSTER_SCRIPTS)build.sh

cluster-up: ## Start the local control plane (idempotent); prints the kubeconfig path
	$(CLUSTER_SCRIPTS)up.sh

cluster-down: ## Stop the local control plane processes started by cluster-up
	$(CLUSTER_SCRIPTS)down.sh

cluster-purge: ## Stop the local control plane and delete its state
	$(CLUSTER_SCRIPTS)down.sh --purge

cluster-status: ## Show the local control plane components and their health
	$(CLUSTER_SCRIPTS)status.sh

cluster-test: ## Run the tests of the local control plane itself (cluster must be up)
	$(CLUSTER_SCRIPTS)run-tests.sh

molecule-local: ## Run the molecule scenario `local` against the local control plane
	$(CLUSTER_SCRIPTS)run-molecule.sh
