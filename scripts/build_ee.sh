#!/usr/bin/env bash
# Build the execution environment image localhost/spot-auth-ee:<galaxy.yml version> with Podman on this
# machine, with no container registry: its base image is Debian 12 (Python 3.11), made here by debootstrap.
#
#   bash scripts/build_ee.sh                  # build (installs podman, runc, debootstrap with apt if missing)
#   bash scripts/build_ee.sh --rebuild-base   # make the base image anew with debootstrap, and cache it again
#   bash scripts/build_ee.sh --no-cache       # rebuild every layer of the EE image (the base image is kept)
#
# Stages, each timed:
#   1. podman and runc (and debootstrap when the base image must be made) with apt-get, when missing: root only;
#   2. the base image that execution-environment.yml names, localhost/spot-auth-ee-base:bookworm
#      (debootstrap minbase + python3, python3-pip, python3-venv, ca-certificates, then bookworm-updates and
#      bookworm-security: ee/base.Containerfile), made only when podman's store lacks it; it is also kept as
#      a tarball in the cache directory, which a fresh store loads instead of running debootstrap again;
#   3. the collection tarball: ansible-galaxy collection build --force --output-path build/ee;
#   4. ansible-builder build --container-runtime podman from execution-environment.yml;
#   5. a check of the image: ansible-core, the collection and its Python requirements are there.
#
# Environment:
#   SPOT_AUTH_EE_CACHE          cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/spot-auth-ee)
#   SPOT_AUTH_EE_DEBIAN_MIRROR  Debian mirror for debootstrap and apt (default http://deb.debian.org/debian);
#   SPOT_AUTH_EE_DEBIAN_SECURITY_MIRROR                               (default http://deb.debian.org/debian-security)
#   SPOT_AUTH_EE_CA_BUNDLE      the CA bundle that pip trusts while the image builds, mounted read-only over
#                               the image's /etc/ssl/certs/ca-certificates.crt for RUN steps only, never stored
#                               in the image (default: $PIP_CERT, else $SSL_CERT_FILE, else the host's
#                               /etc/ssl/certs/ca-certificates.crt; "none": the image's own bundle)
#   SPOT_AUTH_EE_PODMAN_OPTS    options of every container podman runs here (default: --runtime runc
#                               --ulimit nofile=1024:1024 --ulimit nproc=1024:1024); builds also get
#                               --network host, so they reach the package registries as the host does
#
# Run the image with the same options, for example:
#   podman run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
#       localhost/spot-auth-ee:0.1.0 ansible-doc spot.auth.token
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/usage.sh
source scripts/ee_common.sh

CACHE=${SPOT_AUTH_EE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spot-auth-ee}
BASE_TARBALL="$CACHE/spot-auth-ee-base-bookworm.tar"
MIRROR=${SPOT_AUTH_EE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SPOT_AUTH_EE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
read -r -a podman_opts <<< "${SPOT_AUTH_EE_PODMAN_OPTS:---runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024}"

rebuild_base=0
no_cache=()
for argument in "$@"; do
    case "$argument" in
        --rebuild-base) rebuild_base=1 ;;
        --no-cache) no_cache=(--no-cache) ;;
        *) echo "build_ee: unknown argument $argument (see --help)" >&2; exit 2 ;;
    esac
done

timings=()
timed() {  # $1: the stage's name; the rest: the command
    local name=$1 start=$EPOCHREALTIME
    shift
    step "$name"
    "$@"
    timings+=("$(awk -v a="$start" -v b="$EPOCHREALTIME" -v n="$name" 'BEGIN { printf "  %7.1f s  %s", b - a, n }')")
}

work=$(mktemp -d "${TMPDIR:-/tmp}/spot-auth-ee-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

command -v ansible-builder >/dev/null || fail "ansible-builder is not installed (bash scripts/setup.sh, or pip install ansible-builder)"
command -v ansible-galaxy >/dev/null || fail "ansible-galaxy is not installed (bash scripts/setup.sh)"
check_definitions_name_version
BASE_IMAGE=$(python3 -c 'import yaml; print(yaml.safe_load(open("execution-environment.yml"))["images"]["base_image"]["name"])')
case "$BASE_IMAGE" in
    localhost/*:*) ;;
    *) fail "execution-environment.yml's base image $BASE_IMAGE is not one made here (localhost/NAME:TAG): build with ansible-builder build" ;;
esac
ROOTFS_IMAGE=${BASE_IMAGE%:*}:rootfs
IMAGE=localhost/spot-auth-ee:$version
TARBALL=build/ee/$tarball

# The base image is made by debootstrap only when neither podman's store nor the cache holds it.
base_missing() {
    [ "$rebuild_base" = 1 ] && return 0
    [ -f "$BASE_TARBALL" ] && return 1
    ! { command -v podman >/dev/null && podman image exists "$BASE_IMAGE"; }
}

install_tools() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    if base_missing && ! command -v debootstrap >/dev/null; then
        missing+=(debootstrap)
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        [ "$(id -u)" = 0 ] || fail "${missing[*]} missing: install as root (apt-get install -y ${missing[*]}) or run this as root"
        command -v apt-get >/dev/null || fail "${missing[*]} missing and no apt-get here: install them with the system's package manager"
        echo "installing ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
    # ansible-navigator runs containers with /dev/mqueue mounted, which some hosts lack.
    if [ ! -d /dev/mqueue ] && [ "$(id -u)" = 0 ]; then
        mkdir -p /dev/mqueue
    fi
    podman --version
    runc --version | head -n 1
}

make_base() {
    [ "$(id -u)" = 0 ] || fail "debootstrap needs root: run this as root once, or load a cached base image ($BASE_TARBALL)"
    local rootfs="$work/rootfs"
    echo "debootstrap bookworm from $MIRROR"
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates bookworm "$rootfs" "$MIRROR"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar --numeric-owner --xattrs -C "$rootfs" -c . | podman import - "$ROOTFS_IMAGE"
    rm -rf "$rootfs"
    podman build "${podman_opts[@]}" --network host --squash-all --tag "$BASE_IMAGE" \
        --build-arg ROOTFS_IMAGE="$ROOTFS_IMAGE" --build-arg DEBIAN_MIRROR="$MIRROR" \
        --build-arg DEBIAN_SECURITY_MIRROR="$SECURITY_MIRROR" --file ee/base.Containerfile ee
    podman rmi "$ROOTFS_IMAGE" >/dev/null
}

save_base() {
    mkdir -p "$CACHE"
    podman save --output "$BASE_TARBALL.partial" "$BASE_IMAGE"
    mv "$BASE_TARBALL.partial" "$BASE_TARBALL"
    echo "cached $BASE_TARBALL ($(du -m "$BASE_TARBALL" | cut -f1) MiB)"
}

ensure_base() {
    if [ "$rebuild_base" = 1 ]; then
        make_base
        save_base
    elif podman image exists "$BASE_IMAGE"; then
        echo "$BASE_IMAGE is in podman's store"
        [ -f "$BASE_TARBALL" ] || save_base
    elif [ -f "$BASE_TARBALL" ]; then
        echo "loading $BASE_IMAGE from $BASE_TARBALL"
        podman load --input "$BASE_TARBALL" || fail "podman load $BASE_TARBALL failed: remove it, or run with --rebuild-base"
        podman image exists "$BASE_IMAGE" || fail "$BASE_TARBALL holds no $BASE_IMAGE: remove it and run again"
    else
        make_base
        save_base
    fi
}

build_collection() {
    ansible-galaxy collection build --force --output-path build/ee
    [ -f "$TARBALL" ] || fail "ansible-galaxy collection build made no $TARBALL"
}

build_image() {
    local build_opts=("${podman_opts[@]}" --network host) ca_bundle
    ca_bundle=${SPOT_AUTH_EE_CA_BUNDLE:-${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}
    if [ "$ca_bundle" != none ]; then
        [ -f "$ca_bundle" ] || fail "no CA bundle $ca_bundle (SPOT_AUTH_EE_CA_BUNDLE=none for the image's own)"
        build_opts+=(--volume "$(realpath "$ca_bundle"):/etc/ssl/certs/ca-certificates.crt:ro")
    fi
    ansible-builder build --container-runtime podman --file execution-environment.yml \
        --context build/ee/context --tag "$IMAGE" "${no_cache[@]}" \
        --extra-build-cli-args "$(printf '%q ' "${build_opts[@]}")" --verbosity 3
}

check_image() {
    podman run --rm "${podman_opts[@]}" --env ANSIBLE_NOCOLOR=1 "$IMAGE" bash -c '
        set -e
        ansible --version | head -n 2
        ansible-galaxy collection list spot.auth
        python3 -c "import grpc, google.protobuf; print(\"grpcio\", grpc.__version__, \"protobuf\", google.protobuf.__version__)"
        ansible-doc spot.auth.token | head -n 1'
}

timed "podman, runc and debootstrap" install_tools
timed "base image $BASE_IMAGE" ensure_base
timed "collection tarball $TARBALL" build_collection
timed "ansible-builder build $IMAGE" build_image
timed "check $IMAGE" check_image

size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo
echo "build_ee: OK $IMAGE, $((size / 1000000)) MB ($size bytes)"
printf '%s\n' "${timings[@]}"
