#!/usr/bin/env bash
# Kubernetes containment and collection benchmarks on the lab, in one run
# (docs/BENCHMARKS.md):
#   1. contain + collect one pod: eksir's actions vs kubectl-contain-collect.sh
#   2. objects + logs of 1,000 pods on 100 nodes: wall time and peak RSS
# Each benchmark runs alone in its own test binary so its lab holds only its
# own seed. Needs the lab binaries (make lab-tools) and moto.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(go version | cut -d' ' -f3); $(kubectl version --client 2>/dev/null | head -1)"
go test -run '^$' -bench 'ContainCollectOnePod' -benchtime "${RUNS}x" -count 1 . | grep -E '^Benchmark|^ok'
go test -run '^$' -bench 'Collect1000Pods' -benchtime 2x -count 1 -timeout 20m . | grep -E '^Benchmark|^ok'
