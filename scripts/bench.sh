#!/usr/bin/env bash
# `make bench`: runs every benchmark program and script and prints their figures. Not part of
# `make test`: shared machines are noisy, so figures are read by people, not asserted.
set -uo pipefail
build=${1:-build/release}
root=$(cd "$(dirname "$0")/.." && pwd)
echo "machine: $(nproc) cores"
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b"
done
for s in "$root"/scripts/bench_*.sh; do
  [ -x "$s" ] || continue
  echo "== $(basename "$s")"
  "$s" "$build"
done
