#!/usr/bin/env bash
# Downloads a Hugging Face snapshot into weights/NAME/ with resume and size/checksum checks.
#   weights/download.sh musicgen-small          # or -medium, -large, -melody, -melody-large,
#                                               # -stereo-small/-medium/-large/-melody/-melody-large,
#                                               # encodec_24khz, encodec_32khz, encodec_48khz
# Only the files libmusicgen reads are fetched (config, safetensors, tokenizer); the PyTorch .bin
# duplicates are skipped. Re-running resumes partial files and skips complete, verified ones.
set -euo pipefail

HUB=${HF_ENDPOINT:-https://huggingface.co}
NAME=${1:-}
if [ -z "$NAME" ] || [ "$NAME" = "-h" ] || [ "$NAME" = "--help" ]; then
  sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
case "$NAME" in
  musicgen-small|musicgen-medium|musicgen-large|musicgen-melody|musicgen-melody-large|\
  musicgen-stereo-small|musicgen-stereo-medium|musicgen-stereo-large|musicgen-stereo-melody|\
  musicgen-stereo-melody-large|encodec_24khz|encodec_32khz|encodec_48khz) REPO="facebook/$NAME" ;;
  */*) REPO="$NAME"; NAME=${NAME##*/} ;;   # any other repo in the same layout: owner/name
  *) echo "download.sh: unknown model '$NAME' (run with --help for the list)" >&2; exit 2 ;;
esac
for tool in curl sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "download.sh: needs $tool" >&2; exit 1; }
done

DEST="$(cd "$(dirname "$0")" && pwd)/$NAME"

# Fail fast when offline instead of hanging on each file.
if ! curl -sS --max-time 15 -o /dev/null "$HUB/api/models/$REPO"; then
  echo "download.sh: cannot reach $HUB (offline?). Nothing was downloaded; copy a snapshot folder into $DEST instead." >&2
  exit 1
fi

# File list with sizes and (for large files) sha256, from the hub's tree API.
LIST=$(curl -sSf --max-time 60 "$HUB/api/models/$REPO/tree/main") || {
  echo "download.sh: could not list $REPO (does it exist? gated models need HF_TOKEN)" >&2; exit 1; }
FILES=$(printf '%s' "$LIST" | python3 -c '
import json, sys
keep = (".json", ".safetensors", "spiece.model")
for e in json.load(sys.stdin):
    p = e.get("path", "")
    if e.get("type") != "file" or not p.endswith(keep) or p.endswith(".fp32.json"):
        continue
    lfs = e.get("lfs") or {}
    print(p, e.get("size", 0), lfs.get("oid", "-"))
')
[ -n "$FILES" ] || { echo "download.sh: $REPO lists no files libmusicgen can use" >&2; exit 1; }

mkdir -p "$DEST"
AUTH=()
[ -n "${HF_TOKEN:-}" ] && AUTH=(-H "Authorization: Bearer $HF_TOKEN")
while read -r path size sha; do
  out="$DEST/$path"
  if [ -f "$out" ] && [ "$(stat -c %s "$out")" = "$size" ]; then
    echo "ok        $path"
    continue
  fi
  echo "fetching  $path ($size bytes)"
  curl -sSfL "${AUTH[@]}" -C - --retry 3 -o "$out.part" "$HUB/$REPO/resolve/main/$path"
  got=$(stat -c %s "$out.part")
  if [ "$got" != "$size" ]; then
    echo "download.sh: $path has $got bytes, expected $size; run again to resume" >&2; exit 1
  fi
  if [ "$sha" != "-" ] && [ "$(sha256sum "$out.part" | cut -d' ' -f1)" != "$sha" ]; then
    rm -f "$out.part"
    echo "download.sh: $path failed its sha256 check and was removed; run again" >&2; exit 1
  fi
  mv "$out.part" "$out"
done <<< "$FILES"
echo "done: $DEST"
