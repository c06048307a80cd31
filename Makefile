# kascade — everything a fresh machine needs, from nothing: `make demo`, `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
FLOW := examples/shop/flow.yaml
CLUSTER ?= kwok
export CLUSTER
# promtool (checks metrics and alert rules) comes from Debian's prometheus package
PROMTOOL := /usr/bin/promtool
# the real node (containerd, runc, CNI plugins) and the runtime image's root filesystem
# (debootstrap) come from Debian's packages
NODE_PACKAGES := /usr/bin/containerd /usr/sbin/runc /usr/lib/cni/bridge /usr/sbin/debootstrap
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

.PHONY: venv
venv: $(INSTALLED) ## create .venv and install kascade with its dev tools

DEMO_STATE := .kascade/demo

.PHONY: demo
demo: $(INSTALLED) runtime-image cluster-up postgres-up ## the example flow on the local cluster: operator, run, tables
	$(BIN)/kascade lint $(FLOW)
	hack/demo/up.sh

.PHONY: demo-down
demo-down: ## stop the demo operator and the local cluster
	hack/demo/down.sh

.PHONY: demo-local
demo-local: $(INSTALLED) ## the example flow without a cluster (kascade run --local)
	$(BIN)/kascade run $(FLOW) --local --state-dir $(DEMO_STATE)
	$(BIN)/kascade tables --state-dir $(DEMO_STATE)

.PHONY: lint
lint: $(INSTALLED) ## ruff (lint and format check) and the layer contracts (import-linter)
	$(BIN)/ruff check operator tests benchmarks
	$(BIN)/ruff format --check operator tests benchmarks
	$(BIN)/lint-imports --no-cache --no-logo

.PHONY: typecheck
typecheck: $(INSTALLED) ## mypy --strict on the package
	$(BIN)/mypy operator/kascade

.PHONY: unit
unit: $(INSTALLED) ## unit tests (pure engine, CLI, CRDs)
	$(BIN)/pytest tests/unit -q

.PHONY: fuzz
fuzz: $(INSTALLED) ## fuzz tier: generated flows and projects through lint, plan and run --local
	$(BIN)/pytest tests/fuzz -q

.PHONY: parity
parity: $(INSTALLED) ## parity tier: the static planner against real `dbt ls` on generated projects
	$(BIN)/pytest tests/parity -q

.PHONY: cluster-binaries
cluster-binaries: ## build kube-apiserver, etcd, kwok... from the Go module proxy (cached)
	hack/cluster/build.sh

.PHONY: cluster-up
cluster-up: cluster-binaries node-packages ## start the local cluster: control plane, kwok's node and a real node; kubeconfig in .cluster/
	hack/cluster/up.sh

$(NODE_PACKAGES):
	@command -v apt-get >/dev/null || { echo "$@ is missing and there is no apt-get: install Debian's containerd runc containernetworking-plugins debootstrap" >&2; exit 1; }
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends containerd runc containernetworking-plugins debootstrap iproute2 >/dev/null

.PHONY: node-packages
node-packages: $(NODE_PACKAGES) ## Debian packages of the real node and the runtime image

.PHONY: runtime-image
runtime-image: $(INSTALLED) node-packages ## the runtime image without Docker (debootstrap + venv, hack/image/build.sh; cached)
	hack/image/build.sh

.PHONY: cluster-down
cluster-down: postgres-down ## stop and delete the local cluster (and the test PostgreSQL server)
	hack/cluster/down.sh

.PHONY: postgres-up
postgres-up: ## start the test PostgreSQL server (Debian's package; loopback only; data in .cluster/postgres)
	hack/postgres/up.sh

.PHONY: postgres-down
postgres-down: ## stop the test PostgreSQL server
	hack/postgres/down.sh

$(PROMTOOL):
	@command -v apt-get >/dev/null || { echo "promtool is missing and there is no apt-get: install Prometheus' promtool" >&2; exit 1; }
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus >/dev/null

.PHONY: tools
tools: $(PROMTOOL) ## Debian packages the tests need (promtool)

.PHONY: integration
integration: $(INSTALLED) cluster-binaries node-packages tools ## integration tests on the real control plane
	$(BIN)/pytest tests/integration -q

.PHONY: campaign
campaign: $(INSTALLED) cluster-binaries node-packages tools ## campaign: generated bad input, operator kills, an API server restart (<= 6 min)
	$(BIN)/pytest tests/campaign -q

.PHONY: e2e
e2e: $(INSTALLED) cluster-binaries runtime-image postgres-up ## end-to-end tests: example flows through the CLI and on the real node (DuckDB and PostgreSQL)
	$(BIN)/pytest tests/e2e -q

.PHONY: test
test: lint typecheck unit fuzz parity integration campaign e2e ## everything CI runs

.PHONY: crds
crds: $(INSTALLED) ## regenerate crds/ from the pydantic models
	$(BIN)/kascade crds --write crds
	mkdir -p charts/kascade/crds && cp crds/*.yaml charts/kascade/crds/

.PHONY: bench
bench: $(INSTALLED) ## benchmarks (figures go to docs/performance.md)
	$(BIN)/python benchmarks/plan.py
	$(BIN)/python benchmarks/local.py

.PHONY: bench-dbt
bench-dbt: $(INSTALLED) ## 200 models: one task per model (warm dbt worker) against one dbt build
	$(BIN)/python benchmarks/dbt_flow.py

.PHONY: bench-real-node
bench-real-node: $(INSTALLED) runtime-image cluster-up postgres-up ## the example as real pods on PostgreSQL, against dbt build
	$(BIN)/python benchmarks/real_node.py

.PHONY: bench-cluster
bench-cluster: $(INSTALLED) cluster-up ## operator benchmark on the local cluster (1,000 Jobs)
	$(BIN)/python benchmarks/cluster.py

.PHONY: bench-schedules
bench-schedules: $(INSTALLED) cluster-up ## 200 Flows every minute for 5 minutes: schedule lag
	$(BIN)/python benchmarks/schedules.py

.PHONY: bench-failover
bench-failover: $(INSTALLED) cluster-up ## two replicas with kopf peering: time to take over
	$(BIN)/python benchmarks/failover.py

.PHONY: clean
clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
	@echo "the cluster binaries stay cached in ~/.cache/kascade (make cluster-down stops a cluster)"
