# eksir: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN      := $(CURDIR)/bin/eksir
TOOLBIN  := $(CURDIR)/.bin
STATICCHECK_VERSION := v0.8.2
BENCH_OUT ?= $(CURDIR)/bench-results.txt

-include lab/lab.mk

.PHONY: help build test unit lint bench demo clean host-tools collector-image

# Host tools the tests run as a lab would (tar, sha256sum, zstd, jq, openssl
# for the manual verification script; dash to run it as POSIX sh; journalctl
# and systemd-journal-remote to build and read journal fixtures; chromium to
# render the HTML report to PNG and PDF), as command:Debian package. A
# command not on PATH may sit in /usr/lib/systemd, where Debian installs
# systemd-journal-remote.
HOST_TOOLS := tar:tar sha256sum:coreutils zstd:zstd jq:jq openssl:openssl dash:dash journalctl:systemd systemd-journal-remote:systemd-journal-remote chromium:chromium

help: ## show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/eksir, bin/eksir-verify (the lab's verifier) and bin/eksir-collector-linux-{amd64,arm64} (the node collector), version stamped in
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/eksir
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)-verify ./cmd/eksir-verify
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION)' -o $(CURDIR)/bin/eksir-collector-linux-amd64 ./cmd/eksir-collector
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION)' -o $(CURDIR)/bin/eksir-collector-linux-arm64 ./cmd/eksir-collector

# The collector image is built by a module of its own (tools/collector-image)
# so that go-containerregistry stays out of eksir's go.mod. The commit time
# stamps it, so a rebuild of the same commit gives the same index digest.
collector-image: build ## build the collector image (OCI layout, both architectures) into bin/eksir-collector-image.tar; push it with skopeo or crane (docs/collector-image.md)
	cd tools/collector-image && SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) $(GO) run . \
	  --binary linux/amd64=$(CURDIR)/bin/eksir-collector-linux-amd64 \
	  --binary linux/arm64=$(CURDIR)/bin/eksir-collector-linux-arm64 \
	  --tag eksir-collector:$(VERSION) --out $(CURDIR)/bin/eksir-collector-image.tar

unit: ## unit tests only (no lab), with -race
	$(GO) test -race -count=1 -short ./...

host-tools: ## install the host tools the tests need (Debian packages) when missing
	@missing=$$(for t in $(HOST_TOOLS); do command -v $${t%%:*} >/dev/null 2>&1 || test -x /usr/lib/systemd/$${t%%:*} || echo $${t#*:}; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing $$missing"; \
	  { apt-get update -qq && apt-get install -y -qq $$missing; } || { echo "error: install $$missing (apt-get install $$missing)" >&2; exit 1; }; \
	fi

# The fuzz steps are bounded by executions, not seconds: with a duration,
# go1.26's coordinator can fail a healthy run with "context deadline
# exceeded" at the deadline (go.dev/issue/75804, fixed in go1.27), and a
# slow machine simply fuzzes less. New inputs are minimized for a few
# executions only: the default 60 s minimization stalled every worker and
# left the playbook fuzz with 61 executions in its 10 s.
fuzz_budget = -fuzztime $(1)x -fuzzminimizetime 20x

test: build lab-check host-tools ## the whole suite: unit and integration tests (real lab), with -race, and a short parser fuzz
	EKSIR_BIN=$(BIN) EKSIR_COLLECTOR_DIR=$(CURDIR)/bin $(GO) test -race -count=1 ./...
	$(GO) test -run '^$$' -fuzz FuzzParse $(call fuzz_budget,3000) ./playbooks/
	$(GO) test -run '^$$' -fuzz FuzzParse $(call fuzz_budget,5000) ./internal/finding/
	$(GO) test -run '^$$' -fuzz FuzzMountinfo $(call fuzz_budget,100000) ./internal/procfs/
	$(GO) test -run '^$$' -fuzz FuzzOpen $(call fuzz_budget,50000) ./internal/journal/
	cd tools/collector-image && $(GO) test ./...

lint: ## gofmt check, go vet (also of the -tags eksirtest test hooks), staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags eksirtest ./playbooks ./internal/kube
	@test -x $(TOOLBIN)/staticcheck-$(STATICCHECK_VERSION) || (GOBIN=$(TOOLBIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) && mv $(TOOLBIN)/staticcheck $(TOOLBIN)/staticcheck-$(STATICCHECK_VERSION))
	$(TOOLBIN)/staticcheck-$(STATICCHECK_VERSION) ./...
	cd tools/collector-image && $(GO) vet ./... && $(TOOLBIN)/staticcheck-$(STATICCHECK_VERSION) ./...

bench: build lab-check ## every benchmark, each beside its baseline; figures in docs/BENCHMARKS.md
	{ EKSIR_BIN=$(BIN) ./evidence/bench/run.sh && \
	  $(GO) test -run '^$$' -bench 'BenchmarkLab' -benchtime 3x -count 1 ./lab/ && \
	  ./collect/bench/run.sh && \
	  $(GO) test -run '^$$' -bench 'BenchmarkVolatileCapture' -benchtime 3x -count 1 ./internal/nodecollect/ && \
	  $(GO) test -run '^$$' -bench 'BenchmarkNodeContainment' -benchtime 3x -count 1 ./isolate/ && \
	  $(GO) test -run '^$$' -bench 'BenchmarkSnapshots' -benchtime 1x -count 1 -timeout 30m ./collect/ && \
	  $(GO) test -run '^$$' -bench 'BenchmarkAWSMemoryStream' -benchtime 1x -count 1 -timeout 30m ./collect/ && \
	  $(GO) test -run '^$$' -bench 'BenchmarkCustodyUpload' -benchtime 1x -count 1 -timeout 30m ./cmd/eksir/ && \
	  $(GO) test -run '^$$' -bench 'BenchmarkReport1000Pods' -benchtime 5x -count 3 ./report/ && \
	  $(GO) test -run '^$$' -bench 'BenchmarkReportFromCase1000Pods' -benchtime 3x -count 1 ./report/; } 2>&1 | tee $(BENCH_OUT)

demo: build lab-check ## end to end on the local lab: up, seed, collect, seal, verify, hand off, release, report, down
	./lab/demo.sh $(BIN)

clean: ## remove build output
	rm -rf bin .bin
