#!/usr/bin/env bash
# Check the execution environment definition without a container engine:
#   1. ansible-builder introspect finds grpcio and protobuf in the collection (meta/execution-environment.yml);
#   2. ansible-builder create writes a build context from execution-environment.yml with no network;
#   3. the context holds a Containerfile, the collection tarball and the galaxy requirements naming it;
#   4. the image's galaxy stage (ansible-galaxy collection install -r requirements.yml) and its
#      introspection step run here, with no network, and yield grpcio and protobuf.
# Building the image itself needs a container engine: bash scripts/build_ee.sh (docs/awx.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/usage.sh
source scripts/ee_common.sh
command -v ansible-builder >/dev/null || { echo "check_ee: ansible-builder is not installed (pip install ansible-builder)" >&2; exit 1; }

# Run a command with no network: a fresh network namespace where possible, else unreachable proxies.
# Galaxy is pointed at a closed local port as well, so any attempt to reach it fails at once.
if unshare -n true 2>/dev/null; then
    offline_prefix=(unshare -n)
elif unshare -rn true 2>/dev/null; then
    offline_prefix=(unshare -rn)
else
    offline_prefix=(env http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9
                    HTTPS_PROXY=http://127.0.0.1:9 no_proxy= NO_PROXY=)
fi
offline() { ANSIBLE_GALAXY_SERVER=http://127.0.0.1:9/ "${offline_prefix[@]}" "$@"; }

check_definitions_name_version

work=$(mktemp -d "${TMPDIR:-/tmp}/spot-auth-ee.XXXXXX")
trap 'rm -rf "$work"' EXIT
copy="$work/src/ansible_collections/spot/auth"
mkdir -p "$copy"
git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - | tar -xf - -C "$copy"

need_grpc_and_protobuf() {  # $1: a pip requirements file written by introspection
    grep -Eq '^grpcio([<>=!~ ;#]|$)' "$1" || fail "grpcio is missing from $2: $(cat "$1")"
    grep -Eq '^protobuf([<>=!~ ;#]|$)' "$1" || fail "protobuf is missing from $2: $(cat "$1")"
}

step "ansible-builder introspect (the collection as ansible_collections/spot/auth)"
ansible-builder introspect "$work/src" --write-pip "$work/introspect-pip.txt"
need_grpc_and_protobuf "$work/introspect-pip.txt" "ansible-builder introspect"

step "ansible-galaxy collection build"
(cd "$copy" && ansible-galaxy collection build --force --output-path build/ee)
[ -f "$copy/build/ee/$tarball" ] || fail "ansible-galaxy collection build made no build/ee/$tarball"

step "ansible-builder create (no network)"
context="$work/context"
offline ansible-builder create --file "$copy/execution-environment.yml" --context "$context" --output-filename Containerfile

step "the build context"
[ -f "$context/Containerfile" ] || fail "no Containerfile in the build context"
cmp -s "$copy/build/ee/$tarball" "$context/_build/collections/$tarball" || fail "the collection tarball is not in the build context"
python - "$context/_build/requirements.yml" "collections/$tarball" <<'EOF' || fail "_build/requirements.yml does not install the tarball"
import sys, yaml
wanted = {"name": sys.argv[2], "type": "file"}
collections = yaml.safe_load(open(sys.argv[1]))["collections"]
sys.exit(0 if collections == [wanted] else "requirements.yml: %r, expected [%r]" % (collections, wanted))
EOF
grep -q 'ansible-galaxy collection install .*-r requirements.yml' "$context/Containerfile" || fail "the Containerfile does not install the galaxy requirements"
grep -q 'introspect.py introspect' "$context/Containerfile" || fail "the Containerfile does not introspect the collections"
find "$context" -type f | sed "s|^$context/|  |" | sort

step "the image's galaxy stage, here and with no network"
image="$work/image/usr/share/ansible/collections"
# Only the image's path is configured, as in the image: a copy elsewhere on this machine (molecule
# installs the collection under ~/.ansible) must not make ansible-galaxy think there is nothing to do.
(cd "$context/_build" && offline env ANSIBLE_GALAXY_DISABLE_GPG_VERIFY=1 ANSIBLE_COLLECTIONS_PATH="$image" \
    ansible-galaxy collection install -r requirements.yml --collections-path "$image")
[ -f "$image/ansible_collections/spot/auth/MANIFEST.json" ] || fail "the collection did not install from the build context"
[ -f "$image/ansible_collections/spot/auth/meta/execution-environment.yml" ] || fail "meta/execution-environment.yml is not in the tarball"

step "the image's introspection step (its Python requirements)"
python "$context/_build/scripts/introspect.py" introspect "$work/image/usr/share/ansible/collections" --write-pip "$work/image-pip.txt" \
    --write-bindep "$work/image-bindep.txt"
need_grpc_and_protobuf "$work/image-pip.txt" "the image's introspection"

echo
echo "check_ee: OK (collection $version; context checked, image not built: bash scripts/build_ee.sh builds it)"
