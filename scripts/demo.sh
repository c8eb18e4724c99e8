#!/usr/bin/env bash
# `make demo`: the main job on the bundled samples. A loopback HTTP server serves
# tests/fixtures: kithara plays sample.mp3 (a progressive file) and hls/ts/master.m3u8 (an HLS
# ladder of three variants) through the downloader into a fresh cache and checks every byte,
# seeks into the middle, decodes the ladder to WAV files (comparing the PCM with ffmpeg's own
# decode), plays a few seconds of the server's radio station and of its live HLS stream, then
# stops the server and plays both files again offline from the cache alone.
set -euo pipefail
build=${1:-build/release}
root=$(cd "$(dirname "$0")/.." && pwd)
tool="$build/tools/kithara"
server="$build/tests/server/kithara-testserver"
sample="$root/tests/fixtures/sample.mp3"
work=$(mktemp -d "${TMPDIR:-/tmp}/kithara-demo-XXXXXX")
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Serve the fixtures on 127.0.0.1 at a free port, throttled like a modest network link.
"$server" "$root/tests/fixtures" --port 0 --rate 400000 > "$work/server.out" &
server_pid=$!
for _ in $(seq 100); do
  [ -s "$work/server.out" ] && break
  sleep 0.05
done
base=$(head -n 1 "$work/server.out")
[ -n "$base" ] || { echo "demo: the loopback server did not start" >&2; exit 1; }
url="$base/sample.mp3"
cache="$work/cache"
want=$(sha256sum < "$sample" | cut -d' ' -f1)

echo "== kithara info $url"
"$tool" info --cache-dir "$cache" "$url"

echo "== kithara cat $url (first play: network -> cache -> stdout)"
start=$(date +%s.%N)
"$tool" cat --cache-dir "$cache" "$url" > "$work/out.mp3"
took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
got=$(sha256sum < "$work/out.mp3" | cut -d' ' -f1)
[ "$want" = "$got" ] || { echo "demo: bytes differ from the sample" >&2; exit 1; }
echo "   $(stat -c %s "$work/out.mp3") bytes in ${took}s, sha256 $got matches the sample"

half=$(( $(stat -c %s "$sample") / 2 ))
echo "== kithara cat --start $half (seek into the middle)"
"$tool" cat --cache-dir "$cache" --start "$half" "$url" > "$work/tail.mp3"
cmp <(tail -c +"$((half + 1))" "$sample") "$work/tail.mp3"
echo "   $(stat -c %s "$work/tail.mp3") bytes from offset $half match the sample"

hls="$base/hls/ts/master.m3u8"
hls_dir="$root/tests/fixtures/hls/ts/v256"
hls_want=$(grep -v '^#' "$hls_dir/index.m3u8" | sed "s|^|$hls_dir/|" | xargs cat | sha256sum | cut -d' ' -f1)
echo "== kithara info $hls"
"$tool" info --cache-dir "$cache" "$hls"
echo "== kithara cat --variant 2 $hls (the top variant, fixed)"
"$tool" cat --cache-dir "$cache" --variant 2 "$hls" > "$work/hls.ts"
got=$(sha256sum < "$work/hls.ts" | cut -d' ' -f1)
[ "$hls_want" = "$got" ] || { echo "demo: HLS bytes differ from the variant's segments" >&2; exit 1; }
echo "   $(stat -c %s "$work/hls.ts") bytes, sha256 $got matches the variant's segments"
echo "== kithara cat --variant 2 --start-time 10 $hls (seek by time into cached audio)"
"$tool" cat --cache-dir "$cache" --variant 2 --start-time 10 "$hls" > "$work/hls-10s.ts" \
  2> "$work/hls-10s.txt"
cat "$work/hls-10s.txt"
seg=$(sed -n 's/.*: segment \([0-9]*\),.*/\1/p' "$work/hls-10s.txt")
grep -v -e '^#' -e '^$' "$hls_dir/index.m3u8" | tail -n +"$((seg + 1))" | sed "s|^|$hls_dir/|" |
  xargs cat > "$work/from-segment.ts"
cmp "$work/from-segment.ts" "$work/hls-10s.ts" ||
  { echo "demo: the bytes from segment $seg differ from the variant's segments" >&2; exit 1; }
echo "   $(stat -c %s "$work/hls-10s.ts") bytes: segment $seg to the end, as the variant's files"
echo "== kithara cat $hls (ABR chooses; switches are reported)"
"$tool" cat --cache-dir "$cache" "$hls" > "$work/hls-abr.ts"
echo "   $(stat -c %s "$work/hls-abr.ts") bytes"

echo "== kithara decode --variant 2 -o hls.wav $hls (PCM through FFmpeg, to a WAV file)"
"$tool" decode --cache-dir "$cache" --variant 2 -o "$work/hls.wav" "$hls"
grep -v '^#' "$hls_dir/index.m3u8" | sed "s|^|$hls_dir/|" | xargs cat > "$work/segments.ts"
ffmpeg -v error -i "$work/segments.ts" -f s16le - > "$work/ffmpeg.pcm"
cmp <(tail -c +45 "$work/hls.wav") "$work/ffmpeg.pcm" ||
  { echo "demo: the decoded PCM differs from ffmpeg's decode of the same segments" >&2; exit 1; }
echo "   $(( $(stat -c %s "$work/ffmpeg.pcm") / 4 )) stereo frames, equal to ffmpeg's own decode"
echo "== kithara decode --stats $hls (ABR chooses; switches are hidden from the PCM)"
"$tool" decode --cache-dir "$cache" --stats -o "$work/hls-abr.wav" "$hls"

echo "== kithara info $base/radio (an endless Icecast-style station)"
"$tool" info --cache-dir "$cache" "$base/radio"
echo "== kithara cat --duration 3 $base/radio (three seconds of radio; titles on stderr)"
"$tool" cat --duration 3 --cache-dir "$cache" "$base/radio" > "$work/radio.out"
echo "   $(wc -c < "$work/radio.out") bytes: 3 s at the station's 128 kbit/s"

live="$base/live/master.m3u8"
echo "== kithara info $live (a live HLS stream: a sliding window of 2 s segments)"
"$tool" info --cache-dir "$cache" "$live"
echo "== kithara cat --duration 4 $live (four seconds from near the live edge)"
"$tool" cat --duration 4 --cache-dir "$cache" "$live" > "$work/live.ts"
[ "$(stat -c %s "$work/live.ts")" -eq 64000 ] ||
  { echo "demo: 4 s of live HLS at 128 kbit/s should be 64000 bytes" >&2; exit 1; }
[ "$(od -An -v -tx1 -w188 "$work/live.ts" | awk '{print $1}' | sort -u)" = 47 ] ||
  { echo "demo: the live bytes are not whole MPEG-TS packets" >&2; exit 1; }
echo "   64000 bytes: 4 s at the stream's 128 kbit/s, every 188-byte packet in place"

echo "== stopping the server; kithara cat --offline (cache only)"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
"$tool" cat --cache-dir "$cache" --offline "$url" > "$work/offline.mp3"
got=$(sha256sum < "$work/offline.mp3" | cut -d' ' -f1)
[ "$want" = "$got" ] || { echo "demo: offline bytes differ from the sample" >&2; exit 1; }
echo "   offline replay: sha256 $got matches the sample"
"$tool" cat --cache-dir "$cache" --offline --variant 2 "$hls" > "$work/hls-offline.ts"
got=$(sha256sum < "$work/hls-offline.ts" | cut -d' ' -f1)
[ "$hls_want" = "$got" ] || { echo "demo: offline HLS bytes differ" >&2; exit 1; }
echo "   offline HLS replay: sha256 $got matches the variant's segments"
if "$tool" cat --cache-dir "$cache" --offline "$base/never-played.mp3" > /dev/null 2>"$work/miss.txt"; then
  echo "demo: an uncached URL played offline" >&2; exit 1
fi
echo "   an uncached URL offline: $(cat "$work/miss.txt")"

echo "== kithara cache ls"
"$tool" cache --cache-dir "$cache" ls
echo "demo: OK"
