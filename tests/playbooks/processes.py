# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The process table as the signal and leftover tests read it (Linux /proc), and a bounded wait."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import signal
import time


def wait_until(predicate, seconds, interval=0.1):
    """Poll ``predicate`` for at most ``seconds``; its last value."""
    give_up = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() > give_up:
            return value
        time.sleep(interval)


def read_proc(pid, name):
    try:
        with open("/proc/%d/%s" % (pid, name), "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name (state first), or [] when it is gone."""
    parts = read_proc(pid, "stat").rsplit(b")", 1)
    return parts[1].split() if len(parts) == 2 else []


def start_ticks(pid):
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or None."""
    fields = stat_fields(pid)
    return int(fields[19]) if fields else None


def alive(pid, ticks):
    """Whether process ``pid`` started at ``ticks`` still runs (a zombie has ended: its parent has yet to reap it)."""
    fields = stat_fields(pid)
    return bool(fields) and int(fields[19]) == ticks and fields[0] not in (b"Z", b"X")


def processes():
    """{pid: (parent pid, command line)} of the processes alive now."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields:
                table[int(entry)] = (int(fields[1]), read_proc(int(entry), "cmdline"))
    return table


def descendants(root, table=None):
    """pids of the processes below ``root``."""
    children = {}
    for pid, (ppid, _cmdline) in (table or processes()).items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:  # each pid is visited once: bounded by the process table
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def kill_quietly(pid, ticks=None):
    """SIGKILL ``pid`` if it is still the process it was (same start time)."""
    if ticks is not None and start_ticks(pid) != ticks:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def spot_auth_entries(tmpdir):
    """Everything named ``spot-auth-*`` in ``tmpdir``: the users' directories."""
    return sorted(name for name in os.listdir(str(tmpdir)) if name.startswith("spot-auth-"))
