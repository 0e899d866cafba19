# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The run-wide session: every handshake of one ansible-playbook run goes through one ``Session``.

``obtain_all`` is the front door of the action plugin and the lookup. It hands the handshakes to the
run's session agent (``_agent``), a local process shared by every fork, task, loop, lookup and role
of the run, so a refused credential is never sent twice and a token is never minted twice. When the
agent cannot start (or ``session`` is false) the same ``Session`` runs in the calling process, with a
warning, and remembers only for that process.

``Session`` holds the run's memory (``RunMemory``), coalesces identical requests (one RPC, every
waiter gets its result) and bounds the handshakes in flight, both per call (``concurrency``) and
overall (what the open-file limit allows).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import queue
import threading
import time
from concurrent.futures import Future

from ansible_collections.spot.auth.plugins.module_utils import _errors, _handshake
from ansible_collections.spot.auth.plugins.module_utils._client import settle, worst_case_seconds
from ansible_collections.spot.auth.plugins.module_utils._options import DEFAULT_CONCURRENCY
# Imported here, not where it is used: the action plugin is imported once by ansible-playbook, and what
# it imports is inherited by every forked worker instead of being compiled again in each of them.
from ansible_collections.spot.auth.plugins.plugin_utils import _agent
from ansible_collections.spot.auth.plugins.plugin_utils._run_memory import RunMemory

# Descriptors kept free for everything else, and descriptors one handshake in flight may hold.
_RESERVED_FDS = 128
_FDS_PER_HANDSHAKE = 3
# Slack on top of the documented handshake bound, for the controller's own work.
_SLACK_SECONDS = 30.0


def raise_open_file_limit():
    """Raise the soft open-file limit to the hard one where allowed; returns the soft limit in force."""
    try:
        import resource
    except ImportError:  # not a POSIX controller
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= hard:
        return min(soft, hard) if soft != resource.RLIM_INFINITY else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    except (ValueError, OSError):
        return soft


def handshake_slots(open_file_limit):
    """How many handshakes may be in flight at once within ``open_file_limit`` descriptors."""
    return max(4, (open_file_limit - _RESERVED_FDS) // _FDS_PER_HANDSHAKE)


def deadline_for(settings_list, concurrency):
    """Seconds by which every handshake of ``settings_list`` has ended, whatever the robots do."""
    if not settings_list:
        return _SLACK_SECONDS
    one = max(worst_case_seconds(s.timeout, s.retries) for s in settings_list)
    waves = math.ceil(len(settings_list) / float(max(1, min(concurrency, len(settings_list)))))
    return one * waves + _SLACK_SECONDS


class _Handshake:
    """One handshake in flight: its settings, client and the future every waiter shares."""

    __slots__ = ("key", "settings", "client", "shared", "future", "slot")

    def __init__(self, key, settings, shared, slot):
        self.key = key
        self.settings = settings
        self.shared = shared
        self.slot = slot  # whether it holds one of the session's slots
        self.client = None
        self.future = None


class Session:
    """Handshakes with a memory, coalescing and a bound on how many are in flight."""

    def __init__(self, slots=None):
        self.memory = RunMemory()
        self._lock = threading.Lock()
        self._pending = {}
        self._slots = threading.BoundedSemaphore(slots or handshake_slots(raise_open_file_limit()))

    def obtain_many(self, settings_list, concurrency=DEFAULT_CONCURRENCY):
        """One ``Outcome`` or ``SpotAuthError`` per settings, in order, within ``deadline_for``."""
        deadline = time.monotonic() + deadline_for(settings_list, concurrency)
        results = [None] * len(settings_list)
        waiting = []
        finished = queue.Queue()
        in_flight = [0]
        for index, settings in enumerate(settings_list):
            key = self.memory.key(settings)
            with self._lock:
                try:
                    token = self.memory.recall(settings, key)
                except _errors.SpotAuthError as refusal:
                    results[index] = refusal
                    continue
                if token is None:
                    shared = self._pending.get(key)
                    owner = shared is None
                    if owner:
                        shared = self._pending[key] = Future()
            if token is not None:  # from memory; the token cache asked for gets it too
                results[index] = _handshake.Outcome(token, "session", self._store(settings, token))
                continue
            waiting.append((index, settings, shared))
            if owner:
                slot = self._wait_for_slot(in_flight, concurrency, finished, deadline)
                self._start(_Handshake(key, settings, shared, slot), finished)
                in_flight[0] += 1
        while in_flight[0]:
            if not self._finish_one(finished, deadline):
                self._finish_late(finished, in_flight[0])
                break
            in_flight[0] -= 1
        for index, settings, shared in waiting:
            results[index] = self._result_of(shared, settings, deadline)
        return results

    @staticmethod
    def _store(settings, token):
        try:
            return _handshake.store_in_cache(settings, token)
        except _errors.SpotAuthError as error:  # an unusable cache directory
            return [error.message]

    def _wait_for_slot(self, in_flight, concurrency, finished, deadline):
        """Wait until this call and the session may start one more handshake; True if a slot was taken."""
        while True:
            if in_flight[0] < concurrency and self._slots.acquire(blocking=False):
                return True
            if in_flight[0]:
                # Finish one of ours: it frees a slot of this call and of the session.
                if self._finish_one(finished, deadline):
                    in_flight[0] -= 1
                    continue
            elif self._slots.acquire(timeout=0.05):
                return True
            if time.monotonic() > deadline:
                return False  # over the bound: go on, the handshake's own deadline still applies

    def _start(self, handshake, finished):
        try:
            handshake.client = handshake.settings.client()
            handshake.future = _handshake.obtain_async(handshake.settings, handshake.client)
        except Exception as exc:  # an unusable cache directory or CA bundle, or no descriptor left
            handshake.future = Future()
            handshake.future.set_exception(_as_spot_error(exc, handshake.settings))
        handshake.future.add_done_callback(lambda _future: finished.put(handshake))

    def _finish_one(self, finished, deadline):
        """Wait for one of this call's handshakes to end and complete it; False past the deadline."""
        try:
            handshake = finished.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return False
        self._complete(handshake)
        return True

    def _complete(self, handshake):
        """Record a finished handshake, free what it held and hand its result to every waiter; never raises."""
        settings = handshake.settings
        outcome = error = None
        try:
            if handshake.client is not None:
                handshake.client.close()
        except Exception:
            pass  # a channel that fails to close must not keep its waiters waiting
        if handshake.slot:
            self._slots.release()
        try:
            error = handshake.future.exception()
            if error is None:
                outcome = handshake.future.result()
            with self._lock:
                self.memory.remember(settings, token=outcome.token if outcome else None, error=error, key=handshake.key)
        except Exception as exc:
            outcome, error = None, exc
        finally:
            with self._lock:
                if self._pending.get(handshake.key) is handshake.shared:
                    del self._pending[handshake.key]
        settle(handshake.shared, outcome, None if error is None else _as_spot_error(error, settings))

    def _finish_late(self, finished, count):
        """Complete, in the background, handshakes still running past the bound (their waiters have gone)."""
        def drain():
            for _unused in range(count):
                if not self._finish_one(finished, time.monotonic() + _SLACK_SECONDS):
                    return
        threading.Thread(target=drain, name="spot-auth-late-handshakes", daemon=True).start()

    @staticmethod
    def _result_of(shared, settings, deadline):
        try:
            return shared.result(timeout=max(0.0, deadline - time.monotonic()))
        except _errors.SpotAuthError as error:
            return error
        except Exception:  # the bound passed (or a waiter's owner went away)
            return _errors.error_for_grpc("DEADLINE_EXCEEDED", "", settings.hostname, settings.port)


def _as_spot_error(exc, settings):
    if isinstance(exc, _errors.SpotAuthError):
        return exc
    return _errors.unexpected_error(exc, settings.hostname, settings.port, settings.secrets())


_PROCESS_SESSION = []
_PROCESS_SESSION_LOCK = threading.Lock()


def process_session():
    """The ``Session`` of this process, for when the run's agent is off or cannot start."""
    with _PROCESS_SESSION_LOCK:
        if not _PROCESS_SESSION:
            _PROCESS_SESSION.append(Session())
        return _PROCESS_SESSION[0]


def obtain_all(settings_list, concurrency=DEFAULT_CONCURRENCY, warn=None):
    """One ``Outcome`` or ``SpotAuthError`` per settings, through the run's session agent if possible."""
    if settings_list and all(settings.session for settings in settings_list):
        try:
            return _agent.ask(settings_list, concurrency)
        except _agent.SessionUnavailable as reason:
            if warn is not None:
                warn("spot.auth: the run's session agent is unavailable (%s); authenticating in this process, which "
                     "remembers refusals and tokens for itself only (see session in ansible-doc spot.auth.token)" % reason)
    return process_session().obtain_many(settings_list, concurrency)
