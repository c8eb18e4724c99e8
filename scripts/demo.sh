#!/usr/bin/env bash
# `make demo`: plays the bundled sample through kithara's stream API, the way a decoder would,
# and checks that every byte came out exactly — from the start and after a seek.
set -euo pipefail
build=${1:-build/release}
root=$(cd "$(dirname "$0")/.." && pwd)
tool="$build/tools/kithara"
sample="$root/tests/fixtures/sample.mp3"
work=$(mktemp -d "${TMPDIR:-/tmp}/kithara-demo-XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== kithara info $sample"
"$tool" info "$sample"

echo "== kithara cat (whole stream)"
"$tool" cat "file://$sample" > "$work/out.mp3"
want=$(sha256sum < "$sample" | cut -d' ' -f1)
got=$(sha256sum < "$work/out.mp3" | cut -d' ' -f1)
[ "$want" = "$got" ] || { echo "demo: bytes differ from the sample" >&2; exit 1; }
echo "   $(stat -c %s "$work/out.mp3") bytes, sha256 $got matches the sample"

half=$(( $(stat -c %s "$sample") / 2 ))
echo "== kithara cat --start $half (seek into the middle)"
"$tool" cat --start "$half" "$sample" > "$work/tail.mp3"
cmp <(tail -c +"$((half + 1))" "$sample") "$work/tail.mp3"
echo "   $(stat -c %s "$work/tail.mp3") bytes from offset $half match the sample"
echo "demo: OK"
