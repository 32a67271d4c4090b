#!/usr/bin/env bash
# The Python stage of scripts/test.sh: builds the package into a virtual environment with
# `pip install .` (CUDA left out: the tests run on the CPU) and runs its pytest suite.
#   - venv: $PY_VENV (default build/pyvenv), made once; numpy, pytest and the build requirements of
#     pyproject.toml are installed into it, so the build runs without isolation and reuses
#     build/python (scikit-build-core's build-dir) between runs: a rerun recompiles only what changed.
#   - The tests compare with the C API through python/tests/c_reference.c, built here from the same
#     objects as the extension (target musicgen_c_reference), and fail, not skip, without it.
# Exit status: pytest's; "no tests collected" (pytest's 5) is a failure too.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PY_VENV:-build/pyvenv}
PY=${PYTHON:-python3}

# A Debian python3 needs python3-venv (ensurepip) and python3-dev (Python.h) for this stage.
if ! "$PY" -c 'import ensurepip, sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q python3-venv python3-dev >/dev/null
  else
    echo "python/run-tests.sh: $PY lacks venv/ensurepip or its C headers (Debian: apt-get install python3-venv python3-dev)" >&2
    exit 1
  fi
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
# Keep these in step with [build-system] requires in pyproject.toml.
"$VPY" -m pip install -q --disable-pip-version-check numpy pytest mido "scikit-build-core>=0.10" "nanobind>=2.0"

ARGS=(-C cmake.define.MUSICGEN_CUDA=OFF -C build-dir=build/python)
if command -v ccache >/dev/null 2>&1; then
  ARGS+=(-C cmake.define.CMAKE_CXX_COMPILER_LAUNCHER=ccache -C cmake.define.CMAKE_C_COMPILER_LAUNCHER=ccache)
fi
start=$(date +%s)
"$VPY" -m pip install -q --disable-pip-version-check --no-build-isolation "${ARGS[@]}" .
echo "python: pip install . took $(( $(date +%s) - start )) s"

# The C reference the tests compare with, from the same objects as the extension.
cmake --build build/python --target musicgen_c_reference >/dev/null
rc=0
MUSICGEN_C_REFERENCE="$PWD/build/python/python/musicgen_c_reference" MUSICGEN_REQUIRE_C_REFERENCE=1 \
  "$VPY" -m pytest python/tests -q -p no:cacheprovider "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "python/run-tests.sh: pytest collected no tests: python/tests is missing or broken" >&2
  exit 1
fi
exit "$rc"
