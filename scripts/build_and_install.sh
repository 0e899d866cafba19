#!/usr/bin/env bash
# The built collection works on its own: build the tarball, install it with ansible-galaxy into an
# empty directory, and run a play against a simulated fleet from a fresh venv that has only
# ansible-core and the tarball's requirements.txt (the simulator comes from the tarball's simulator/).
# What the tarball holds is tested by tests/packaging/test_readme.py (galaxy.yml's manifest).
#
#   bash scripts/build_and_install.sh
#   BUILD_PYTHON=python3.12 bash scripts/build_and_install.sh     # another Python for the fresh venv
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/usage.sh
ROOT=$PWD
python=${BUILD_PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3

step() { printf '\n=== %s\n' "$*"; }
fail() { echo "build_and_install: FAILED: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/spot-auth-install.XXXXXX")
sim_pid=
cleanup() {
    if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

step "ansible-galaxy collection build"
builder=ansible-galaxy
[ -x "$ROOT/.venv/bin/ansible-galaxy" ] && builder="$ROOT/.venv/bin/ansible-galaxy"
"$builder" collection build --output-path "$work/dist" "$ROOT"
tarball=$(ls "$work"/dist/spot-auth-*.tar.gz)

echo "  $(tar -tzf "$tarball" | wc -l) entries, $(du -k "$tarball" | cut -f1) KiB"

step "fresh venv ($python): ansible-core and the tarball's requirements"
collections="$work/collections"
ANSIBLE_COLLECTIONS_PATH="$collections" "$builder" collection install "$tarball" -p "$collections" >/dev/null
installed="$collections/ansible_collections/spot/auth"
[ -f "$installed/MANIFEST.json" ] || fail "ansible-galaxy collection install left no $installed/MANIFEST.json"
"$python" -m venv "$work/venv"
venv="$work/venv/bin"
"$venv/python" -m pip install --quiet --upgrade pip
"$venv/python" -m pip install --quiet "ansible-core>=2.19" -r "$installed/requirements.txt"
"$venv/python" -m pip install --quiet "$installed/simulator"
echo "  $("$venv/ansible" --version | head -1), Python $("$venv/python" -c 'import sys; print(sys.version.split()[0])')"

# Only the fresh venv and the install path: no ~/.ansible, no build/collections, no other collections.
run_fresh() {
    env -i HOME="$work/home" PATH="$venv:/usr/bin:/bin" LANG=C.UTF-8 \
        ANSIBLE_COLLECTIONS_PATH="$collections" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=False \
        ANSIBLE_LOCAL_TEMP="$work/tmp" ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=False "$@"
}
mkdir -p "$work/home" "$work/tmp"

step "the collection resolves to the install path"
run_fresh ansible-galaxy collection list spot.auth
module_file=$(run_fresh ansible-doc --json spot.auth.token | "$venv/python" -c 'import json, sys; print(json.load(sys.stdin)["spot.auth.token"]["doc"]["filename"])')
case "$module_file" in
    "$collections"/*) echo "  spot.auth.token from $module_file" ;;
    *) fail "spot.auth.token resolves to $module_file, not to the install path" ;;
esac

step "simulated fleet (spot-auth-sim from the tarball's simulator/)"
fleet="$work/fleet"
mkdir -p "$fleet"
"$venv/spot-auth-sim" --robots 3 --out "$fleet" --legacy robot-003 --watch-pid $$ > "$work/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 300); do [ -f "$fleet/inventory.yml" ] && break; kill -0 "$sim_pid" 2>/dev/null || break; sleep 0.1; done
[ -f "$fleet/inventory.yml" ] || { cat "$work/sim.log"; fail "the simulator wrote no inventory"; }

step "a play from the installed collection"
cat > "$work/play.yml" <<'EOF'
- name: Authenticate the fleet with the installed collection
  hosts: spot
  gather_facts: false
  tasks:
    - name: Log in with the module
      spot.auth.token:

    - name: Check the token, and get one with the lookup too
      ansible.builtin.assert:
        that:
          - spot_auth.method == 'password'
          - spot_auth.token | length > 100
          - lookup('spot.auth.token') | length > 100
        quiet: true
EOF
run_fresh ansible-playbook -i "$fleet/inventory.yml" "$work/play.yml"

echo
echo "build_and_install: OK ($(basename "$tarball") installs and runs from $collections)"
