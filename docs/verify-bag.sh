#!/bin/sh
# verify-bag.sh ARCHIVE [PUBKEY.pem [CUSTODIAN.pem...]]
#
# Checks an eksir evidence archive (<ID>.tar.zst or <ID>.tar) without eksir,
# with sha256sum, GNU tar, zstd, jq, openssl and POSIX tools. It reads
# ARCHIVE.sha256 and, when present, ARCHIVE.custody.jsonl beside it.
# PUBKEY.pem is the examiner's published key; without it the key inside the
# bag is used and the signer is NOT pinned. CUSTODIAN.pem are keys trusted
# for custody records only (another examiner's acquisitions or hand-overs),
# never for the seal. The format and what each check
# proves: docs/evidence-format.md.
#
# Exit 0: every check passed. Exit 1: "FAIL: ..." names the first problem.
# Exit 2: usage or a missing tool.
set -eu
LC_ALL=C # byte semantics: ${#var}, sort, awk
export LC_ALL
cr=$(printf '\r')
nl='
'

# enc PATH prints PATH as a BagIt manifest writes it: %, CR and LF
# percent-encoded (RFC 8493 section 2.1.3), so every path fits on one line.
enc() {
	s=$1 out=
	while :; do
		case $s in *[%"$cr$nl"]*) ;; *) break ;; esac
		pre=${s%%[%"$cr$nl"]*}
		s=${s#"$pre"}
		case $s in
		%*) out=$out$pre%25 ;;
		"$cr"*) out=$out$pre%0D ;;
		*) out=$out$pre%0A ;;
		esac
		s=${s#?}
	done
	printf '%s\n' "$out$s"
}

# Internal: find -exec runs this script with --hash and file names as
# arguments, so names holding any byte arrive intact (sha256sum -c cannot
# read percent-encoded names, and a newline would split a listing). Prints
# "<sha256> <size> <encoded path>" per file.
if [ "${1-}" = --hash ]; then
	shift
	for f do
		sum=$(sha256sum <"$f")
		size=$(wc -c <"$f")
		printf '%s %s ' "${sum%% *}" $size
		enc "${f#./}"
	done
	exit 0
fi

fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}
ok() { printf 'ok    %s\n' "$*"; }

[ $# -ge 1 ] || {
	echo "usage: $0 ARCHIVE [PUBKEY.pem [CUSTODIAN.pem...]]" >&2
	exit 2
}
archive=$1 pub=${2-}
shift $(($# < 2 ? $# : 2))
for t in sha256sum tar jq openssl awk sed find sort od cmp tail mktemp; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "missing tool: $t (Debian/Ubuntu: apt-get install coreutils tar jq openssl mawk findutils)" >&2
		exit 2
	}
done
name=$(basename "$archive")
case $name in
*.tar.zst) id=${name%.tar.zst} zst=1 ;;
*.tar) id=${name%.tar} zst= ;;
*) fail "$name: expected <ID>.tar.zst or <ID>.tar" ;;
esac
if [ -n "$zst" ] && ! command -v zstd >/dev/null 2>&1; then
	echo "missing tool: zstd (Debian/Ubuntu: apt-get install zstd)" >&2
	exit 2
fi
[ -f "$archive" ] || fail "$archive: no such file"
# Absolute paths: the checks below run inside the extracted bag.
case $archive in /*) ;; *) archive=$PWD/$archive ;; esac
case $pub in /* | '') ;; *) pub=$PWD/$pub ;; esac
case $0 in /*) self=$0 ;; *) self=$PWD/$0 ;; esac
[ -z "$pub" ] || [ -f "$pub" ] || fail "$pub: no such file"
for c in "$@"; do # the custodians' keys, made absolute in place
	shift
	case $c in /*) ;; *) c=$PWD/$c ;; esac
	[ -f "$c" ] || fail "$c: no such file"
	set -- "$@" "$c"
done
unpack() { if [ -n "$zst" ]; then zstd -dcq -- "$archive"; else cat -- "$archive"; fi; }
sha() { s=$(sha256sum <"$1") && printf '%s\n' "${s%% *}"; }

tmp=$(mktemp -d)
# A hostile archive may hold folders without permissions; make them
# removable before removing them.
trap 'chmod -R u+rwx "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# 1. The archive as received: the sidecar names it and has its hash, in any
#    form sha256sum writes ("<hex>  NAME", "<hex> *NAME", "SHA256 (NAME) = <hex>").
sidecar=$archive.sha256
[ -f "$sidecar" ] || fail "no $name.sha256 beside the archive"
[ "$(sed -n '$=' "$sidecar")" = 1 ] || fail "$name.sha256 must hold exactly one line"
line=$(cat "$sidecar")
line=${line%"$cr"}
case $line in
"SHA256 ($name) = "*) want=${line#"SHA256 ($name) = "} ;;
*"  $name" | *" *$name") want=${line%??"$name"} ;;
*) fail "$name.sha256 does not name $name: $line" ;;
esac
want=$(printf '%s' "$want" | tr 'A-F' 'a-f')
sum=$(sha "$archive")
[ "$want" = "$sum" ] || fail "$name has sha256 $sum; $name.sha256 says $want"
ok "archive sha256 $sum matches $name.sha256"

# 2. List before extracting: only regular files and folders, all inside one
#    top folder named like the archive, no "." or ".." components. The
#    listing quotes control characters, so each entry is one line.
unpack | tar -tv --numeric-owner --quoting-style=escape -f - >"$tmp/list" ||
	fail "$name is not a readable tar archive"
awk -v id="$id" '
	!/^[-d]/ { bad = "a link or special file (refused): " $0; exit }
	{ n = $0; sub(/^[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ /, "", n) }
	index(n, id "/") != 1 { bad = "an entry outside the single top folder " id "/: " n; exit }
	("/" n "/") ~ /\/\.\.?\// { bad = "an entry with a . or .. component: " n; exit }
	END { if (bad != "") { print bad; exit 1 } if (NR == 0) { print "no entries"; exit 1 } }
' "$tmp/list" >"$tmp/why" || fail "$name holds $(cat "$tmp/why")"
ok "one top folder $id/, regular files and folders only"

# 3. Extract into an empty folder: no owners or modes from the archive, and
#    -k makes an entry that appears twice an error instead of an overwrite.
mkdir "$tmp/x"
unpack | tar -x -k --no-same-owner --no-same-permissions -f - -C "$tmp/x" 2>"$tmp/why" ||
	fail "extracting $name failed (an entry appears twice?): $(cat "$tmp/why")"
cd "$tmp/x/$id"
[ -z "$(find . ! -type f ! -type d)" ] || fail "extracted bag holds links or special files"
for f in bagit.txt bag-info.txt manifest-sha256.txt tagmanifest-sha256.txt \
	metadata/custody.jsonl metadata/items.json signatures/seal.dsse.json signatures/seal.pub; do
	[ -f "$f" ] || fail "$id/$f is missing"
done
[ -d data ] || fail "$id/data/ is missing"
printf 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n' | cmp -s - bagit.txt ||
	fail "bagit.txt is not exactly the BagIt 1.0 declaration"

# canon MANIFEST PREFIX prints "<sha256> <path>" per line, the hex in lower
# case and the escapes in upper case (%25, %0D, %0A); any other line, other
# escape, unclean path, path outside PREFIX or repeated path fails.
canon() {
	awk -v m="$1" -v prefix="$2" '
	function bad(why) { print m " line " NR ": " why; failed = 1; exit 1 }
	{ sub(/\r$/, "") }
	$0 == "" { next }
	{
		hex = substr($0, 1, 64); s = substr($0, 65)
		if (hex !~ /^[0-9a-fA-F]+$/ || length(hex) != 64 || s !~ /^[ \t]+[^ \t]/) bad("not \"<sha256>  <path>\"")
		sub(/^[ \t]+/, "", s); p = ""
		while ((i = index(s, "%")) > 0) {
			e = toupper(substr(s, i + 1, 2))
			if (e != "25" && e != "0D" && e != "0A") bad("bad percent-encoding in " s)
			p = p substr(s, 1, i - 1) "%" e; s = substr(s, i + 3)
		}
		p = p s
		if (("/" p "/") ~ /\/\.?\.?\// || (prefix != "" && index(p, prefix) != 1)) bad("path " p " is not a clean path under " prefix)
		if (p in seen) bad(p " is listed twice")
		seen[p]; print tolower(hex) " " p
	}
	END { if (failed) exit 1 }' "$1" >"$tmp/$1.canon" 2>&1 || fail "$(cat "$tmp/$1.canon")"
}

# compare MANIFEST prints "<bytes>.<files>" of the files hashed into
# $tmp/have after checking them against MANIFEST in both directions.
compare() {
	awk -v m="$1" '
	function bad(why) { print why; failed = 1; exit 1 }
	NR == FNR { want[substr($0, 66)] = substr($0, 1, 64); next }
	{
		h = substr($0, 1, 64); r = substr($0, 66); size = r; sub(/ .*/, "", size); p = substr(r, length(size) + 2)
		if (!(p in want)) bad(p " is in the bag but not in " m " (added after sealing?)")
		if (want[p] != h) bad(p " has sha256 " h "; " m " says " want[p])
		delete want[p]; bytes += size; files++
	}
	END {
		if (failed) exit 1
		for (p in want) { print p " is listed in " m " but missing from the bag"; exit 1 }
		printf "%.0f.%d\n", bytes, files
	}' "$tmp/$1.canon" "$tmp/have" >"$tmp/why" || fail "$(cat "$tmp/why")"
	cat "$tmp/why"
}

label() { sed -n "s/^$1: *//p" bag-info.txt | head -n 1 | tr -d '\r'; }

# 4. Payload: every file under data/ is in the manifest and every manifest
#    line has its file (both directions), every sha256 matches, and
#    Payload-Oxum (bytes.files) is right.
canon manifest-sha256.txt data/
find data -type f -exec sh "$self" --hash {} + >"$tmp/have"
oxum=$(compare manifest-sha256.txt)
ok "payload: ${oxum#*.} files, complete, every sha256 matches manifest-sha256.txt"
[ "$(label Payload-Oxum)" = "$oxum" ] || fail "bag-info.txt Payload-Oxum is '$(label Payload-Oxum)'; the payload is $oxum"
ok "Payload-Oxum $oxum"

# 5. Tag files: every file outside data/, signatures/ and the tag manifest
#    itself is listed in tagmanifest-sha256.txt and matches.
canon tagmanifest-sha256.txt ''
find . -type f ! -path './data/*' ! -path './signatures/*' ! -path './tagmanifest-*' \
	-exec sh "$self" --hash {} + >"$tmp/have"
tags=$(compare tagmanifest-sha256.txt)
ok "tag files: ${tags#*.} files match tagmanifest-sha256.txt"
# The incident report, when the seal carries it, is two of those tag files:
# checked above, and signed through the tag manifest (step 6). It was made
# just before sealing, so it never shows the "sealed" custody record.
report=
for f in metadata/report.json metadata/report.html; do
	[ ! -f "$f" ] || report="$report $f"
done
[ -z "$report" ] || ok "incident report in the bag:$report (tag files, signed through the tag manifest)"

# 6. The seal: the DSSE signature over PAE(payloadType, statement), then the
#    statement against the bag.
# keyid FILE prints the key ID of an Ed25519 PEM public key (the first 32
# hex digits of the sha256 of the raw key) and keeps it as keys/ID.pem, the
# keys custody records may be signed with.
mkdir "$tmp/keys"
keyid() {
	openssl pkey -pubin -in "$1" -outform DER >"$tmp/key.der" 2>/dev/null || fail "$1 is not a PEM public key"
	# An Ed25519 SubjectPublicKeyInfo is this 12-byte prefix and the raw 32-byte key.
	[ "$(od -An -tx1 -N12 "$tmp/key.der" | tr -d ' \n')" = 302a300506032b6570032100 ] &&
		[ "$(wc -c <"$tmp/key.der")" -eq 44 ] || fail "$1 is not an Ed25519 public key"
	k=$(tail -c 32 "$tmp/key.der" | sha256sum | cut -c 1-32)
	cp -- "$1" "$tmp/keys/$k.pem"
	printf '%s\n' "$k"
}
for c in "$@"; do keyid "$c" >/dev/null; done
keyfile=${pub:-$PWD/signatures/seal.pub}
keyid=$(keyid "$keyfile")
if [ -n "$pub" ]; then trust="pinned: $(basename "$pub")"; else trust="NOT pinned: the key inside the bag; compare its ID with the examiner's published key"; fi

dsse=signatures/seal.dsse.json
ptype=$(jq -er .payloadType "$dsse") || fail "$dsse is not a DSSE envelope"
jq -er .payload "$dsse" | openssl base64 -d -A >"$tmp/statement.json" || fail "$dsse: payload is not base64"
{
	printf 'DSSEv1 %d %s %d ' "${#ptype}" "$ptype" "$(wc -c <"$tmp/statement.json")"
	cat "$tmp/statement.json"
} >"$tmp/pae"
jq -r '.signatures[]?.sig' "$dsse" >"$tmp/sigs"
signed=
while IFS= read -r s; do
	printf '%s' "$s" | openssl base64 -d -A >"$tmp/sig"
	if openssl pkeyutl -verify -pubin -inkey "$keyfile" -rawin -in "$tmp/pae" -sigfile "$tmp/sig" >/dev/null 2>&1; then
		signed=1
		break
	fi
done <"$tmp/sigs"
[ -n "$signed" ] || fail "the seal signature does not verify with key $keyid ($trust)"
# seal.pub is what a lab without the published key would use: it must be the signer.
openssl pkey -pubin -in signatures/seal.pub -outform DER 2>/dev/null | cmp -s - "$tmp/key.der" ||
	fail "signatures/seal.pub is not the key that signed the seal ($keyid)"
ok "seal signature verifies with key $keyid ($trust)"

[ "$ptype" = application/vnd.in-toto+json ] || fail "$dsse: payloadType is $ptype"
head=$(label Custody-Log-Head) count=$(label Custody-Log-Records)
jq -e --arg tm "$(sha tagmanifest-sha256.txt)" '._type == "https://in-toto.io/Statement/v1"
	and .predicateType == "https://eksir.dev/attestations/seal/v1"
	and (.subject | length) == 1 and .subject[0].name == "tagmanifest-sha256.txt"
	and .subject[0].digest.sha256 == $tm' "$tmp/statement.json" >/dev/null ||
	fail "the signed statement's subject is not this tagmanifest-sha256.txt"
jq -e --arg m "$(sha manifest-sha256.txt)" --arg oxum "$oxum" --arg head "$head" --arg n "$count" \
	--arg ext "$(label External-Identifier)" --arg id "$id" '.predicate
	| .manifestSha256 == $m and .payloadOxum == $oxum and .custodyLogHead == $head
	and (.custodyLogRecords | tostring) == $n and .incident == $ext and .bag == $id' "$tmp/statement.json" >/dev/null ||
	fail "the signed statement disagrees with manifest-sha256.txt, bag-info.txt or the folder name"
ok "signed statement: subject tagmanifest-sha256.txt, manifest, Payload-Oxum, custody head and bag agree"

# chain FILE: replays FILE's records from the head in $n (records so far) and
# $prev (sha256 of the last line): seq, prev link, key and Ed25519 signature
# of every record, over the line without its final ,"sig":"..." member.
chain() {
	[ ! -s "$1" ] || [ "$(tail -c 1 "$1" | od -An -tx1 | tr -d ' \n')" = 0a ] ||
		fail "$2: the last record is cut off (no newline)"
	while IFS= read -r line; do
		n=$((n + 1))
		at="$2 record $n"
		case $line in *',"sig":"'*'"}') ;; *) fail "$at: no signature at the end" ;; esac
		body=${line%',"sig":"'*} sig=${line##*',"sig":"'}
		sig=${sig%'"}'}
		printf '%s}' "$body" >"$tmp/rec"
		printf '%s' "$sig" | openssl base64 -d -A >"$tmp/rec.sig"
		f=$(printf '%s' "$line" | jq -r '"\(.seq) \(.prev) \(.key)"' 2>/dev/null) || fail "$at: not JSON"
		case $f in
		"$n $prev "*) [ -f "$tmp/keys/${f##* }.pem" ] || fail "$at: signed by key ${f##* }, neither the sealer's $keyid nor a custodian's given" ;;
		"$n "*) fail "$at: prev is not the sha256 of the record before (the chain was altered)" ;;
		*) fail "$at: seq ${f%% *} where $n was expected (a record was removed, inserted or reordered)" ;;
		esac
		openssl pkeyutl -verify -pubin -inkey "$tmp/keys/${f##* }.pem" -rawin -in "$tmp/rec" -sigfile "$tmp/rec.sig" >/dev/null 2>&1 ||
			fail "$at: signature does not verify (the record was edited)"
		prev=$(printf '%s' "$line" | sha256sum)
		prev=${prev%% *}
	done <"$1"
}

# 7. The custody chain in the bag: whole, ending where bag-info.txt (and so
#    the signed statement) says, every acquisition matching the manifest,
#    and the last "sealed" record naming this manifest.
n=0 prev=0000000000000000000000000000000000000000000000000000000000000000
chain metadata/custody.jsonl metadata/custody.jsonl
[ "$n $prev" = "$count $head" ] ||
	fail "metadata/custody.jsonl ends at record $n ($prev); bag-info.txt says $count ($head): records cut off or added"
jq -r 'select(.action == "acquired" or .action == "recovered") | .items // {} | to_entries[]
	| "\(.value) \(.key | gsub("%"; "%25") | gsub("\r"; "%0D") | gsub("\n"; "%0A"))"' metadata/custody.jsonl >"$tmp/acquired"
awk 'NR == FNR { m[$0]; next } !($0 in m) { print substr($0, 66) " (sha256 " substr($0, 1, 64) ")"; exit 1 }' \
	"$tmp/manifest-sha256.txt.canon" "$tmp/acquired" >"$tmp/why" ||
	fail "custody says $(cat "$tmp/why") was acquired; the manifest disagrees"
[ "$(jq -rs '[.[] | select(.action == "sealed")] | last | .items["manifest-sha256.txt"] // ""' metadata/custody.jsonl)" = "$(sha manifest-sha256.txt)" ] ||
	fail "metadata/custody.jsonl has no sealed record naming this manifest-sha256.txt"
ok "custody chain in the bag: $n records, links and signatures verify"

# 8. Hand-overs after sealing: they continue the sealed chain and each names
#    this archive's sha256.
log=$archive.custody.jsonl
if [ -f "$log" ]; then
	sealed=$n
	chain "$log" "$name.custody.jsonl"
	jq -r '.details.archive_sha256 // "none"' "$log" |
		awk -v s="$sum" -v k="$sealed" '$0 != s { print "record " k + NR " names archive sha256 " $0; exit 1 }' >"$tmp/why" ||
		fail "$name.custody.jsonl $(cat "$tmp/why"), not this archive's $sum"
	ok "hand-over log: $((n - sealed)) record(s) continue the chain and name this archive"
	ok "custody head: record $n, $prev (a dropped last record is only detectable against a copy of this head kept elsewhere)"
else
	ok "no $name.custody.jsonl beside the archive: no hand-overs recorded"
fi
echo "PASS: $name verified; signer key $keyid ($trust)"
