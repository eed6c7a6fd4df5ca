#!/usr/bin/env bash
# make demo: the main job end to end. Until the playbooks and the lab land,
# it acquires the sample case from testdata/, seals it and verifies it.
set -euo pipefail
cd "$(dirname "$0")/.."
EKSIR=${EKSIR_BIN:-bin/eksir}
work=${DEMO_DIR:-$PWD/demo-output}
rm -rf "$work"; mkdir -p "$work"
export EKSIR_CASE_DIR=$work/cases
incident="demo-$(date -u +%Y%m%d)-$RANDOM"

echo "== key"
"$EKSIR" keygen --out "$work/demo.key"
export EKSIR_SIGNING_KEY=$work/demo.key

echo "== acquire (incident $incident)"
"$EKSIR" acquire --incident "$incident" testdata/sample-case/pod.json testdata/sample-case/web.log

echo "== seal"
"$EKSIR" seal --incident "$incident"

echo "== verify"
"$EKSIR" verify --pubkey "$work/demo.key.pub" "$EKSIR_CASE_DIR/$incident.tar.zst"

echo
echo "archive:    $EKSIR_CASE_DIR/$incident.tar.zst"
echo "public key: $work/demo.key.pub"
