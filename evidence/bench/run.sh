#!/usr/bin/env bash
# Seal and verify throughput and memory, in one run on the same data
# (docs/BENCHMARKS.md), of:
#   new       the one eksir binary, the full build of this tree ($EKSIR_BIN,
#             or built here with `go build ./cmd/eksir`)
#   baseline  the old lean evidence front: `go build -tags lean ./cmd/eksir`
#             at $BASELINE_REF (default a5944ee), from `git archive` in a
#             temporary folder ($BASELINE_BIN skips the build)
# beside the manual baseline a responder would use, the SHA-256 hashing
# limit, cp's write speed and dd's O_DIRECT read. Data sets:
#   (a) 2 GiB of random data in 8 files
#   (b) 100,000 files of 4 KiB
#   (c) 1 GiB of random data in 4 files
#   (d) 256 MiB of random data in 1 file
# Every timing is the median of $RUNS runs; the two binaries take turns
# going first. Beside wall time, eksir's CPU time (user + system) is
# reported: on shared cores it moves much less with other work than wall
# time does. Every tool's input is in the page cache, as the data sets are:
# verify is timed that way too (its input is the archive, which seal writes
# with O_DIRECT and so leaves uncached), and also cold.
#
# Memory is reported as peak RSS and as growth: peak RSS minus the same
# binary's peak RSS at idle (`eksir version`, the largest of 5 runs). The full
# build's package initialisers take tens of MiB before main runs whatever the
# command; growth is what sealing and verifying add, and it must not depend
# on the archive's size (compare sets d, c and a).
set -euo pipefail
RUNS=${RUNS:-3}
SETS=${SETS:-a b c d}
BASELINE_REF=${BASELINE_REF:-a5944ee}
WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/eksir-bench.XXXXXX)}
trap 'rm -rf "$WORK"' EXIT
here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
mkdir -p "$WORK/bin"

median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
maxof() { sort -n | tail -1; }
# timed CMD...: prints "seconds maxrss_kib cpu_seconds" (cpu: user + system)
timed() { /usr/bin/time -f '%e %M %U %S' -o "$WORK/.t" "$@" >/dev/null 2>"$WORK/.err" || { cat "$WORK/.err" >&2; exit 1; }; awk '{printf "%s %s %.2f\n", $1, $2, $3 + $4}' "$WORK/.t"; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN{ if (s>0) printf "%.0f", b/s/1e6; else print "inf" }'; }
mib() { echo $(( $1 / 1024 )); }

# Binaries are copied with install: a binary run from the pages the linker
# just wrote maps about twice the RSS (they sit in the page cache as large
# folios), which would make the comparison about the build, not the code.
tmpbuild=$(mktemp -d)
if [ -n "${EKSIR_BIN:-}" ]; then
  install -m 0755 "$EKSIR_BIN" "$WORK/bin/eksir-new"
else
  (cd "$repo" && go build -trimpath -o "$tmpbuild/eksir-new" ./cmd/eksir)
  install -m 0755 "$tmpbuild/eksir-new" "$WORK/bin/eksir-new"
fi
if [ -n "${BASELINE_BIN:-}" ]; then
  install -m 0755 "$BASELINE_BIN" "$WORK/bin/eksir-baseline"
else
  mkdir -p "$tmpbuild/src"
  git -C "$repo" archive "$BASELINE_REF" | tar -x -C "$tmpbuild/src"
  (cd "$tmpbuild/src" && go build -trimpath -tags lean -o "$tmpbuild/eksir-baseline" ./cmd/eksir)
  install -m 0755 "$tmpbuild/eksir-baseline" "$WORK/bin/eksir-baseline"
fi
rm -rf "$tmpbuild"
declare -A BIN=([new]="$WORK/bin/eksir-new" [baseline]="$WORK/bin/eksir-baseline")
declare -A IDLE
for k in new baseline; do
  IDLE[$k]=$(for _ in 1 2 3 4 5; do timed "${BIN[$k]}" version | cut -d' ' -f2; done | maxof)
done

read -r per_core cores limit < <(go run "$here/hashlimit")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(go version | cut -d' ' -f3)"
echo "load: $(uptime | sed 's/.*load average/load average/')"
echo "new:      $("${BIN[new]}" version | head -1) (this tree, $(git -C "$repo" describe --always --dirty), full build); idle peak RSS $(mib "${IDLE[new]}") MiB"
echo "baseline: $("${BIN[baseline]}" version | head -1) ($BASELINE_REF, -tags lean); idle peak RSS $(mib "${IDLE[baseline]}") MiB"
echo "hashing limit: crypto/sha256 $(mbps "$per_core" 1) MB/s per core x $cores cores = $(mbps "$limit" 1) MB/s"
echo

"${BIN[new]}" keygen --out "$WORK/bench.key" >/dev/null

make_set() {
  local set=$1 dir=$WORK/$1
  mkdir -p "$dir"
  case $set in
    a) for i in $(seq 1 8); do head -c 268435456 /dev/urandom > "$dir/random-$i.bin"; done ;;
    c) for i in $(seq 1 4); do head -c 268435456 /dev/urandom > "$dir/random-$i.bin"; done ;;
    d) head -c 268435456 /dev/urandom > "$dir/random-1.bin" ;;
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

declare -A MEMSUM

run_set() {
  local set=$1 dir=$WORK/$1
  make_set "$set"
  local bytes files
  bytes=$(du -sb --apparent-size "$dir" | cut -f1)
  files=$(find "$dir" -type f | wc -l)
  find "$dir" -type f -exec cat {} + >/dev/null
  echo "== set ($set): $files files, $bytes bytes; load: $(cut -d' ' -f1-3 /proc/loadavg)"
  local cp_t=() cps_t=() base_t=() disk_t=()
  declare -A seal_t seal_m seal_c ver_t ver_m ver_c cold_t cold_m cold_c
  local abytes=0
  for r in $(seq 1 "$RUNS"); do
    rm -rf "$WORK/cp" "$WORK/manual.tar" "$WORK/manifest.txt"
    sync
    # The write-speed comparison is set (a)'s; cp of 100,000 small files
    # takes minutes on this filesystem and no target depends on it.
    if [ "$set" = a ]; then
      cp_t+=("$(timed cp -r "$dir" "$WORK/cp" | cut -d' ' -f1)")
      rm -rf "$WORK/cp"; sync
      # seal fsyncs its archive before it reports success; cp does not.
      cps_t+=("$(timed bash -c "cp -r '$dir' '$WORK/cp' && sync" | cut -d' ' -f1)")
      rm -rf "$WORK/cp"; sync
    fi
    base_t+=("$(timed bash -c "cd '$WORK' && tar cf - '$set' | tee manual.tar | sha256sum > manual.tar.sha256 && find '$set' -type f -exec sha256sum {} + > manifest.txt" | cut -d' ' -f1)")
    rm -f "$WORK/manual.tar"
    local order="baseline new"
    [ $((r % 2)) -eq 0 ] && order="new baseline"
    for k in $order; do
      local out=$WORK/out-$k archive t m c
      rm -rf "$out"
      read -r t m c < <(timed "${BIN[$k]}" seal --incident "bench-$set" --compress none --key "$WORK/bench.key" --out "$out" "$dir")
      seal_t[$k]+="$t "; seal_m[$k]+="$m "; seal_c[$k]+="$c "
      archive=$out/bench-$set.tar
      abytes=$(stat -c %s "$archive")
      # Cold: drop the archive's pages (seal wrote it with O_DIRECT, so this
      # only makes sure), then verify.
      dd if="$archive" iflag=nocache count=0 status=none
      read -r t m c < <(timed "${BIN[$k]}" verify --pubkey "$WORK/bench.key.pub" "$archive")
      cold_t[$k]+="$t "; cold_m[$k]+="$m "; cold_c[$k]+="$c "
      if [ "$k" = new ]; then
        dd if="$archive" iflag=nocache count=0 status=none
        disk_t+=("$(timed dd if="$archive" of=/dev/null bs=4M iflag=direct | cut -d' ' -f1)")
      fi
      # Warm, like every other input here.
      cat "$archive" >/dev/null
      read -r t m c < <(timed "${BIN[$k]}" verify --pubkey "$WORK/bench.key.pub" "$archive")
      ver_t[$k]+="$t "; ver_m[$k]+="$m "; ver_c[$k]+="$c "
      rm -rf "$out"
    done
  done
  local base disk
  base=$(printf '%s\n' "${base_t[@]}" | median); disk=$(printf '%s\n' "${disk_t[@]}" | median)
  if [ "$set" = a ]; then
    local cp cps
    cp=$(printf '%s\n' "${cp_t[@]}" | median); cps=$(printf '%s\n' "${cps_t[@]}" | median)
    printf '%-40s %8s s %6s MB/s\n' "cp -r (page cache)" "$cp" "$(mbps "$bytes" "$cp")"
    printf '%-40s %8s s %6s MB/s\n' "cp -r && sync (durable write)" "$cps" "$(mbps "$bytes" "$cps")"
  fi
  printf '%-40s %8s s %6s MB/s\n' "manual: tar|tee|sha256sum + find" "$base" "$(mbps "$bytes" "$base")"
  printf '%-40s %8s s %6s MB/s\n' "dd iflag=direct (disk read, cold)" "$disk" "$(mbps "$abytes" "$disk")"
  declare -A med
  for k in baseline new; do
    local what
    for what in seal cold ver; do
      local -n tt="${what}_t" mm="${what}_m" cc="${what}_c"
      local t m c label
      t=$(tr ' ' '\n' <<<"${tt[$k]}" | grep . | median)
      c=$(tr ' ' '\n' <<<"${cc[$k]}" | grep . | median)
      med[cpu-$what-$k]=$c
      m=$(tr ' ' '\n' <<<"${mm[$k]}" | grep . | maxof)
      med[$what-$k]=$t
      MEMSUM[$set-$what-$k]="$(mib "$m") $(mib $((m - IDLE[$k])))"
      case $what in
        seal) label="seal --compress none" ;;
        cold) label="verify (archive cold)" ;;
        ver) label="verify (archive cached)" ;;
      esac
      printf '%-40s %8s s %6s MB/s   cpu %6s s   peak RSS %4s MiB, growth above idle %4s MiB   runs: %s\n' "$k: eksir $label" "$t" "$(mbps "$bytes" "$t")" \
        "$c" "$(mib "$m")" "$(mib $((m - IDLE[$k])))" "${tt[$k]% }"
      unset -n tt mm cc
    done
  done
  awk -v bs="${med[seal-baseline]}" -v ns="${med[seal-new]}" -v bv="${med[ver-baseline]}" -v nv="${med[ver-new]}" \
      -v bc="${med[cold-baseline]}" -v nc="${med[cold-new]}" -v manual="$base" 'BEGIN{
    printf "new/baseline time (<= 1 is at least as fast): seal %.2f, verify cached %.2f, verify cold %.2f; new seal vs manual: %.1fx\n", ns/bs, nv/bv, nc/bc, manual/ns }'
  awk -v bs="${med[cpu-seal-baseline]}" -v ns="${med[cpu-seal-new]}" -v bv="${med[cpu-ver-baseline]}" -v nv="${med[cpu-ver-new]}" \
      -v bc="${med[cpu-cold-baseline]}" -v nc="${med[cpu-cold-new]}" 'BEGIN{
    printf "new/baseline cpu time: seal %.2f, verify cached %.2f, verify cold %.2f\n", ns/bs, nv/bv, nc/bc }'
  if [ "$set" = a ]; then
    awk -v seal="${med[seal-new]}" -v cps="${cps}" -v b="$bytes" -v lim="$limit" 'BEGIN{
      cpd=b/cps; low=(lim<cpd)?lim:cpd; printf "new seal = %.0f%% of min(hash limit, cp+sync) = %.0f MB/s\n", 100*(b/seal)/low, low/1e6 }'
  fi
  echo "runs: manual ${base_t[*]} | disk read ${disk_t[*]}${cp_t:+ | cp ${cp_t[*]} | cp+sync ${cps_t[*]}}"
  echo
  rm -rf "$dir"
}

for s in $SETS; do run_set "$s"; done

echo "== memory: peak RSS / growth above idle, MiB (idle: new $(mib "${IDLE[new]}"), baseline $(mib "${IDLE[baseline]}"))"
printf '%-5s %-20s %-20s %-20s %-20s\n' set "seal new" "seal baseline" "verify new" "verify baseline"
for s in $SETS; do
  vn=$(printf '%s\n%s\n' "${MEMSUM[$s-ver-new]}" "${MEMSUM[$s-cold-new]}" | sort -n | tail -1)
  vb=$(printf '%s\n%s\n' "${MEMSUM[$s-ver-baseline]}" "${MEMSUM[$s-cold-baseline]}" | sort -n | tail -1)
  printf '%-5s %-20s %-20s %-20s %-20s\n' "$s" "${MEMSUM[$s-seal-new]/ / / }" "${MEMSUM[$s-seal-baseline]/ / / }" "${vn/ / / }" "${vb/ / / }"
done
