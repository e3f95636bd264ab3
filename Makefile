# kubevm entry points. The two a new user needs:
#   make up    a real Kubernetes on this machine (one node; KUBEVM_NODES=2 for two), kubevm installed, a VM running
#   make test  every test suite (unit, real QEMU, real cluster), bringing up and tearing down
#              what it needs
SHELL := /bin/bash
.DEFAULT_GOAL := help

export KUBEVM_CACHE ?= $(HOME)/.cache/kubevm
export KUBEVM_STATE ?= /var/lib/kubevm-local

.PHONY: help deps build generate check-generated typecheck lint test test-unit test-launcher test-cluster up down images bench sbom

help:
	@echo "make up       bring up the local cluster with kubevm and an example VM"
	@echo "make down     stop the local cluster and everything it started"
	@echo "make test     run all test suites (what CI runs)"
	@echo "make generate regenerate CRDs, chart CRDs and docs/api.md from the zod schemas"
	@echo "make bench    performance figures beside KubeVirt's (local cluster; bench/results/README.md)"
	@echo "make sbom     CycloneDX SBOMs of the node modules and the local cluster's Go modules into dist/sbom"
	@echo "make install-kubectl-virt  install the kubectl virt plugin (one file) as /usr/local/bin/kubectl-virt"

# Host packages (Debian) and node modules; both idempotent.
deps:
	@bash scripts/install-deps.sh

build: deps
	npx tsc -p tsconfig.build.json

generate:
	npm run --silent generate

check-generated:
	npm run --silent check-generated

typecheck:
	npx tsc -p tsconfig.json --noEmit

lint:
	npm run --silent lint

test: deps
	bash test/run-all.sh

sbom:
	@bash scripts/sbom.sh

test-unit:
	bash test/run-all.sh unit

test-launcher:
	bash test/run-all.sh launcher

test-cluster:
	bash test/run-all.sh cluster

# Benchmarks, never part of make test: start-up latency and timeline, live migration (two nodes),
# control-plane scale (kwok), launcher memory. BENCH=startup|migration|scale|memory|report picks
# some (default all); see bench/run.sh.
bench: deps
	@bash bench/run.sh $(BENCH)

# The `kubectl virt` plugin as one executable on the PATH (BINDIR=... elsewhere; BINDIR=- only
# builds dist/plugin/kubectl-virt); KREW=1 also writes the krew archive and manifest into dist/plugin/.
.PHONY: install-kubectl-virt
install-kubectl-virt:
	@bash kubectl-virt/build.sh $(if $(KREW),--krew) $(BINDIR)

-include local-cluster/cluster.mk
-include images.mk

.PHONY: up down
up: deps
	@bash scripts/up.sh

down:
	@$(MAKE) --no-print-directory cluster-down
