#!/usr/bin/env bash
# make demo: the main job end to end on the local lab. It brings a lab up,
# seeds the crypto-miner scenario, shows the plan of the built-in
# pod-compromise playbook, runs it (capture volatile state, objects and
# logs, then isolate the pod's network, label it, cordon its node and
# revoke its service account and IRSA role), seals the case into a
# signed BagIt archive, verifies it (eksir, eksir-verify and the manual
# script docs/verify-bag.sh), uploads it to the lab's S3 bucket under Object
# Lock and fetches it back verified, releases the containment, then runs the
# built-in node-compromise playbook on the suspect's node (protect the EC2
# instance, capture, isolate it with the quarantine security group, revoke
# its instance profile, cordon) against moto and releases it, writes the
# incident's HTML report and prints its path, and brings the lab down again
# (also on failure or Ctrl-C). Safe to run twice: `lab up`
# cleans a dirty lab folder first and each run uses a new incident.
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
node=$(jq -r '.targets.node' <<<"$targets")
instance=$(jq -r '.targets.instance' <<<"$targets")

rm -rf "$work"; mkdir -p "$work"
export EKSIR_CASE_DIR="$work/cases"
incident="demo-$(date -u +%Y%m%d-%H%M%S)"
"$eksir" keygen --out "$work/demo.key" >/dev/null
export EKSIR_SIGNING_KEY="$work/demo.key"

# The lab runs no NetworkPolicy engine, and eksir says so: isolate is NOT
# ENFORCEABLE on the suspect's node and would fail. allow_unenforced applies
# the policies anyway for the rehearsal; the warnings stay and the playbook's
# contained output stays false.
step "plan pod-compromise for $pod (changes nothing)"
"$eksir" plan pod-compromise --pod "$pod" --incident "$incident" --set allow_unenforced=true

step "run pod-compromise (incident $incident)"
"$eksir" run pod-compromise --pod "$pod" --incident "$incident" --set allow_unenforced=true --yes

step "what the static collector saw of the suspect (volatile/$pod/)"
vol="$EKSIR_CASE_DIR/$incident/data/volatile/$pod"
if [ -f "$vol/processes.json" ]; then
  jq -r '.processes[] | select(.selected) | "process \(.pid) \(.comm) exe \(.exe) deleted=\(.exe_deleted) container \(.container_id[:12])"' "$vol/processes.json"
  jq -r '.network_namespaces[].sockets[] | select(.state == "ESTABLISHED") | "  \(.proto) \(.local) -> \(.remote) owner \([.owners[].comm] | join(","))"' "$vol/sockets.json"
fi

step "seal"
"$eksir" seal --incident "$incident"
step "verify"
"$eksir" verify --pubkey "$work/demo.key.pub" "$EKSIR_CASE_DIR/$incident.tar.zst"

step "verify as the lab does: eksir-verify, then the manual procedure with standard tools"
"${eksir}-verify" verify --pubkey "$work/demo.key.pub" "$EKSIR_CASE_DIR/$incident.tar.zst" >/dev/null && echo "eksir-verify: ok"
sh docs/verify-bag.sh "$EKSIR_CASE_DIR/$incident.tar.zst" "$work/demo.key.pub" | tail -n 1

step "hand the archive over: upload to the lab's Object Lock bucket, read back, fetch it as the lab would"
bucket=$(jq -r '.evidenceBucket' <<<"$targets")
"$eksir" custody upload "$EKSIR_CASE_DIR/$incident.tar.zst" --bucket "$bucket" --prefix "cases/$incident/" \
  --retain-days 1 --mode governance --pubkey "$work/demo.key.pub" --to "forensics lab (demo)"
"$eksir" custody fetch "s3://$bucket/cases/$incident/$incident.tar.zst" --out "$work/lab-received" \
  --pubkey "$work/demo.key.pub" --custodian-key "$work/demo.key.pub"
"$eksir" custody show "$work/lab-received/$incident.tar.zst" --pubkey "$work/demo.key.pub" | tail -n 3

step "release the containment"
# The lab gets its service account back too; on a real incident a revoked
# credential stays revoked unless release is given --restore-credentials.
"$eksir" release --incident "$incident" --yes --restore-credentials
"$eksir" status --incident "$incident"

node_incident="$incident-node"
step "plan node-compromise for node $node, instance $instance (changes nothing)"
"$eksir" plan node-compromise --node "$node" --incident "$node_incident" --set settle=1s --set memory=node-pod

step "run node-compromise (incident $node_incident)"
"$eksir" run node-compromise --node "$node" --incident "$node_incident" --set settle=1s --set memory=node-pod --yes

step "release node-compromise"
# The node role's deny-older-sessions policy and the instance profile come
# back only with --restore-credentials; the lab takes them back.
"$eksir" release --incident "$node_incident" --yes --restore-credentials
"$eksir" status --incident "$node_incident"

step "the incident report of $incident: one self-contained HTML page"
# Made from the case as it is now (sealed, handed over, released); the
# archive carries the report made at sealing (metadata/report.html).
report="$work/$incident-report.html"
"$eksir" report --incident "$incident" --pubkey "$work/demo.key.pub" --out "$report"

step "done"
echo "archive:    $EKSIR_CASE_DIR/$incident.tar.zst"
echo "sidecar:    $EKSIR_CASE_DIR/$incident.tar.zst.sha256"
echo "public key: $work/demo.key.pub"
echo "report:     $report"
