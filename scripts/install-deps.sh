#!/usr/bin/env bash
# Installs the Debian packages libmusicgen builds and tests with. Idempotent: packages already
# present are not fetched again, and apt's lists are refreshed only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libsndfile1-dev        # audio file I/O (wav/flac/ogg/mp3)
  libsentencepiece-dev   # T5 tokenizer
  libcli11-dev           # command-line parsing for the tools
  nlohmann-json3-dev     # config.json, safetensors headers, .ecdc metadata
  libopenblas-dev        # CPU GEMM
  libgtest-dev libgmock-dev  # tests
  libfftw3-dev           # STFT for the chroma extractor
  libebur128-dev         # loudness normalisation
  libpng-dev             # chroma pictures
  libcpp-httplib-dev     # musicgen-server (HTTP)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
