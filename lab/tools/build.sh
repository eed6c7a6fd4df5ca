#!/usr/bin/env bash
# Builds the lab's binaries (etcd, kube-apiserver, kwok) at the versions pinned
# in this folder's go.mod into a cache folder outside the repository:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/eksir/lab/<key>/bin
#
# <key> is a hash of go.mod and go.sum here and in ./kwok, so a version bump builds into a new
# folder and an unchanged pin is found again instantly. The Go code computes
# the same key (lab.ToolsKey); keep the two in step.
#
# Usage: build.sh            build what is missing, print progress
#        build.sh --print-bin print the bin folder and exit (builds nothing)
#        build.sh --check     exit 1 with a hint if a binary is missing
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
key="$(cat "$here/go.mod" "$here/go.sum" "$here/kwok/go.mod" "$here/kwok/go.sum" | sha256sum | cut -c1-16)"
root="${XDG_CACHE_HOME:-$HOME/.cache}/eksir/lab"
bin="$root/$key/bin"

# name:module folder:package, built in this order (quick ones first: they
# show early that the toolchain works). kwok has its own module: see
# kwok/tools.go.
tools=(
  "etcd:.:go.etcd.io/etcd/server/v3"
  "kwok:kwok:sigs.k8s.io/kwok/cmd/kwok"
  "kube-apiserver:.:k8s.io/kubernetes/cmd/kube-apiserver"
)

case "${1:-}" in
  --print-bin) echo "$bin"; exit 0 ;;
  --check)
    for t in "${tools[@]}"; do
      [[ -x "$bin/${t%%:*}" ]] || { echo "lab binary ${t%%:*} missing in $bin; run: make lab-tools" >&2; exit 1; }
    done
    exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-bin|--check]" >&2; exit 2 ;;
esac

mkdir -p "$bin"
n=${#tools[@]}
i=0
for t in "${tools[@]}"; do
  i=$((i + 1))
  IFS=: read -r name mod pkg <<<"$t"
  if [[ -x "$bin/$name" ]]; then
    echo "[$i/$n] $name: cached"
    continue
  fi
  echo "[$i/$n] $name: building $pkg (kube-apiserver takes about 8 minutes cold on 2 cores)"
  start=$SECONDS
  tmp="$bin/.$name.tmp.$$"
  # -v lists each package as it is compiled: print a running count so a long
  # build visibly moves without flooding the terminal.
  # Plain flags on purpose: the same compile flags as any other build of these
  # packages, so the Go build cache is shared (only -ldflags, a link-time
  # setting, differs).
  set +e
  (cd "$here/$mod" && go build -ldflags='-s -w' -v -o "$tmp" "$pkg" 2>&1) |
    awk -v name="$name" '
      /^#|\.go:[0-9]+:|^go: |panic:/ { print; next }
      { n++; if (n % 50 == 0) { printf "      %s: %d packages compiled\n", name, n; fflush() } }'
  status=${PIPESTATUS[0]}
  set -e
  if [[ $status -ne 0 || ! -x "$tmp" ]]; then
    rm -f "$tmp"
    echo "[$i/$n] $name: build failed" >&2
    exit 1
  fi
  mv -f "$tmp" "$bin/$name"
  echo "[$i/$n] $name: built in $((SECONDS - start)) s"
done
# "current" lets an installed eksir outside the repository find the last build.
ln -sfn "$key" "$root/current"
echo "lab binaries in $bin"
