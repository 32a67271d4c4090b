#!/usr/bin/env bash
# The shared library exports the C API and nothing else: every defined dynamic symbol of
# libmusicgen.so starts with musicgen_ or encodec_ (hidden visibility + api/exports.map), and the
# API's entry points are there.
set -euo pipefail
LIB=$1
[ -f "$LIB" ] || { echo "no library at $LIB"; exit 1; }
syms=$(nm -D --defined-only "$LIB" | awk 'NF >= 3 { print $3 }')
# Matched from here-strings, not `printf | grep -q`: bash's printf writes a line at a time, so a grep
# -q that finds its line and exits can kill printf with SIGPIPE, and pipefail then reports a symbol
# that is there as missing. The likely cause of one such report in a loaded ASan run, where the same
# library passed every rerun.
other=$(grep -Ev '^(musicgen_|encodec_)' <<<"$syms" || true)
if [ -n "$other" ]; then
  echo "symbols outside the C API exported by $LIB:"
  printf '%s\n' "$other" | head -n 20
  exit 1
fi
for s in musicgen_model_load musicgen_session_create musicgen_session_generate musicgen_last_error \
         encodec_model_load encodec_session_encode encodec_last_error; do
  grep -qx "$s" <<<"$syms" || { echo "$s is not exported"; exit 1; }
done
echo "$(printf '%s\n' "$syms" | wc -l) exported symbols, all C API: 1 passed, 0 failed"
