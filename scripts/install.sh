#!/usr/bin/env bash
# Install prefgym into ./.venv (created if missing).
#   scripts/install.sh          runtime dependencies
#   scripts/install.sh dev      + test dependencies
#   scripts/install.sh dev,bench  any extras, comma-separated
# torch is installed first at the exact CPU build that pip finds locally (2.13.0): a looser
# requirement lets pip pull a multi-GB CUDA build on machines without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==${PREFGYM_TORCH_VERSION:-2.13.0}"
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install -q -e ".[${extras}]"
else
  .venv/bin/python -m pip install -q -e .
fi
# The leaderboard page test renders in a real headless browser: Debian's Chromium.
if [[ ",${extras}," == *",dev,"* ]] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: install Chromium (e.g. sudo apt-get install chromium) for the leaderboard page test" >&2
  fi
fi
.venv/bin/python -c "import torch, prefgym; print(f'prefgym {prefgym.__version__} installed (torch {torch.__version__}) in .venv')"
