#!/usr/bin/env bash
# Downloads a Hugging Face snapshot into weights/NAME/ with resume and size/checksum checks.
#   weights/download.sh musicgen-small          # or -medium, -large, -melody, -melody-large,
#                                               # -stereo-small/-medium/-large/-melody/-melody-large,
#                                               # encodec_24khz, encodec_32khz, encodec_48khz
# Only the files libmusicgen reads are fetched (config, safetensors, tokenizer); the PyTorch .bin
# duplicates are skipped. Re-running resumes partial files and skips complete, verified ones.
#
# What it guarantees (tests/download_test.sh runs each case against a local imitation of the hub):
#   - A file appears under its real name only once it has the size the hub lists and, for large
#     (LFS) files, the sha256 the hub lists; until then it is NAME.part. A file already there under
#     its real name is checked the same way again (a wrong one is removed and fetched again).
#   - A cut connection leaves NAME.part: exit 1, "run again to resume"; the next run continues it
#     with an HTTP range request (and starts over when the server does not do ranges).
#   - A file that arrives short stays NAME.part (resumable); one that arrives too long or fails its
#     sha256 is deleted: exit 1 with what was wrong.
#   - HTTP 401/403: exit 1, "needs HF_TOKEN" (gated models; the token is sent when HF_TOKEN is set);
#     404: exit 1, the file or repository is not on the hub. Nothing is left under the real name.
# Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN, WEIGHTS_DIR (default: the
# folder of this script).
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

DEST="${WEIGHTS_DIR:-$(cd "$(dirname "$0")" && pwd)}/$NAME"
AUTH=()
[ -n "${HF_TOKEN:-}" ] && AUTH=(-H "Authorization: Bearer $HF_TOKEN")

# Why an HTTP status failed, in words.
http_reason() {
  case "$1" in
    401|403) echo "HTTP $1: access denied (gated or private: set HF_TOKEN to a token that may read $REPO)" ;;
    404) echo "HTTP 404: not found on $HUB (check the name)" ;;
    000) echo "the connection failed or was cut" ;;
    *) echo "HTTP $1" ;;
  esac
}

# Fail fast when offline instead of hanging on each file.
code=$(curl -sS --max-time 15 "${AUTH[@]}" -o /dev/null -w '%{http_code}' "$HUB/api/models/$REPO" 2>/dev/null) || code=000
if [ "$code" = 000 ]; then
  echo "download.sh: cannot reach $HUB (offline?). Nothing was downloaded; copy a snapshot folder into $DEST instead." >&2
  exit 1
fi

# File list with sizes and (for large files) sha256, from the hub's tree API.
LIST_FILE=$(mktemp)
trap 'rm -f "$LIST_FILE"' EXIT
code=$(curl -sS --max-time 60 "${AUTH[@]}" -o "$LIST_FILE" -w '%{http_code}' "$HUB/api/models/$REPO/tree/main" 2>/dev/null) || code=000
if [ "$code" != 200 ]; then
  echo "download.sh: could not list $REPO: $(http_reason "$code")" >&2; exit 1
fi
FILES=$(python3 -c '
import json, sys
keep = (".json", ".safetensors", "spiece.model")
for e in json.load(open(sys.argv[1])):
    p = e.get("path", "")
    if e.get("type") != "file" or not p.endswith(keep) or p.endswith(".fp32.json"):
        continue
    if "/" in p or p.startswith(".") or " " in p:
        continue  # files in subfolders, hidden or oddly named files are not read by libmusicgen
    lfs = e.get("lfs") or {}
    print(p, int(e.get("size", 0)), lfs.get("oid", "-"))
' "$LIST_FILE") || { echo "download.sh: the file list of $REPO is not the hub's JSON" >&2; exit 1; }
[ -n "$FILES" ] || { echo "download.sh: $REPO lists no files libmusicgen can use" >&2; exit 1; }

# True when `file` has `size` bytes and, when `sha` is not "-", that sha256.
verified() {
  local file=$1 size=$2 sha=$3
  [ -f "$file" ] && [ "$(stat -c %s "$file")" = "$size" ] || return 1
  [ "$sha" = "-" ] || [ "$(sha256sum "$file" | cut -d' ' -f1)" = "$sha" ]
}

mkdir -p "$DEST"
while read -r path size sha; do
  out="$DEST/$path"
  if verified "$out" "$size" "$sha"; then
    echo "ok        $path"
    continue
  fi
  # A wrong file under the real name (copied in, damaged, or from an older version of this script)
  # is not trusted: it is removed and fetched again from the start.
  rm -f "$out"
  part_size=$(stat -c %s "$out.part" 2>/dev/null || echo 0)
  if [ "$part_size" -gt "$size" ]; then rm -f "$out.part"; part_size=0; fi
  echo "fetching  $path ($size bytes$([ "$part_size" -gt 0 ] && echo ", resuming at $part_size"))"
  url="$HUB/$REPO/resolve/main/$path"
  rc=0
  code=$(curl -sSL "${AUTH[@]}" -C - --retry 3 -o "$out.part" -w '%{http_code}' "$url" 2>/dev/null) || rc=$?
  if [ "$rc" = 33 ]; then  # the server does not do ranges: start over
    rm -f "$out.part"
    rc=0
    code=$(curl -sSL "${AUTH[@]}" --retry 3 -o "$out.part" -w '%{http_code}' "$url" 2>/dev/null) || rc=$?
  fi
  case "$code" in
    200|206) ;;
    416) ;;  # range not satisfiable: the part is already whole; the size check below decides
    *)
      # An error page is not part of the file: drop what this request wrote.
      if [ "$code" != 000 ]; then
        if [ "$part_size" -gt 0 ]; then truncate -s "$part_size" "$out.part"; else rm -f "$out.part"; fi
      fi
      echo "download.sh: $path: $(http_reason "$code")$([ "$code" = 000 ] && echo "; run again to resume")" >&2
      exit 1 ;;
  esac
  got=$(stat -c %s "$out.part" 2>/dev/null || echo 0)
  if [ "$got" -gt "$size" ]; then
    rm -f "$out.part"
    echo "download.sh: $path arrived with $got bytes, more than the $size listed; removed, run again" >&2; exit 1
  fi
  if [ "$got" != "$size" ]; then
    echo "download.sh: $path has $got of $size bytes (connection cut?); run again to resume" >&2; exit 1
  fi
  if [ "$sha" != "-" ] && [ "$(sha256sum "$out.part" | cut -d' ' -f1)" != "$sha" ]; then
    rm -f "$out.part"
    echo "download.sh: $path failed its sha256 check and was removed; run again" >&2; exit 1
  fi
  mv "$out.part" "$out"
done <<< "$FILES"
echo "done: $DEST"
