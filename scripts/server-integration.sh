#!/usr/bin/env bash
# musicgen-server end to end, the stage of scripts/test.sh after the Python one (CI runs it):
#   tests/server/test_web_page.py   the web page in headless Chromium (Playwright, system chromium)
#   tests/server/test_prometheus.py promtool check metrics; a real Prometheus scraping the server
#   tests/server/test_faults.py     bad requests and bad clients
#   tests/server/test_ray_serve.py  deploy/ray on a local Ray cluster, two replicas
#   tests/server/load_test.py       64 requests at concurrency 8, leaks and RSS
# Everything listens on 127.0.0.1 (free ports) and is stopped at the end, failed or not.
#
# Installs what is missing: Debian chromium and prometheus (apt), and ray[serve], playwright,
# requests, pytest into the Python stage's venv ($PY_VENV, default build/pyvenv, which holds the
# musicgen package; made with python/run-tests.sh when absent). Builds the musicgen-server target
# in $BUILD_DIR (default build). Playwright drives /usr/bin/chromium: no browser download.
#
# MUSICGEN_SKIP_SERVER_INTEGRATION=1 skips this stage (local runs without the network or time);
# CI leaves it unset. Extra arguments go to pytest (e.g. -k faults).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${MUSICGEN_SKIP_SERVER_INTEGRATION:-0}" = 1 ]; then
  echo "server-integration: skipped (MUSICGEN_SKIP_SERVER_INTEGRATION=1)"
  exit 0
fi
BUILD_DIR=${BUILD_DIR:-build}
VENV=${PY_VENV:-build/pyvenv}
VPY="$VENV/bin/python"
stage_start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - stage_start )) s"; }

# Stop whatever is still running from the tests (their own fixtures stop servers, Prometheus and
# Ray; this is for an interrupted run): the process group the tests ran in, and nothing else.
TEST_PGID=""
cleanup() {
  if [ -n "$TEST_PGID" ] && kill -0 -- "-$TEST_PGID" 2>/dev/null; then
    kill -TERM -- "-$TEST_PGID" 2>/dev/null || true
    sleep 2
    kill -KILL -- "-$TEST_PGID" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

# ---- installs ----
t=$(date +%s)
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || missing+=(prometheus)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "server-integration: missing ${missing[*]} (Debian: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "server-integration: apt (${missing[*]:-nothing missing}) took $(( $(date +%s) - t )) s"

t=$(date +%s)
if ! "$VPY" -c "import musicgen" 2>/dev/null; then
  echo "server-integration: no musicgen package in $VENV: building it with python/run-tests.sh"
  bash python/run-tests.sh
fi
"$VPY" -m pip install -q --disable-pip-version-check "ray[serve]" playwright requests pytest
echo "server-integration: pip (ray[serve], playwright, requests, pytest) took $(( $(date +%s) - t )) s"

t=$(date +%s)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  echo "server-integration: $BUILD_DIR is not configured: run scripts/build.sh first" >&2
  exit 1
fi
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target musicgen-server >/dev/null
SERVER_BIN=$(find "$BUILD_DIR/tools" -name musicgen-server -type f -perm -u+x | head -n 1)
if [ -z "$SERVER_BIN" ]; then
  echo "server-integration: the musicgen-server target built no binary under $BUILD_DIR/tools" >&2
  exit 1
fi
echo "server-integration: musicgen-server build took $(( $(date +%s) - t )) s ($SERVER_BIN)"

# ---- tests ----
export MUSICGEN_SERVER_BIN="$PWD/$SERVER_BIN" MUSICGEN_REQUIRE_SERVER=1
rc=0
t=$(date +%s)
# Its own session (process group), so that cleanup can stop everything the tests started.
setsid "$VPY" -m pytest tests/server -q -p no:cacheprovider -W ignore::DeprecationWarning "$@" &
TEST_PGID=$!
wait "$TEST_PGID" || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "server-integration: pytest collected no tests: tests/server is missing or broken" >&2
  rc=1
fi
echo "server-integration: pytest tests/server took $(( $(date +%s) - t )) s (rc $rc)"

t=$(date +%s)
setsid "$VPY" tests/server/load_test.py &
TEST_PGID=$!
wait "$TEST_PGID" || rc=1
echo "server-integration: load test took $(( $(date +%s) - t )) s"

echo "server-integration: $([ "$rc" -eq 0 ] && echo passed || echo FAILED) in $(elapsed) (load $(cut -d' ' -f1-3 /proc/loadavg))"
exit "$rc"
