# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which process owns a leftover: process identities that survive pid reuse.

A pid alone is reused; a pid with its start time (clock ticks since boot, from ``/proc``) names one
process for good. The session agent's directories and the unverified-TLS relay's directories carry
their owner's identity in their names, so whoever comes next can tell a live owner from a dead one.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os


def process_start_time(pid):
    """The start time of process ``pid`` in clock ticks since boot, or None when it does not exist."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        try:
            os.kill(pid, 0)
        except OSError as exc:
            return None if exc.errno == errno.ESRCH else 0
        return 0  # alive, on a system without /proc


def process_is_alive(pid, start):
    """Whether process ``pid`` is still the one that started at ``start`` (0: start time unknown)."""
    now = process_start_time(pid)
    return now is not None and (start == 0 or now == start)


def own_identity():
    """(pid, start time) of this process."""
    pid = os.getpid()
    return pid, process_start_time(pid) or 0
