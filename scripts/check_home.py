# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""After the test suite ran with HOME set to a fresh directory: fail unless that directory holds only the
caches the README names (section "Development"). .ci/run calls it.

    python3 scripts/check_home.py HOME_DIR
"""

import os
import sys

# Paths relative to HOME that the README names as what the suite may leave there; directories end in "/".
NAMED_CACHES = (
    ".cache/pip/",  # pip's cache
    ".rustup/settings.toml",  # rustup's, written where it is installed when pip runs `rustc --version`
)


def unexpected_entries(home):
    """Files and empty directories under home outside NAMED_CACHES, relative to home."""
    found = []
    for top, directories, files in os.walk(home):
        relative_top = os.path.relpath(top, home)
        kept = []
        for name in directories:
            relative = os.path.normpath(os.path.join(relative_top, name)) + "/"
            if relative in NAMED_CACHES:
                continue
            if any(cache.startswith(relative) for cache in NAMED_CACHES):
                kept.append(name)  # a parent of a named cache: look inside
            else:
                found.append(relative)
        directories[:] = kept
        for name in files:
            relative = os.path.normpath(os.path.join(relative_top, name))
            if relative not in NAMED_CACHES:
                found.append(relative)
    return sorted(found)


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        print("usage: check_home.py HOME_DIR", file=sys.stderr)
        return 2
    found = unexpected_entries(argv[1])
    if found:
        print("check_home: the test suite wrote to HOME (%s) outside the caches the README names:" % argv[1])
        for entry in found[:50]:
            print("  ~/" + entry)
        return 1
    print("check_home: HOME holds only the caches the README names (%s)" % ", ".join("~/" + cache.rstrip("/") for cache in NAMED_CACHES))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
