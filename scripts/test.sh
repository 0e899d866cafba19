#!/usr/bin/env bash
# Run every check and test of the collection. Needs only Python 3.11: scripts/setup.sh installs the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/setup.sh
export PATH="$ROOT/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/build/collections"
# The tests write only to build/ and the temp directory: Ansible's own temp files and caches go to build/.
export ANSIBLE_HOME="$ROOT/build/ansible-home"

# Each step either passes or stops the run; the last line counts them.
PASSED=0
CURRENT=""
step() {
    [ -n "$CURRENT" ] && PASSED=$((PASSED + 1))
    CURRENT="$*"
    printf '\n=== %s\n' "$*"
}
finish() {
    status=$?
    [ -n "${WORK:-}" ] && rm -rf "$WORK"
    [ "$status" -eq 0 ] && [ -n "${LOGS:-}" ] && rm -rf "$LOGS"
    if [ "$status" -eq 0 ]; then
        printf '\ntest.sh: %d passed, 0 failed\n' "$((PASSED + 1))"
    else
        printf '\ntest.sh: step "%s" failed\ntest.sh: %d passed, 1 failed\n' "$CURRENT" "$PASSED"
    fi
}
trap finish EXIT
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/spot-auth-logs.XXXXXX")

step "ruff"
ruff check .

step "generated files are current"
python scripts/generate_wire.py --check
python scripts/generate_error_reference.py --check

step "changelog fragments"
antsibull-changelog lint

step "ansible-lint (production profile)"
ansible-lint --offline --nocolor

step "antsibull-docs lint"
antsibull-docs --config-file tests/antsibull.cfg lint-collection-docs --plugin-docs .

step "simulator tests"
python -m pytest -p no:cacheprovider simulator/tests

step "playbook tests (ansible-playbook against the simulator)"
python -m pytest -p no:cacheprovider tests/playbooks

step "molecule: rotate and provision against 50-robot simulated fleets"
molecule test --all 2>&1 | tee "$LOGS/molecule.log"
python scripts/assert_no_secrets.py "$LOGS/molecule.log"

step "packaging, docs and AWX credential tests"
python -m pytest -p no:cacheprovider tests/packaging

step "execution environment (ansible-builder introspect and create, offline)"
bash scripts/check_ee.sh

step "built collection installs into a fresh venv and runs a play"
bash scripts/build_and_install.sh

step "execution environment: build the image (podman, ansible-builder; the base image cached in build/)"
SPOT_AUTH_EE_CACHE="$ROOT/build/ee-cache" bash scripts/build_ee.sh

step "execution environment: plays in the image through ansible-navigator and ansible-runner"
python -m pytest -p no:cacheprovider tests/ee

step "copy the collection for ansible-test"
# ansible-test keeps its venvs, caches and an SSH key under ~/.ansible/test: from here on, HOME is in build/.
# pip's own settings in the real home still apply.
for pip_config in "${XDG_CONFIG_HOME:-$HOME/.config}/pip/pip.conf" "$HOME/.pip/pip.conf"; do
    if [ -z "${PIP_CONFIG_FILE:-}" ] && [ -f "$pip_config" ]; then export PIP_CONFIG_FILE="$pip_config"; fi
done
export HOME="$ROOT/build/home"
mkdir -p "$HOME"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/spot-auth-test.XXXXXX")
COPY=$(bash scripts/ansible_test_copy.sh "$WORK")

step "ansible-test sanity"
(cd "$COPY" && ansible-test sanity --venv --python 3.11 --color no) 2>&1 | tee "$LOGS/sanity.log"
# A sanity test ansible-test could not run (a program or a Python requirement missing) leaves only a warning.
python scripts/sanity_ran.py "$LOGS/sanity.log"

step "ansible-test units"
(cd "$COPY" && ansible-test units --venv --python 3.11 --color no)

step "ansible-test integration"
(cd "$COPY" && ansible-test integration --venv --python 3.11 --color no -v) 2>&1 | tee "$LOGS/integration.log"
python scripts/assert_no_secrets.py "$LOGS/integration.log"

step "version matrix: ansible-core 2.21 on Python 3.13 or 3.12 (sanity and units)"
bash scripts/test_matrix.sh
