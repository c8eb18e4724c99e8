#!/usr/bin/env bash
# Compares the downloader with curl over loopback, against one kithara-testserver:
#   - one 256 MiB body: `curl -s -o /dev/null URL` against bench_download's fetch into a
#     file-backed resource (target: ratio >= 0.9);
#   - 2000 bodies of 20 KiB: `curl --parallel --parallel-max 6` against bench_download with 6 in
#     flight (target: ratio >= 1.0).
# Each figure is the best of RUNS runs (default 3). Usage: bench_download.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build/release}
runs=${RUNS:-3}
server="$build/tests/server/kithara-testserver"
bench="$build/bench/bench_download"
for exe in "$server" "$bench"; do
  [ -x "$exe" ] || { echo "bench_download.sh: $exe not built" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "bench_download.sh: curl not installed" >&2; exit 1; }

work=$(mktemp -d -t kithara-bench-XXXXXX)
srv_pid=
cleanup() {
  [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/root"
"$server" "$work/root" > "$work/server.out" &
srv_pid=$!
for _ in $(seq 100); do
  [ -s "$work/server.out" ] && break
  sleep 0.05
done
base=$(head -n1 "$work/server.out")
[ -n "$base" ] || { echo "bench_download.sh: the test server did not start" >&2; exit 1; }

now() { date +%s.%N; }
best() { sort -g | tail -n1; }

# curl: one 256 MiB body to /dev/null.
big_url="$base/synth/256m"
for _ in $(seq "$runs"); do
  t0=$(now)
  curl -s --noproxy '*' -o /dev/null "$big_url"
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { print 268435456 / (b - a) / 1e6 }'
done | best > "$work/curl_big"

# curl: 2000 bodies of 20 KiB, 6 in flight.
: > "$work/urls.cfg"
for i in $(seq 0 1999); do
  printf 'url = "%s/synth/20k?seed=%d"\noutput = "/dev/null"\n' "$base" "$i" >> "$work/urls.cfg"
done
for _ in $(seq "$runs"); do
  t0=$(now)
  curl -s --no-progress-meter --noproxy '*' --parallel --parallel-max 6 -K "$work/urls.cfg"
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { print 2000 / (b - a) }'
done | best > "$work/curl_small"

# kithara, against the same server.
"$bench" "$base" --runs "$runs" > "$work/kithara" 2> "$work/kithara.err" || {
  cat "$work/kithara.err" >&2; exit 1; }
k_big=$(sed -n 's/^kithara_256MiB_MBps=//p' "$work/kithara")
k_small=$(sed -n 's/^kithara_20KiB_requests_per_s=//p' "$work/kithara")
k_discard=$(sed -n 's/^kithara_256MiB_discard_MBps=//p' "$work/kithara")
c_big=$(cat "$work/curl_big")
c_small=$(cat "$work/curl_small")

echo "machine: $(nproc) cores (shared: figures are noisy)"
printf '256 MiB body    curl: %8.1f MB/s   kithara: %8.1f MB/s   ratio %.2f (target >= 0.90)\n' \
  "$c_big" "$k_big" "$(awk -v k="$k_big" -v c="$c_big" 'BEGIN { print k / c }')"
printf '  (same body, bytes dropped instead of stored: kithara %.1f MB/s, ratio %.2f)\n' \
  "$k_discard" "$(awk -v k="$k_discard" -v c="$c_big" 'BEGIN { print k / c }')"
printf '2000 x 20 KiB   curl: %8.1f req/s  kithara: %8.1f req/s  ratio %.2f (target >= 1.00)\n' \
  "$c_small" "$k_small" "$(awk -v k="$k_small" -v c="$c_small" 'BEGIN { print k / c }')"
