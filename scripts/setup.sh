#!/usr/bin/env bash
# Installs what rlvr needs on a fresh Debian 12 machine; idempotent (a second run takes seconds).
#   - Debian packages (build tools and the C++ libraries)
#   - a virtualenv with the pinned torch wheel (LibTorch) and the Python test-only packages, kept at a
#     stable path outside the clone so every clone shares it: $RLVR_VENV (default ~/.cache/rlvr/venv-torch2.11.0)
# Prints nothing but progress; exits non-zero on failure.
set -euo pipefail

TORCH_VERSION=2.11.0
PY_TEST_PKGS=(transformers==5.17.0 tokenizers==0.23.2 safetensors math-verify==0.8.0 numpy trl==1.16.0 tensorboard==2.21.0)
: "${RLVR_VENV:=$HOME/.cache/rlvr/venv-torch${TORCH_VERSION}}"
export RLVR_VENV

APT_PKGS=(build-essential cmake ninja-build ccache pkg-config python3-venv
  libyaml-cpp-dev libspdlog-dev libfmt-dev catch2 nlohmann-json3-dev libcli11-dev
  libginac-dev libcln-dev libpcre2-dev libutf8proc-dev libgloo-dev
  patchelf)  # patchelf: scripts/gpu_bundle.sh rewrites the bundle's RUNPATHs

need_apt=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$p")
done
if ((${#need_apt[@]})); then
  echo "[setup] installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

stamp="$RLVR_VENV/.rlvr-ready-$(echo "${TORCH_VERSION} ${PY_TEST_PKGS[*]}" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "[setup] preparing the virtualenv $RLVR_VENV (torch==${TORCH_VERSION}: about 3 GB the first time)"
  mkdir -p "$(dirname "$RLVR_VENV")"
  [ -x "$RLVR_VENV/bin/python" ] || python3 -m venv "$RLVR_VENV"
  "$RLVR_VENV/bin/pip" install -q --upgrade pip
  "$RLVR_VENV/bin/pip" install -q "torch==${TORCH_VERSION}" "${PY_TEST_PKGS[@]}"
  "$RLVR_VENV/bin/python" -c "import torch; assert torch.__version__.startswith('${TORCH_VERSION}'), torch.__version__"
  touch "$stamp"
fi
