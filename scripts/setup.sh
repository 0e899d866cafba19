#!/usr/bin/env bash
# Create .venv with everything the demo and the tests need, and make the collection importable
# as spot.auth. Safe to run again: it only reinstalls when a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.spot-auth-requirements
wanted=$(cat requirements.txt requirements-dev.txt simulator/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements-dev.txt -e ./simulator
    echo "$wanted" > "$stamp"
fi

# ansible-core finds the collection through this tree; ansible-test needs a real copy (scripts/test.sh).
mkdir -p build/collections/ansible_collections/spot
ln -sfn "$ROOT" build/collections/ansible_collections/spot/auth
