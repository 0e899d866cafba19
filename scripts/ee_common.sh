# shellcheck shell=bash
# Sourced from the repository root by check_ee.sh and build_ee.sh: the venv's tools on PATH, step and
# fail messages named after the script, the collection's version, and a check that the image's
# definitions name that version (execution-environment.yml's tarball, ansible-navigator.yml's image).
if [ -x "$PWD/.venv/bin/ansible-builder" ]; then
    export PATH="$PWD/.venv/bin:$PATH"
fi
unset ANSIBLE_COLLECTIONS_PATH  # the image installs the collection from its tarball, never from build/collections

ee_script=$(basename "${BASH_SOURCE[1]}" .sh)
step() { printf '\n=== %s\n' "$*"; }
fail() { echo "$ee_script: FAILED: $*" >&2; exit 1; }

version=$(python3 -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
tarball="spot-auth-$version.tar.gz"

check_definitions_name_version() {
    if ! grep -q "image: localhost/spot-auth-ee:$version$" ansible-navigator.yml; then
        fail "ansible-navigator.yml must name the image localhost/spot-auth-ee:$version (galaxy.yml version $version)"
    fi
    if ! grep -q "build/ee/$tarball" execution-environment.yml || ! grep -q "collections/$tarball" execution-environment.yml; then
        fail "execution-environment.yml must name build/ee/$tarball and collections/$tarball (galaxy.yml version $version)"
    fi
}
