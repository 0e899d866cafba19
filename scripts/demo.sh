#!/usr/bin/env bash
# Set everything up, start a simulated fleet of 8 robots (some faulty), authenticate it with
# spot.auth.token and print one line per robot. Needs only Python 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/setup.sh
export PATH="$ROOT/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/build/collections"

FLEET=$(mktemp -d "${TMPDIR:-/tmp}/spot-auth-demo.XXXXXX")
spot-auth-sim --robots 8 --out "$FLEET" \
    --fault robot-005=down --fault robot-006=wrong-ca --fault robot-007=ratelimited --fault robot-008=flaky:1 &
SIM=$!
trap 'kill $SIM 2>/dev/null; wait $SIM 2>/dev/null; rm -rf "$FLEET"' EXIT
for _ in $(seq 100); do [ -f "$FLEET/inventory.yml" ] && break; sleep 0.1; done
[ -f "$FLEET/inventory.yml" ] || { echo "the simulator did not start" >&2; exit 1; }

ansible-playbook -i "$FLEET/inventory.yml" playbooks/demo.yml
