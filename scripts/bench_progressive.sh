#!/usr/bin/env bash
# First play of a 64 MiB file over loopback: `kithara cat` into an empty cache against
# `curl -o FILE` of the same URL from the same server (best of 3 each; target ratio <= 1.1).
set -euo pipefail
build=${1:-build/release}
tool="$build/tools/kithara"
server="$build/tests/server/kithara-testserver"
work=$(mktemp -d "${TMPDIR:-/tmp}/kithara-bench-XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/www"
head -c $((64 * 1024 * 1024)) /dev/urandom > "$work/www/track.flac"
"$server" "$work/www" --port 0 > "$work/url" &
pid=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.05; done
url="$(head -n 1 "$work/url")/track.flac"

now() { date +%s.%N; }
best() { sort -g | head -n 1; }
curl_times=() kith_times=()
for i in 1 2 3; do
  rm -f "$work/curl.out"
  a=$(now); curl -s -o "$work/curl.out" "$url"; b=$(now)
  curl_times+=("$(awk -v a="$a" -v b="$b" 'BEGIN { print b - a }')")
  rm -rf "$work/cache"
  a=$(now); "$tool" cat --cache-dir "$work/cache" "$url" > /dev/null; b=$(now)
  kith_times+=("$(awk -v a="$a" -v b="$b" 'BEGIN { print b - a }')")
done
cmp -s "$work/curl.out" "$work/www/track.flac" || { echo "curl copy differs" >&2; exit 1; }
c=$(printf '%s\n' "${curl_times[@]}" | best)
k=$(printf '%s\n' "${kith_times[@]}" | best)
awk -v c="$c" -v k="$k" 'BEGIN {
  r = k / c
  printf "first play of 64 MiB over loopback: curl -o %.3f s, kithara cat (empty cache) %.3f s, ratio %.2f (target <= 1.1: %s)\n", c, k, r, (r <= 1.1 ? "PASS" : "FAIL")
}'
