#!/usr/bin/env bash
# The baseline for BenchmarkContainCollectOnePod: what a responder does by
# hand with kubectl to contain and collect one pod, the same steps eksir
# takes (quarantine label, deny-all policy, neutralise the policies selecting
# the pod, cordon/taint/annotate/label the node, objects, logs, hashes).
# Usage: kubectl-contain-collect.sh NAMESPACE POD NODE OUTDIR INCIDENT
set -euo pipefail
ns=$1 pod=$2 node=$3 out=$4 inc=$5
k() { kubectl "$@"; }
mkdir -p "$out"

labels=$(k get pod -n "$ns" "$pod" -o json | jq -c '.metadata.labels')
k label pod -n "$ns" "$pod" "eksir.io/quarantine=$inc" >/dev/null
k apply -f - >/dev/null <<YAML
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: quarantine-$inc, namespace: $ns}
spec:
  podSelector: {matchLabels: {eksir.io/quarantine: "$inc"}}
  policyTypes: [Ingress, Egress]
YAML
# Policies are additive: narrow every other policy selecting the pod.
for np in $(k get networkpolicy -n "$ns" -o json | jq -r --argjson l "$labels" --arg q "quarantine-$inc" '
    .items[] | select(.metadata.name != $q) |
    select((.spec.podSelector.matchLabels // {}) | to_entries | all(.value == $l[.key])) | .metadata.name'); do
  k patch networkpolicy -n "$ns" "$np" --type json -p \
    '[{"op":"add","path":"/spec/podSelector/matchExpressions","value":[{"key":"eksir.io/quarantine","operator":"DoesNotExist"}]}]' >/dev/null
done

k cordon "$node" >/dev/null
k taint node "$node" "eksir.io/quarantine=$inc:NoSchedule" --overwrite >/dev/null
k annotate node "$node" karpenter.sh/do-not-disrupt=true --overwrite >/dev/null
k label node "$node" "eksir.io/quarantine=$inc" --overwrite >/dev/null

k get pod -n "$ns" "$pod" -o json >"$out/pod.json"
rs=$(jq -r '.metadata.ownerReferences[0].name' "$out/pod.json")
k get replicaset -n "$ns" "$rs" -o json >"$out/replicaset.json"
dep=$(jq -r '.metadata.ownerReferences[0].name' "$out/replicaset.json")
k get deployment -n "$ns" "$dep" -o json >"$out/deployment.json"
k get node "$node" -o json >"$out/node.json"
sa=$(jq -r '.spec.serviceAccountName // "default"' "$out/pod.json")
k get serviceaccount -n "$ns" "$sa" -o json >"$out/serviceaccount.json"
k get rolebindings -n "$ns" -o json >"$out/rolebindings.json"
k get clusterrolebindings -o json >"$out/clusterrolebindings.json"
k get services,endpointslices -n "$ns" -o json >"$out/services.json"
k get networkpolicies -n "$ns" -o json >"$out/networkpolicies.json"
k get events -n "$ns" --field-selector "involvedObject.name=$pod" -o json >"$out/events.json"
k get events -A --field-selector "involvedObject.kind=Node,involvedObject.name=$node" -o json >"$out/node-events.json"
for c in $(jq -r '.spec.containers[].name' "$out/pod.json"); do
  k logs -n "$ns" "$pod" -c "$c" --timestamps >"$out/$c.log"
done
(cd "$out" && sha256sum -- * >SHA256SUMS)
