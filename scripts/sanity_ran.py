# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fail when an ansible-test sanity log shows a test skipped for a missing program or requirement.

    python scripts/sanity_ran.py SANITY_LOG

SANITY_LOG holds both stdout and stderr of `ansible-test sanity` (`2>&1`), without colour (`--color no`).

ansible-test exits 0 when it cannot run a test. Two kinds of message say so:

- `WARNING: Required program "shellcheck" not found.` comes right after `Running sanity test "shellcheck"`, and
  nothing else says that the test did not run (shellcheck needs `shellcheck`, pslint needs `pwsh`).
- `WARNING: Skipping sanity test "NAME" on Python VERSION because it could not be found.`, `... because it is
  unsupported. ...`, `... due to missing libyaml support in PyYAML.`, `... due to missing virtual environment support.`
  and `WARNING: Skipping sanity test "NAME" due to missing virtual environment support on Python VERSION.`

A test with nothing to check (pslint without any .ps1 file) still counts as run: the log does not tell it apart.
Tests turned off by default (`Skipping tests disabled by default without --allow-disabled: ...`) are counted
but do not fail. Exits 1 naming each skipped test, 2 when the log names no sanity test at all, else 0.
One line on stdout gives the counts.
"""

from __future__ import annotations

import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
RUNNING = re.compile(r'^Running sanity test "(?P<test>[^"]+)"(?: on Python (?P<python>\S+))?$')
MISSING_PROGRAM = re.compile(r'^WARNING: Required program "[^"]+" not found\.$')
SKIPPED_ON_PYTHON = re.compile(
    r'^WARNING: Skipping sanity test "(?P<test>[^"]+)" on Python (?P<python>\S+) '
    r"(?:because it could not be found\.|because it is unsupported\..*"
    r"|due to missing libyaml support in PyYAML\.|due to missing virtual environment support\.)$"
)
SKIPPED_NO_VENV = re.compile(r'^WARNING: Skipping sanity test "(?P<test>[^"]+)" due to missing virtual environment support on Python (?P<python>\S+)\.$')
DISABLED = re.compile(r"^WARNING: Skipping tests disabled by default without --allow-disabled: (?P<tests>.+)$")
REVIEW = re.compile(r"^WARNING: Reviewing previous \d+ warning\(s\):$")


def label(test: str, python: str | None) -> str:
    """Name a test the way ansible-test lists failed ones."""
    return f"{test} --python {python}" if python else test


def scan(lines: list[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """Return the tests seen, the skipped ones with the reason, and those disabled by default."""
    seen: list[str] = []
    skipped: dict[str, str] = {}
    disabled: list[str] = []
    current: str | None = None

    for raw in lines:
        line = ANSI.sub("", raw).rstrip("\r\n")

        if REVIEW.match(line):
            break  # the end of the run repeats every earlier warning

        if match := RUNNING.match(line):
            current = label(match["test"], match["python"])
            if current not in seen:
                seen.append(current)
        elif match := MISSING_PROGRAM.match(line):
            name = current or "(before any sanity test)"
            skipped.setdefault(name, line.removeprefix("WARNING: "))
        elif match := SKIPPED_ON_PYTHON.match(line) or SKIPPED_NO_VENV.match(line):
            name = label(match["test"], match["python"])
            if name not in seen:
                seen.append(name)
            skipped.setdefault(name, line.removeprefix("WARNING: "))
        elif match := DISABLED.match(line):
            disabled.extend(name.strip() for name in match["tests"].split(","))

    return seen, skipped, disabled


def main(argv: list[str]) -> int:
    """Check one log and report."""
    if len(argv) != 2:
        print(f"usage: {argv[0]} SANITY_LOG", file=sys.stderr)
        return 2

    with open(argv[1], encoding="utf-8", errors="replace") as handle:
        seen, skipped, disabled = scan(handle.readlines())

    ran = [name for name in seen if name not in skipped]
    extra = f", {len(disabled)} disabled by default ({', '.join(disabled)})" if disabled else ""
    print(f"sanity_ran: {len(ran)} sanity test(s) ran, {len(skipped)} skipped for a missing program or requirement{extra}")

    if not seen:
        print(f"sanity_ran: no sanity test found in {argv[1]}", file=sys.stderr)
        return 2

    for name, reason in skipped.items():
        print(f"sanity_ran: sanity test {name} did not run: {reason}", file=sys.stderr)

    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
