# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write docs/error-reference.md from the error table in plugins/module_utils/_errors.py.

    python scripts/generate_error_reference.py            # rewrite docs/error-reference.md
    python scripts/generate_error_reference.py --check    # exit 1 when it is stale

The table is imported as ansible_collections.spot.auth.plugins.module_utils._errors, from the
ansible_collections tree this checkout sits in, else from build/collections (scripts/setup.sh).
"""

import argparse
import contextlib
import glob
import importlib
import os
import re
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, "docs", "error-reference.md")
MODULE = "ansible_collections.spot.auth.plugins.module_utils._errors"

# error_type values a plugin sets directly, without an exception class of _errors.py.
# The generator fails when a plugin sets one that is not described here, or one described here disappears.
DIRECT_ERROR_TYPES = {
    "MissingRequiredLibraryError": (
        "the module runs on a host (the controller, or the `delegate_to` host) whose Python lacks `grpcio` or "
        "`protobuf`; install `requirements.txt` there, or use the execution environment"),
}
DIRECT_ERROR_TYPE = re.compile(r"""error_type\s*=\s*["'](\w+)["']""")


def collections_path(stack):
    """The directory that holds ansible_collections/spot/auth for this checkout."""
    parts = os.path.realpath(ROOT).split(os.sep)
    if parts[-3:] == ["ansible_collections", "spot", "auth"]:
        return os.sep.join(parts[:-3]) or os.sep
    built = os.path.join(ROOT, "build", "collections")
    if os.path.isdir(os.path.join(built, "ansible_collections", "spot", "auth", "plugins")):
        return built
    # No build/collections (scripts/setup.sh makes it): link the checkout into a temporary tree.
    temporary = stack.enter_context(tempfile.TemporaryDirectory(prefix="spot-auth-errors-"))
    os.makedirs(os.path.join(temporary, "ansible_collections", "spot"))
    os.symlink(ROOT, os.path.join(temporary, "ansible_collections", "spot", "auth"))
    return temporary


def load_errors():
    with contextlib.ExitStack() as stack:
        sys.path.insert(0, collections_path(stack))
        module = importlib.import_module(MODULE)
        expected = os.path.realpath(os.path.join(ROOT, "plugins", "module_utils", "_errors.py"))
        if os.path.realpath(module.__file__) != expected:  # while a temporary link still resolves
            raise SystemExit("imported %s from %s, not from this checkout (%s)" % (MODULE, module.__file__, expected))
    return module


def describe_key(key, table):
    """The condition of one table row, in words."""
    kind = key[0]
    if kind == "header":
        return "response header error `%s`" % key[1] if key[1] else "response header error: any other code"
    if kind == "status":
        return "response status `%s`" % key[1] if key[1] else "response status: any other value"
    if kind == "response":
        return "a `STATUS_OK` answer that is malformed (%s)" % key[1]
    if kind == "grpc":
        code, marker = key[1], key[2]
        if code is None:
            return "any other gRPC failure"
        if marker is None:
            narrower = any(other[0] == "grpc" and other[1] == code and other[2] is not None for other in table)
            return "gRPC `%s`%s" % (code, ", when no marker matches" if narrower else "")
        return "gRPC `%s` with `%s` in the details" % (code, marker)
    if kind == "controller":
        return CONTROLLER_CAUSES[key[1]]
    raise SystemExit("unknown error table row kind %r: teach describe_key about it" % (kind,))


CONTROLLER_CAUSES = {
    "EMFILE": "the controller hit its open-file limit (`EMFILE`, `ENFILE`)",
    "ENOMEM": "the controller ran out of memory",
    "session lost": "the run's session agent exited or stopped answering while it held the request",
}


def cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def yes_no(flag):
    return "yes" if flag else "no"


def first_line(doc):
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def anchor(name):
    return name.lower()


def lineage(errors, cls):
    chain = [c.__name__ for c in cls.__mro__ if isinstance(c, type) and issubclass(c, errors.SpotAuthError)]
    return " ← ".join("`%s`" % name for name in chain)


def direct_error_types():
    """{error_type: [plugin files]} of error_type literals in plugins/ that _errors.py has no class for."""
    found = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "plugins", "**", "*.py"), recursive=True)):
        with open(path, encoding="utf-8") as handle:
            for name in DIRECT_ERROR_TYPE.findall(handle.read()):
                found.setdefault(name, []).append(os.path.relpath(path, ROOT))
    return found


def collect(errors):
    """(types, outside): the table's error types with their rows, and the error types raised outside it."""
    types = {}
    for key, spec in errors.ERROR_TABLE.items():
        entry = types.setdefault(spec.error_type, {"class": spec.exception, "rows": []})
        entry["rows"].append((key, spec))
    classes = [obj for obj in vars(errors).values() if isinstance(obj, type) and issubclass(obj, errors.SpotAuthError)]
    outside = {}
    for cls in classes:
        is_leaf = not any(other is not cls and issubclass(other, cls) for other in classes)
        if is_leaf and cls.__name__ not in types:
            outside[cls.__name__] = (first_line(cls.__doc__), lineage(errors, cls), ["plugins/module_utils/_errors.py"])
    direct = direct_error_types()
    for name, files in direct.items():
        if name in types or name in outside:
            continue
        if name not in DIRECT_ERROR_TYPES:
            raise SystemExit("%s sets error_type %s: describe it in DIRECT_ERROR_TYPES of %s" % (", ".join(files), name, __file__))
        outside[name] = (DIRECT_ERROR_TYPES[name], None, files)
    stale = sorted(set(DIRECT_ERROR_TYPES) - set(direct))
    if stale:
        raise SystemExit("no plugin sets error_type %s any more: remove it from DIRECT_ERROR_TYPES" % ", ".join(stale))
    return types, outside


def render(errors):
    types, outside = collect(errors)
    lines = [
        "# error_type reference",
        "",
        "<!-- GENERATED by scripts/generate_error_reference.py from plugins/module_utils/_errors.py. Do not edit:",
        "     run `python scripts/generate_error_reference.py` after changing the error table. -->",
        "",
        "Every failure of the `spot.auth.token` module and lookup names its cause in `error_type`, so a play can",
        "branch on it. A failed module task also returns `retryable`, `status` (the response status name, or null),",
        "`grpc_code` (the gRPC status code name, or null) and `hostname`; the lookup raises an error whose message",
        "starts with `<error_type>: `.",
        "",
        "- **retryable: yes** means trying again later can help. The task has already retried such failures",
        "  `retries` times (default 3) with jittered exponential backoff before failing.",
        "- **retryable: no** is never retried: a refused password is not sent again, because every failed login",
        "  counts toward the robot's lockout.",
        "- A message reads `<host>:<port>: <message>`. When a gRPC failure is matched by its code alone, gRPC's own",
        "  details follow in parentheses (on one line, at most 200 characters, with the call's secrets masked).",
        "",
        "## Summary",
        "",
        "| error_type | retryable | raised for |",
        "|---|---|---|",
    ]
    for name in sorted(types):
        rows = types[name]["rows"]
        flags = {spec.retryable for _key, spec in rows}
        retryable = yes_no(flags.pop()) if len(flags) == 1 else "depends on the cause"
        causes = "; ".join(describe_key(key, errors.ERROR_TABLE) for key, _spec in rows)
        lines.append("| [`%s`](#%s) | %s | %s |" % (name, anchor(name), retryable, cell(causes)))
    for name in sorted(outside):
        summary = outside[name][0].rstrip(".")
        lines.append("| [`%s`](#%s) | no | %s |" % (name, anchor(name), cell(summary[:1].lower() + summary[1:])))

    lines += ["", "## Error types", ""]
    for name in sorted(types):
        cls = types[name]["class"]
        lines += ["### %s" % name, "", "%s." % lineage(errors, cls)]
        doc = first_line(cls.__doc__)
        if doc:
            lines[-1] += " " + doc
        lines += ["", "| raised for | retryable | message |", "|---|---|---|"]
        for key, spec in types[name]["rows"]:
            lines.append("| %s | %s | %s |" % (cell(describe_key(key, errors.ERROR_TABLE)), yes_no(spec.retryable), cell(spec.message)))
        lines.append("")

    lines += [
        "## Raised outside the error table",
        "",
        "These are never retried; they are raised before the robot is contacted.",
        "",
    ]
    for name in sorted(outside):
        text, chain, files = outside[name]
        lines += ["### %s" % name, ""]
        lines.append(("%s. " % chain if chain else "") + text[:1].upper() + text[1:].rstrip(".") + ".")
        lines += ["", "Source: %s." % ", ".join("`%s`" % path for path in files), ""]

    lines += [
        "## How a gRPC failure is matched",
        "",
        "The rows for gRPC failures are tried in this order; the first whose code is the call's code (or any code)",
        "and whose marker, if it has one, occurs in gRPC's details text wins.",
        "",
        "| order | gRPC code | marker in details | error_type | retryable |",
        "|---|---|---|---|---|",
    ]
    for number, (key, spec) in enumerate(errors.ERROR_TABLE_GRPC_ROWS, 1):
        code = "`%s`" % key[1] if key[1] else "any"
        marker = "`%s`" % cell(key[2]) if key[2] else "-"
        lines.append("| %d | %s | %s | `%s` | %s |" % (number, code, marker, spec.error_type, yes_no(spec.retryable)))
    lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale, writing nothing")
    parser.add_argument("--output", default=OUTPUT, help="file to write or check (default: docs/error-reference.md)")
    args = parser.parse_args()
    text = render(load_errors())
    try:
        with open(args.output, encoding="utf-8") as handle:
            current = handle.read()
    except FileNotFoundError:
        current = None
    if args.check:
        if current != text:
            print("%s is stale: run python scripts/generate_error_reference.py" % os.path.relpath(args.output), file=sys.stderr)
            return 1
        return 0
    if current != text:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
        print("wrote %s" % os.path.relpath(args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
