#!/usr/bin/env bash
# Lab part of `make demo`: bring a lab up, seed crypto-miner, show the
# targets, and bring it down again (also on failure or Ctrl-C). Safe to run
# twice: `lab up` cleans a dirty folder first.
#
# Usage: lab/demo.sh EKSIR_BINARY [LAB_DIR]
# The playbook/collection step is added here once those issues land (see
# docs/lab.md).
set -euo pipefail
eksir="${1:?usage: $0 EKSIR_BINARY [LAB_DIR]}"
dir="${2:-.eksir-lab}"

down() { "$eksir" lab down --dir "$dir" >/dev/null 2>&1 || true; }
trap down EXIT

"$eksir" lab up --dir "$dir"
"$eksir" lab seed --dir "$dir" --scenario crypto-miner
# shellcheck disable=SC1091
. "$dir/env"
echo
echo "kubectl sees:"
kubectl get nodes,pods -n payments -o wide
echo
echo "the suspect's logs:"
suspect="$(kubectl get pods -n payments -l app=checkout-api -o jsonpath='{.items[0].metadata.name}')"
kubectl logs -n payments "$suspect" | tail -3
