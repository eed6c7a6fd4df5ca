#!/usr/bin/env bash
# Seal and verify throughput against the manual baseline a responder would
# use, the SHA-256 hashing limit and cp's write speed, in one run on the same
# data (docs/BENCHMARKS.md). Data sets:
#   (a) 2 GiB of random data in 8 files
#   (b) 100,000 files of 4 KiB
# Every timing is the median of $RUNS runs. Every tool's input is in the page
# cache, as the data sets are: verify is timed that way too (its input is the
# archive, which seal writes with O_DIRECT and so leaves uncached), and also
# cold, beside the disk's own O_DIRECT read speed for the same file.
set -euo pipefail
EKSIR=${EKSIR_BIN:-bin/eksir}
RUNS=${RUNS:-3}
WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/eksir-bench.XXXXXX)}
SETS=${SETS:-a b}
trap 'rm -rf "$WORK"' EXIT
here=$(cd "$(dirname "$0")" && pwd)

median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
# timed CMD...: prints "seconds maxrss_kib"
timed() { /usr/bin/time -f '%e %M' -o "$WORK/.t" "$@" >/dev/null 2>"$WORK/.err" || { cat "$WORK/.err" >&2; exit 1; }; cat "$WORK/.t"; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN{ if (s>0) printf "%.0f", b/s/1e6; else print "inf" }'; }

read -r per_core cores limit < <(go run "$here/hashlimit")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(go version | cut -d' ' -f3)"
echo "hashing limit: crypto/sha256 $(mbps "$per_core" 1) MB/s per core x $cores cores = $(mbps "$limit" 1) MB/s"
echo

"$EKSIR" keygen --out "$WORK/bench.key" >/dev/null

make_set() {
  local set=$1 dir=$WORK/$1
  mkdir -p "$dir"
  case $set in
    a) for i in $(seq 1 8); do head -c 268435456 /dev/urandom > "$dir/random-$i.bin"; done ;;
    b) python3 - "$dir" <<'PY'
import os, sys
d = sys.argv[1]
for i in range(100000):
    sub = os.path.join(d, "dir%03d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "f%06d" % i), "wb") as f:
        f.write(os.urandom(4096))
PY
    ;;
  esac
}

run_set() {
  local set=$1 dir=$WORK/$1
  make_set "$set"
  local bytes files
  bytes=$(du -sb --apparent-size "$dir" | cut -f1)
  files=$(find "$dir" -type f | wc -l)
  cat "$dir"/* -r >/dev/null 2>&1 || find "$dir" -type f -exec cat {} + >/dev/null
  echo "== set ($set): $files files, $bytes bytes"
  local cp_t=() cps_t=() base_t=() seal_t=() seal_rss=() ver_t=() ver_rss=() cold_t=() disk_t=()
  for r in $(seq 1 "$RUNS"); do
    rm -rf "$WORK/cp" "$WORK/out" "$WORK/manual.tar" "$WORK/manifest.txt"
    sync
    # The write-speed comparison is set (a)'s target; cp of 100,000 small
    # files takes minutes on this filesystem and no target depends on it.
    if [ "$set" = a ]; then
      cp_t+=("$(timed cp -r "$dir" "$WORK/cp" | cut -d' ' -f1)")
      rm -rf "$WORK/cp"; sync
      # seal fsyncs its archive before it reports success; cp does not. This
      # row is the durable write speed of the same bytes.
      cps_t+=("$(timed bash -c "cp -r '$dir' '$WORK/cp' && sync" | cut -d' ' -f1)")
      rm -rf "$WORK/cp"; sync
    else
      cp_t+=(0); cps_t+=(0)
    fi
    base_t+=("$(timed bash -c "cd '$WORK' && tar cf - '$set' | tee manual.tar | sha256sum > manual.tar.sha256 && find '$set' -type f -exec sha256sum {} + > manifest.txt" | cut -d' ' -f1)")
    rm -f "$WORK/manual.tar"
    read -r t m < <(timed "$EKSIR" seal --incident "bench-$set" --compress none --key "$WORK/bench.key" --out "$WORK/out" "$dir")
    seal_t+=("$t"); seal_rss+=("$m")
    local archive=$WORK/out/bench-$set.tar
    # Cold: drop the archive's pages (seal wrote it with O_DIRECT, so this
    # only makes sure), then verify; and the disk's read speed for it.
    dd if="$archive" iflag=nocache count=0 status=none
    read -r t m < <(timed "$EKSIR" verify --pubkey "$WORK/bench.key.pub" "$archive")
    cold_t+=("$t"); ver_rss+=("$m")
    dd if="$archive" iflag=nocache count=0 status=none
    disk_t+=("$(timed dd if="$archive" of=/dev/null bs=4M iflag=direct | cut -d' ' -f1)")
    # Warm, like every other input here.
    cat "$archive" >/dev/null
    read -r t m < <(timed "$EKSIR" verify --pubkey "$WORK/bench.key.pub" "$archive")
    ver_t+=("$t"); ver_rss+=("$m")
  done
  local cp cps base seal ver cold disk abytes
  cp=$(printf '%s\n' "${cp_t[@]}" | median); base=$(printf '%s\n' "${base_t[@]}" | median)
  cold=$(printf '%s\n' "${cold_t[@]}" | median); disk=$(printf '%s\n' "${disk_t[@]}" | median)
  cps=$(printf '%s\n' "${cps_t[@]}" | median)
  seal=$(printf '%s\n' "${seal_t[@]}" | median); ver=$(printf '%s\n' "${ver_t[@]}" | median)
  local srss vrss
  srss=$(printf '%s\n' "${seal_rss[@]}" | sort -n | tail -1); vrss=$(printf '%s\n' "${ver_rss[@]}" | sort -n | tail -1)
  if [ "$set" = a ]; then
    printf '%-34s %8s s %8s MB/s\n' "cp -r (page cache)" "$cp" "$(mbps "$bytes" "$cp")"
    printf '%-34s %8s s %8s MB/s\n' "cp -r && sync (durable write)" "$cps" "$(mbps "$bytes" "$cps")"
  fi
  printf '%-34s %8s s %8s MB/s\n' "manual: tar|tee|sha256sum + find" "$base" "$(mbps "$bytes" "$base")"
  printf '%-34s %8s s %8s MB/s   peak RSS %s MiB\n' "eksir seal --compress none" "$seal" "$(mbps "$bytes" "$seal")" "$((srss / 1024))"
  printf '%-34s %8s s %8s MB/s   peak RSS %s MiB\n' "eksir verify (archive cached)" "$ver" "$(mbps "$bytes" "$ver")" "$((vrss / 1024))"
  printf '%-34s %8s s %8s MB/s\n' "eksir verify (archive cold)" "$cold" "$(mbps "$bytes" "$cold")"
  printf '%-34s %8s s %8s MB/s\n' "dd iflag=direct (disk read, cold)" "$disk" "$(mbps "$bytes" "$disk")"
  awk -v base="$base" -v seal="$seal" -v ver="$ver" -v cp="$cp" -v cps="$cps" -v b="$bytes" -v lim="$limit" 'BEGIN{
    if (cp == 0) { printf "seal vs manual: %.1fx; verify/seal speed: %.2f\n", base/seal, seal/ver; exit }
    cpw=b/cp; low=(lim<cpw)?lim:cpw; cpd=b/cps; lowd=(lim<cpd)?lim:cpd;
    printf "seal vs manual: %.1fx; seal = %.0f%% of min(hash limit, cp) = %.0f MB/s; = %.0f%% of min(hash limit, cp+sync) = %.0f MB/s; verify/seal speed: %.2f\n", base/seal, 100*(b/seal)/low, low/1e6, 100*(b/seal)/lowd, lowd/1e6, seal/ver }'
  awk -v seal="$seal" -v cold="$cold" -v disk="$disk" 'BEGIN{ printf "cold verify/seal speed: %.2f; cold verify = %.0f%% of the disk read speed\n", seal/cold, 100*disk/cold }'
  echo "runs: cp ${cp_t[*]} | cp+sync ${cps_t[*]} | manual ${base_t[*]} | seal ${seal_t[*]} | verify ${ver_t[*]} | verify cold ${cold_t[*]} | disk read ${disk_t[*]}"
  echo
  rm -rf "$dir" "$WORK/out"
}

for s in $SETS; do run_set "$s"; done
