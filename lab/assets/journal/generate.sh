#!/bin/sh
# Builds system.journal.zst, the lab's node journal: about fifty kubelet and
# containerd entries and some sshd and systemd noise, as an EKS node
# (Amazon Linux 2023) logs them, written by the real systemd-journal-remote
# in compact mode with zstd compression, then compressed with zstd -19.
# No entry names a host (no _HOSTNAME), so the fixture fits any node.
#
# Needs systemd-journal-remote (Debian package systemd-journal-remote; it
# lives in /usr/lib/systemd) and zstd. Usage: ./generate.sh [output.zst]
set -eu

out=${1:-"$(dirname "$0")/system.journal.zst"}
remote=$(command -v systemd-journal-remote || true)
for p in /usr/lib/systemd/systemd-journal-remote /lib/systemd/systemd-journal-remote; do
	if [ -z "$remote" ] && [ -x "$p" ]; then remote=$p; fi
done
if [ -z "$remote" ]; then
	echo "generate.sh: systemd-journal-remote not found (apt-get install systemd-journal-remote)" >&2
	exit 1
fi
command -v zstd >/dev/null || { echo "generate.sh: zstd not found (apt-get install zstd)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

boot=6c3f0e5b2a8d4f17b9e0c4a1d2f3e4a5
t0=1764496800000000 # 2025-11-30T10:00:00Z, fixed so the content is reproducible
i=0

# entry UNIT PID COMM MESSAGE [EXTRA_FIELD=VALUE]: one entry of the export
# format systemd-journal-remote reads.
entry() {
	i=$((i + 1))
	printf '__REALTIME_TIMESTAMP=%s\n__MONOTONIC_TIMESTAMP=%s\n_BOOT_ID=%s\n' \
		$((t0 + i * 1500000)) $((31000000 + i * 1500000)) "$boot"
	printf '_TRANSPORT=stdout\n_SYSTEMD_UNIT=%s\n_PID=%s\n_UID=0\n_COMM=%s\nSYSLOG_IDENTIFIER=%s\nPRIORITY=6\n' \
		"$1" "$2" "$3" "$3"
	printf 'MESSAGE=%s\n' "$4"
	if [ $# -gt 4 ]; then printf '%s\n' "$5"; fi
	printf '\n'
}

{
	entry init.scope 1 systemd "Starting containerd.service - containerd container runtime..." "UNIT=containerd.service"
	for n in 1 2 3 4 5 6 7 8 9 10 11 12; do
		entry containerd.service 2291 containerd "time=\"2025-11-30T10:00:0${n}Z\" level=info msg=\"loading plugin\" id=io.containerd.grpc.v1.cri-$n type=io.containerd.grpc.v1"
	done
	entry containerd.service 2291 containerd 'time="2025-11-30T10:00:14Z" level=info msg="containerd successfully booted in 0.061s"'
	entry init.scope 1 systemd "Started containerd.service - containerd container runtime." "UNIT=containerd.service"
	entry sshd.service 2310 sshd "Server listening on 0.0.0.0 port 22."
	entry init.scope 1 systemd "Starting kubelet.service - Kubernetes Kubelet..." "UNIT=kubelet.service"
	entry init.scope 1 systemd "Started kubelet.service - Kubernetes Kubelet." "UNIT=kubelet.service"
	for m in \
		"Flag --container-runtime-endpoint has been deprecated" \
		"I1130 10:00:20.101 2377 server.go:484] \"Kubelet version\" kubeletVersion=\"v1.31.3-eks\"" \
		"I1130 10:00:20.140 2377 dynamic_cafile_content.go:157] \"Starting controller\" name=\"client-ca-bundle::/etc/kubernetes/pki/ca.crt\"" \
		"I1130 10:00:20.301 2377 kubelet.go:408] \"Attempting to sync node with API server\"" \
		"I1130 10:00:20.302 2377 kubelet.go:303] \"Adding static pod path\" path=\"/etc/kubernetes/manifests\"" \
		"I1130 10:00:20.410 2377 kuberuntime_manager.go:262] \"Container runtime initialized\" containerRuntime=\"containerd\" version=\"1.7.23\"" \
		"I1130 10:00:20.520 2377 volume_host.go:77] \"KubeClient is nil. Skip initialization of CSIDriverLister\"" \
		"I1130 10:00:21.002 2377 kubelet_node_status.go:72] \"Attempting to register node\"" \
		"I1130 10:00:21.230 2377 kubelet_node_status.go:75] \"Successfully registered node\"" \
		"I1130 10:00:22.118 2377 cpu_manager.go:214] \"Starting CPU manager\" policy=\"none\"" \
		"I1130 10:00:22.512 2377 reconciler.go:26] \"Reconciler: start to sync state\"" \
		"I1130 10:00:25.700 2377 kubelet.go:2416] \"SyncLoop ADD\" source=\"api\" pods=[\"kube-system/aws-node-7x2kq\",\"kube-system/kube-proxy-9fz4d\"]" \
		"I1130 10:00:26.031 2377 topology_manager.go:215] \"Topology Admit Handler\" podUID=\"3b0c2f1e-2a51-4b1f-9d1e-77c0f2f1a001\"" \
		"I1130 10:00:31.440 2377 pod_startup_latency_tracker.go:102] \"Observed pod startup duration\" pod=\"kube-system/kube-proxy-9fz4d\"" \
		"I1130 10:00:35.118 2377 pod_startup_latency_tracker.go:102] \"Observed pod startup duration\" pod=\"kube-system/aws-node-7x2kq\"" \
		"I1130 10:01:02.551 2377 kubelet.go:2416] \"SyncLoop ADD\" source=\"api\" pods=[\"default/web-5d8f6c7b9c-m2vkp\"]" \
		"I1130 10:01:09.874 2377 pod_startup_latency_tracker.go:102] \"Observed pod startup duration\" pod=\"default/web-5d8f6c7b9c-m2vkp\"" \
		"E1130 10:05:41.002 2377 kuberuntime_container.go:770] \"ExecSync cmd from runtime service failed\" containerID=\"4f1c\" cmd=[\"/bin/sh\"]" \
		"I1130 10:05:41.300 2377 kubelet.go:2448] \"SyncLoop (PLEG): event for pod\" pod=\"default/web-5d8f6c7b9c-m2vkp\"" \
		"W1130 10:06:00.000 2377 eviction_manager.go:264] \"Eviction manager: failed to get summary stats\"" \
		"E1130 10:06:05.410 2377 pod_workers.go:1301] \"Error syncing pod, skipping\" err=\"failed to \\\"StartContainer\\\" for \\\"metrics\\\" with CrashLoopBackOff: \\\"back-off 10s restarting failed container=metrics pod=web-5d8f6c7b9c-m2vkp_default(3b0c2f1e-2a51-4b1f-9d1e-77c0f2f1a002)\\\"\" pod=\"default/web-5d8f6c7b9c-m2vkp\" podUID=\"3b0c2f1e-2a51-4b1f-9d1e-77c0f2f1a002\" containers=[\"metrics\"] image=\"602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/metrics:v0.7.2\" args=[\"--kubelet-insecure-tls\",\"--metric-resolution=15s\",\"--kubelet-preferred-address-types=InternalIP,Hostname,InternalDNS,ExternalDNS,ExternalIP\",\"--secure-port=10250\",\"--cert-dir=/tmp\",\"--kubelet-use-node-status-port\"] lastState=\"terminated\" exitCode=2 reason=\"Error\" message=\"panic: open /var/run/secrets/kubernetes.io/serviceaccount/token: no such file or directory\"" \
		"I1130 10:06:12.700 2377 kubelet.go:2448] \"SyncLoop UPDATE\" source=\"api\" pods=[\"default/web-5d8f6c7b9c-m2vkp\"]"
	do
		entry kubelet.service 2377 kubelet "$m"
	done
	for n in 1 2 3 4 5 6; do
		entry containerd.service 2291 containerd "time=\"2025-11-30T10:01:0${n}Z\" level=info msg=\"StartContainer returned successfully\" container_id=c0ffee0$n"
	done
	entry sshd.service 3120 sshd "Accepted publickey for ec2-user from 10.0.0.5 port 51234 ssh2: ED25519 SHA256:nqyOsm0cPx1lSRxt0YJOHk4Xbk5d8u3xH1VcT6f5kzE"
	entry sshd.service 3120 sshd "pam_unix(sshd:session): session opened for user ec2-user(uid=1000) by (uid=0)"
	entry systemd-logind.service 1604 systemd-logind "New session 1 of user ec2-user."
	entry containerd.service 2291 containerd 'time="2025-11-30T10:05:40Z" level=info msg="ExecSync for \"4f1c\" with command [/bin/sh] and timeout 0 (s)"'
	entry containerd.service 2291 containerd 'time="2025-11-30T10:05:41Z" level=error msg="ExecSync for \"4f1c\" failed" error="rpc error: code = Unknown"'
	entry sshd.service 3120 sshd "Received disconnect from 10.0.0.5 port 51234:11: disconnected by user"
} >"$tmp/node.export"

SYSTEMD_JOURNAL_COMPACT=1 "$remote" --compress=yes --output="$tmp/system.journal" "$tmp/node.export" >/dev/null 2>&1
# The tool writes the build host's machine ID into the header (offset 40);
# put a fixed one there so the fixture tells nothing about where it was built.
machine=ec2b3c1d9a8f4e6b8c7d6e5f4a3b2c1d
for pair in $(echo "$machine" | sed 's/../& /g'); do
	# shellcheck disable=SC2059 # the format is the octal escape of one byte
	printf "\\$(printf %o "0x$pair")"
done | dd of="$tmp/system.journal" bs=1 seek=40 conv=notrunc 2>/dev/null
zstd -q -19 -f "$tmp/system.journal" -o "$out"
