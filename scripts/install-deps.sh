#!/usr/bin/env bash
# Installs the Debian packages kithara needs to build, test and run its demo — only those that
# are missing, so a machine that has them is left untouched and no network is used. nginx and the
# openssl program serve the suite's HTTPS and HTTP/2 tests (a throwaway CA per test run); the
# tests run their own nginx, never the system service Debian's package sets up where services run.
# Extra package names given as arguments (`install-deps.sh doxygen` for `make docs`) join the list.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ca-certificates curl
  libcurl4-openssl-dev libssl-dev libsqlite3-dev
  libcmocka-dev libmicrohttpd-dev clang-format
  nginx openssl
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev ffmpeg
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
