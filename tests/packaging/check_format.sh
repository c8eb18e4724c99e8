#!/usr/bin/env bash
# check_format.sh SOURCE_DIR — every C file the project tracks is formatted as .clang-format
# says (clang-format --dry-run --Werror); a file that is not fails the suite with its name.
set -euo pipefail
cd "$1"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files '*.c' '*.h')
else
  files=$(find src include tools tests bench fuzz examples -name '*.[ch]')
fi
echo "$files" | xargs clang-format --dry-run --Werror
echo "check_format: $(echo "$files" | wc -l) files are formatted"
