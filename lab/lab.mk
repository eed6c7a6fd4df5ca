# Lab targets, included by the main Makefile (include lab/lab.mk).
# Paths are relative to the repository root, where make runs.

LAB_BUILD := lab/tools/build.sh
# Where `make lab-tools` puts the binaries; tests and `eksir lab up` read it.
EKSIR_LAB_BIN ?= $(shell $(LAB_BUILD) --print-bin)
export EKSIR_LAB_BIN

MOTO_HINT := python3 -m pip install 'moto[server]'

.PHONY: lab-tools moto lab-check test-lab bench-lab

lab-tools: ## Build etcd, kube-apiserver and kwok into the cache (instant when cached)
	@$(LAB_BUILD)

moto: ## Ensure moto_server (the AWS emulator) is installed
	@command -v moto_server >/dev/null 2>&1 || { \
	  echo "moto_server not found: installing with $(MOTO_HINT)"; \
	  $(MOTO_HINT) || { echo "error: could not install moto; run: $(MOTO_HINT)" >&2; exit 1; }; }
	@command -v moto_server >/dev/null 2>&1 || { echo "error: moto_server still not on PATH; run: $(MOTO_HINT)" >&2; exit 1; }

lab-check: lab-tools moto ## Everything the lab needs

test-lab: lab-check ## Lab integration tests (real etcd, kube-apiserver, kwok, moto)
	go test -race -count=1 ./lab/... ./internal/...

bench-lab: lab-check ## Time `lab up` to ready and seeding 100 nodes x 10 pods
	go test -run '^$$' -bench 'BenchmarkLab' -benchtime 3x -count 1 ./lab/

