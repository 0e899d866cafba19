#!/usr/bin/env bash
# Lay out the collection for ansible-test and print the path to run it from:
#   COPY=$(bash scripts/ansible_test_copy.sh "$WORK_DIR")
# ansible-test wants a real directory named ansible_collections/spot/auth, outside this git work tree
# (inside it, ansible-test would ask git for files and find none). It also downloads a get-pip
# bootstrap from a host outside the package registries: the stand-in goes where it looks first,
# under the pip version of the ansible-test on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
copy="$1/ansible_collections/spot/auth"
mkdir -p "$copy"
git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - | tar -xf - -C "$copy"
pip_version=$(python -c 'import re, ansible_test._internal.python_requirements as m; print(re.search(r"pip=.([0-9.]+).", open(m.__file__).read()).group(1))')
mkdir -p ~/.ansible/test/cache
cp scripts/ansible_test_get_pip.py ~/.ansible/test/cache/get_pip_"${pip_version//./_}".py
echo "$copy"
