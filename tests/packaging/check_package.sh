#!/usr/bin/env bash
# check_package.sh BUILD_DIR SOURCE_DIR — what someone who installs kithara gets: an install
# that still works after it is moved (the .pc file finds its prefix), the README's examples
# compiled against it through pkg-config and run, shared and static, every header compiling on
# its own, a static archive that defines no symbol outside kth_, and the man page. Exits
# non-zero with a message on the first thing that is wrong.
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/kithara-package-XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "check_package: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$work/first" >/dev/null
mv "$work/first" "$work/moved" # the installation must not remember where it was made
prefix="$work/moved"
pc=$(find "$prefix" -name kithara.pc | head -n 1)
[ -n "$pc" ] || fail "no kithara.pc installed"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir kithara)
[ -f "$libdir/libkithara.a" ] || fail "pkg-config's libdir $libdir does not hold libkithara.a"
[ -f "$prefix/include/kithara/kithara.h" ] || fail "headers not installed"
[ -f "$prefix/share/man/man1/kithara.1" ] || fail "the man page kithara(1) is not installed"
pkg-config --static --libs kithara | grep -q -- '-lm' || fail "Libs.private lacks -lm"

# Each of the README's C blocks is the example its first line names, word for word, and the
# README shows the decoder's example before the stream's.
awk -v dir="$work" '/^```c$/{on=1; n++; next} /^```$/{on=0} on {print > (dir "/readme-" n ".c")}' \
  "$src/README.md"
names=
for block in "$work"/readme-*.c; do
  name=$(sed -n '1s|^/\* \([a-z_]*\.c\):.*|\1|p' "$block")
  [ -n "$name" ] || fail "a C block of the README does not name its example on its first line"
  cmp -s "$block" "$src/examples/$name" || fail "the README's $name differs from examples/$name"
  names="$names $name"
done
[ "$names" = " decode_to_wav.c read_stream.c" ] ||
  fail "the README shows${names:- no example}; expected decode_to_wav.c, then read_stream.c"

# Compiled against the installation, shared and static, it copies a file byte for byte.
cc -std=c11 -Wall -Werror -o "$work/shared" "$src/examples/read_stream.c" \
  $(pkg-config --cflags --libs kithara)
cc -std=c11 -Wall -Werror -o "$work/static" "$src/examples/read_stream.c" \
  $(pkg-config --cflags kithara) "$libdir/libkithara.a" \
  $(pkg-config --libs $(pkg-config --print-requires-private kithara)) -lpthread -lm
sample="$src/tests/fixtures/sample.mp3"
LD_LIBRARY_PATH="$libdir" "$work/shared" "$sample" > "$work/out-shared"
"$work/static" "$sample" > "$work/out-static"
cmp "$sample" "$work/out-shared" || fail "the shared build's bytes differ"
cmp "$sample" "$work/out-static" || fail "the static build's bytes differ"

# The decoder's example, built the same way, decodes the sample to its whole length: 352,800
# frames once the encoder delay and padding the file declares are trimmed.
cc -std=c11 -Wall -Werror -o "$work/decode" "$src/examples/decode_to_wav.c" \
  $(pkg-config --cflags --libs kithara)
LD_LIBRARY_PATH="$libdir" "$work/decode" "$sample" "$work/out.wav" > "$work/decode.out"
[ "$(cat "$work/decode.out")" = "352800 frames" ] ||
  fail "decode_to_wav printed '$(cat "$work/decode.out")', expected '352800 frames'"
# The sample is mono, so the WAV holds 2 bytes a frame after its 44-byte header.
[ "$(stat -c %s "$work/out.wav")" = $((44 + 352800 * 2)) ] || fail "out.wav has the wrong size"

# Each installed header compiles on its own, as C11 and as C++ (the headers promise both).
for h in "$prefix"/include/kithara/*.h; do
  printf '#include <kithara/%s>\n' "$(basename "$h")" > "$work/one.c"
  cc -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$prefix/include" "$work/one.c" ||
    fail "$(basename "$h") does not compile on its own as C11"
  c++ -x c++ -std=c++11 -Wall -Werror -fsyntax-only -I"$prefix/include" "$work/one.c" ||
    fail "$(basename "$h") does not compile on its own as C++"
done

# Like the shared library, the static archive defines only kth_ symbols.
leaked=$(nm -g --defined-only "$libdir/libkithara.a" | awk 'NF == 3 && $3 !~ /^kth_/ {print $3}')
[ -z "$leaked" ] || fail "libkithara.a defines non-kth_ symbols: $(echo $leaked | head -c 300)"
shared_leaked=$(nm -D --defined-only "$libdir/libkithara.so" |
  awk 'NF == 3 && $3 !~ /^kth_/ {print $3}')
[ -z "$shared_leaked" ] || fail "libkithara.so exports non-kth_ symbols: $shared_leaked"
echo "check_package: install, relocation, pkg-config, headers, examples, symbols and man page are right"
