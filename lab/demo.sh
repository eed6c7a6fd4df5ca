#!/usr/bin/env bash
# make demo: the main job end to end on the local lab. It brings a lab up,
# seeds the crypto-miner scenario, collects the suspect pod's objects and
# logs into a case, seals the case into a signed BagIt archive, verifies it,
# and brings the lab down again (also on failure or Ctrl-C). Safe to run twice:
# `lab up` cleans a dirty lab folder first and each run uses a new incident.
#
# Until the playbook engine and the Kubernetes actions land, collection is
# the part that exists: kubectl output acquired through `eksir acquire`.
#
# Usage: lab/demo.sh [EKSIR_BINARY] [LAB_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
eksir="${1:-${EKSIR_BIN:-bin/eksir}}"
dir="${2:-.eksir-lab}"
work="${DEMO_DIR:-$PWD/demo-output}"

down() { "$eksir" lab down --dir "$dir" >/dev/null 2>&1 || true; }
trap down EXIT

step() { printf '\n== %s\n' "$*"; }

step "lab up"
"$eksir" lab up --dir "$dir"
step "seed crypto-miner"
targets=$("$eksir" --output json lab seed --dir "$dir" --scenario crypto-miner)
echo "$targets"
# shellcheck disable=SC1091
. "$dir/env"
pod=$(jq -r '.targets.pod' <<<"$targets")
ns=${pod%%/*} name=${pod#*/}

rm -rf "$work"; mkdir -p "$work"
export EKSIR_CASE_DIR="$work/cases"
incident="demo-$(date -u +%Y%m%d-%H%M%S)"
"$eksir" keygen --out "$work/demo.key" >/dev/null
export EKSIR_SIGNING_KEY="$work/demo.key"

step "collect $pod into incident $incident"
kubectl get pod -n "$ns" "$name" -o json |
  "$eksir" acquire --incident "$incident" --as "k8s/pods/$ns/$name.json" --method "kubectl get pod -n $ns $name -o json" -
node=$(kubectl get pod -n "$ns" "$name" -o jsonpath='{.spec.nodeName}')
kubectl get node "$node" -o json |
  "$eksir" acquire --incident "$incident" --as "k8s/nodes/$node.json" --method "kubectl get node $node -o json" -
for c in $(kubectl get pod -n "$ns" "$name" -o jsonpath='{.spec.containers[*].name}'); do
  kubectl logs -n "$ns" "$name" -c "$c" --timestamps |
    "$eksir" acquire --incident "$incident" --as "logs/$ns/$name/$c.log" --method "kubectl logs -n $ns $name -c $c --timestamps" -
done

step "seal"
"$eksir" seal --incident "$incident"
step "verify"
"$eksir" verify --pubkey "$work/demo.key.pub" "$EKSIR_CASE_DIR/$incident.tar.zst"

step "done"
echo "archive:    $EKSIR_CASE_DIR/$incident.tar.zst"
echo "sidecar:    $EKSIR_CASE_DIR/$incident.tar.zst.sha256"
echo "public key: $work/demo.key.pub"
