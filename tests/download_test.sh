#!/usr/bin/env bash
# weights/download.sh against a local imitation of the Hugging Face hub (Python http.server on
# 127.0.0.1; its tree and resolve endpoints), one repository per behaviour: a good one, a
# connection cut half-way (then resumed with a range request), a wrong sha256, a file that arrives
# short, a 404 and a 401. After each run no file that fails its size or sha256 check may sit under
# its real name, and the exit status and message are the documented ones (download.sh's header).
set -euo pipefail
SRC=$1
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
pass=0; fail=0
check() {  # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $name"; fi
}

cat > "$WORK/hub.py" <<'PY'
import hashlib, http.server, json, os, sys, threading
BIG = bytes((i * 7 + 3) % 251 for i in range(300000))   # the "model.safetensors"
CONFIG = b'{"model_type": "musicgen"}'
SHA = hashlib.sha256(BIG).hexdigest()
cut_once = set()

def tree(repo):
    sha = "0" * 64 if repo.endswith("badsha") else SHA
    return [{"type": "file", "path": "config.json", "size": len(CONFIG)},
            {"type": "file", "path": "model.safetensors", "size": len(BIG), "lfs": {"oid": sha, "size": len(BIG)}},
            {"type": "file", "path": "pytorch_model.bin", "size": 5}]

class Hub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def send(self, code, body, extra=()):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra: self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        parts = self.path.strip("/").split("/")
        repo = "/".join(parts[2:4]) if parts[0] == "api" else "/".join(parts[0:2])
        kind = repo.split("/")[1]
        if kind == "denied":
            return self.send(401, b"Unauthorized")
        if parts[0] == "api":
            if self.path.endswith("/tree/main"):
                return self.send(200, json.dumps(tree(repo)).encode())
            return self.send(200, b"{}")
        name = parts[-1]
        if kind == "missing" and name == "model.safetensors":
            return self.send(404, b"Entry not found")
        body = CONFIG if name == "config.json" else BIG
        if kind == "short" and name == "model.safetensors":
            body = body[: len(body) // 3]
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
        if kind == "cut" and name == "model.safetensors" and repo not in cut_once:
            cut_once.add(repo)   # promise the whole file, send half, drop the connection
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if start:
            return self.send(206, body[start:], [("Content-Range", f"bytes {start}-{len(body)-1}/{len(body)}")])
        self.send(200, body)

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
with open(sys.argv[1], "w") as f: f.write(str(srv.server_address[1]))
srv.serve_forever()
PY
python3 "$WORK/hub.py" "$WORK/port" & SERVER_PID=$!
for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
export HF_ENDPOINT="http://127.0.0.1:$(cat "$WORK/port")" WEIGHTS_DIR="$WORK/weights"
SHA=$(python3 -c 'import hashlib; print(hashlib.sha256(bytes((i * 7 + 3) % 251 for i in range(300000))).hexdigest())')
run() { rc=0; out=$(bash "$SRC/weights/download.sh" "$1" 2>&1) || rc=$?; }
complete() { [ -f "$1/model.safetensors" ] && [ "$(sha256sum "$1/model.safetensors" | cut -d' ' -f1)" = "$SHA" ]; }
no_bad_file() { [ ! -e "$1/model.safetensors" ] || complete "$1"; }
has() { grep -qF -- "$1" <<<"$out"; }  # not printf | grep -q: see exports_test.sh

run test/good
check "good: exit 0" [ "$rc" = 0 ]
check "good: complete" complete "$WEIGHTS_DIR/good"
check "good: config" [ -f "$WEIGHTS_DIR/good/config.json" ]
check "good: .bin skipped" [ ! -e "$WEIGHTS_DIR/good/pytorch_model.bin" ]
run test/good
check "good again: skipped as verified" has "ok        model.safetensors"
printf 'X' | dd of="$WEIGHTS_DIR/good/model.safetensors" bs=1 seek=100 conv=notrunc 2>/dev/null
run test/good
check "corrupted in place: fetched again" complete "$WEIGHTS_DIR/good"

run test/cut
check "cut: exit 1" [ "$rc" = 1 ]
check "cut: says resume" has "run again to resume"
check "cut: only a .part" no_bad_file "$WEIGHTS_DIR/cut"
check "cut: .part kept" [ -s "$WEIGHTS_DIR/cut/model.safetensors.part" ]
run test/cut
check "cut: resumed" has "resuming at"
check "cut: resume completes" complete "$WEIGHTS_DIR/cut"
check "cut: no .part left" [ ! -e "$WEIGHTS_DIR/cut/model.safetensors.part" ]

run test/badsha
check "badsha: exit 1" [ "$rc" = 1 ]
check "badsha: message" has "model.safetensors failed its sha256 check and was removed"
check "badsha: nothing kept" [ ! -e "$WEIGHTS_DIR/badsha/model.safetensors" ] && [ ! -e "$WEIGHTS_DIR/badsha/model.safetensors.part" ]

run test/short
check "short: exit 1" [ "$rc" = 1 ]
check "short: message" has "model.safetensors has 100000 of 300000 bytes"
check "short: not under its name" [ ! -e "$WEIGHTS_DIR/short/model.safetensors" ]

run test/missing
check "404: exit 1" [ "$rc" = 1 ]
check "404: message" has "model.safetensors: HTTP 404: not found"
check "404: nothing under its name" no_bad_file "$WEIGHTS_DIR/missing"
check "404: no error page kept" [ ! -e "$WEIGHTS_DIR/missing/model.safetensors.part" ]

run test/denied
check "401: exit 1" [ "$rc" = 1 ]
check "401: message" has "HTTP 401: access denied (gated or private: set HF_TOKEN"
check "401: nothing written" [ ! -e "$WEIGHTS_DIR/denied/model.safetensors" ]

[ "$fail" = 0 ] || printf '%s\n' "$out" | tail -n 5
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
