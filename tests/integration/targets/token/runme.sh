#!/usr/bin/env bash
# Start a simulated fleet (the simulator ships in the collection), then run the plays against it.
set -eu
# ansible-test runs this from a copy of tests/; the collection itself is on the collections path.
COLLECTION_ROOT="${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/spot/auth"
FLEET=$(mktemp -d)
trap 'kill "$SIM" 2>/dev/null || true; wait "$SIM" 2>/dev/null || true; rm -rf "$FLEET"' EXIT
PYTHONPATH="$COLLECTION_ROOT/simulator" python -m spot_auth_sim --robots 4 --out "$FLEET" \
    --fault robot-003=down --legacy robot-004 --watch-pid $$ > "$FLEET/sim.log" 2>&1 &
SIM=$!
for _ in $(seq 200); do [ -f "$FLEET/inventory.yml" ] && break; sleep 0.1; done
[ -f "$FLEET/inventory.yml" ] || { cat "$FLEET/sim.log"; exit 1; }
ansible-playbook -i "$FLEET/inventory.yml" -e "token_cache_dir=$FLEET/tokens" play.yml "$@"
