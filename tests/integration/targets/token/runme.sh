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
set -o pipefail
ansible-playbook -vvvv -i "$FLEET/inventory.yml" -e "token_cache_dir=$FLEET/tokens" play.yml "$@" 2>&1 | tee "$FLEET/play.log"
# No password of the fleet and nothing shaped like a token in the -vvvv output.
python - "$FLEET/inventory.yml" "$FLEET/play.log" <<'PY'
import re, sys, yaml
hosts = yaml.safe_load(open(sys.argv[1]))["all"]["children"]["spot"]["hosts"]
secrets = [h["spot_password"] for h in hosts.values()] + [h["spot_app_token"] for h in hosts.values() if "spot_app_token" in h]
log = open(sys.argv[2]).read()
assert not any(s in log for s in secrets), "a password appears in the output"
assert not re.search(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}", log), "a token appears in the output"
print("no password or token in the -vvvv output")
PY
