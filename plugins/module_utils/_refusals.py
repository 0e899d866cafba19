# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Refused credentials remembered across runs, beside the token cache's entries.

A run every 5 minutes with a wrong password would otherwise send it every 5 minutes, and lock the
account at the sixth run. So a refusal is recorded in ``<entry>.refused`` (0600, in the 0700 cache
directory) as a salted, slow hash of the credential, never the credential itself, with the answer's
fields and when it was given. Until ``refusal_ttl`` seconds have passed, the same credential is not
sent to that robot for that user again: the handshake fails at once with the original error type.
A different credential is sent. A lockout blocks every credential of the user for its 60 seconds.

The file is read and rewritten under an exclusive ``flock``, so concurrent runs do not lose records.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import hashlib
import hmac
import json
import math
import os
import stat
import time

from ansible_collections.spot.auth.plugins.module_utils._errors import (
    ExpiredApplicationTokenError, InvalidApplicationTokenError, InvalidLoginError, InvalidTokenError,
    TemporarilyLockedOutError, error_from_result)

# Answers that must not be met by sending the same credential again.
REFUSALS = (InvalidLoginError, InvalidTokenError, TemporarilyLockedOutError,
            InvalidApplicationTokenError, ExpiredApplicationTokenError)
LOCKOUT_SECONDS = 60.0  # protocol: a lockout ends by itself after a minute
DEFAULT_TTL = 3600
MAX_TTL = 7 * 24 * 3600
_ITERATIONS = 20000  # a few milliseconds per check, and only where a robot refused something
_MAX_RECORDS = 32
_MAX_FILE_BYTES = 64 * 1024
_ANY_CREDENTIAL = "*"
_LAST_TIME = 253402300799  # 9999-12-31T23:59:59Z: what time.gmtime can show


class RefusalFileError(Exception):
    """The record file failed a safety check; the message names the path, never a secret."""


def credential_digest(salt, credential):
    """The salted, slow hash a refusal is recorded under: ``credential`` is the tuple of secrets sent."""
    material = "\0".join(part or "" for part in credential).encode("utf-8", "surrogatepass")
    return hashlib.pbkdf2_hmac("sha256", material, salt, _ITERATIONS).hex()


class RefusalMemory:
    """The refusals recorded for one robot and user, in ``path``."""

    def __init__(self, path, ttl, clock=time.time):
        self.path = path
        self.ttl = ttl
        self._clock = clock

    def check(self, credential):
        """Raise the remembered refusal of ``credential`` (a tuple of secrets) while it stands; else return."""
        data = self._read()
        if not data:
            return
        now = self._clock()
        salt = bytes.fromhex(data.get("salt", ""))
        digest = None
        for record in data.get("refusals", []):
            if self._until(record) <= now:
                continue
            if record.get("digest") != _ANY_CREDENTIAL:
                digest = digest or credential_digest(salt, credential)
                if not hmac.compare_digest(record.get("digest", ""), digest):
                    continue
            raise self._recalled(record)

    def _until(self, record):
        """When a record stops holding a credential back: a lower refusal_ttl than it was made with shortens it."""
        if record["digest"] == _ANY_CREDENTIAL:
            return record["until"]
        return min(record["until"], record["at"] + self.ttl)

    def record(self, credential, error):
        """Remember that ``credential`` got the refusal ``error`` (nothing for other errors)."""
        if not isinstance(error, REFUSALS):
            return
        now = self._clock()
        locked = isinstance(error, TemporarilyLockedOutError)
        fields = error.to_result()

        def change(data):
            salt = bytes.fromhex(data.setdefault("salt", os.urandom(16).hex()))
            kept = [r for r in data.get("refusals", []) if self._until(r) > now]
            kept.append({"digest": _ANY_CREDENTIAL if locked else credential_digest(salt, credential),
                         "at": now, "until": now + (LOCKOUT_SECONDS if locked else self.ttl),
                         "error": {name: fields[name] for name in ("msg", "error_type", "status", "grpc_code", "hostname")}})
            data["refusals"] = kept[-_MAX_RECORDS:]
            return data

        self._update(change)

    def forget(self, credential):
        """The robot accepted ``credential``: drop what was recorded against it (a lockout has ended too)."""
        data = self._read()
        if not data or not data.get("refusals"):
            return  # the usual case: nothing recorded, nothing to write

        def change(data):
            salt = bytes.fromhex(data.get("salt", ""))
            digest = credential_digest(salt, credential)
            data["refusals"] = [r for r in data.get("refusals", [])
                                if r["digest"] not in (digest, _ANY_CREDENTIAL) and self._until(r) > self._clock()]
            return data

        self._update(change)

    def _recalled(self, record):
        fields = dict(record.get("error") or {})
        refused_at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.get("at", 0)))
        until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self._until(record)))
        if record.get("digest") == _ANY_CREDENTIAL:
            why = "the user was locked out at %s; no login is sent before %s" % (refused_at, until)
        else:
            why = ("refused at %s and not sent again before %s, unless a different credential is given "
                   "(refusal_ttl; recorded in %s)" % (refused_at, until, self.path))
        fields["msg"] = "%s (%s)" % (fields.get("msg") or "refused", why)
        fields["retryable"] = False
        return error_from_result(fields)

    # -- the file -------------------------------------------------------------------------------

    def _read(self):
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise RefusalFileError("cannot read %s (%s)" % (self.path, exc.strerror)) from None
        try:
            self._check(fd)
            fcntl.flock(fd, fcntl.LOCK_SH)
            return _decode(os.read(fd, _MAX_FILE_BYTES + 1))
        finally:
            os.close(fd)

    def _update(self, change):
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise RefusalFileError("cannot write %s (%s)" % (self.path, exc.strerror)) from None
        try:
            self._check(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = change(_decode(os.read(fd, _MAX_FILE_BYTES + 1)) or {})
            payload = json.dumps(data, sort_keys=True).encode("utf-8")
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _check(self, fd):
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise RefusalFileError("%s is not a private regular file of this user; refusing it" % self.path)


def _decode(raw):
    """The record file's content, or {} when it is empty, too big or not ours to understand (it is replaced)."""
    if not raw or len(raw) > _MAX_FILE_BYTES:
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
        bytes.fromhex(data.get("salt", ""))
    except (ValueError, TypeError, UnicodeDecodeError, AttributeError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("refusals", []), list):
        return {}
    data["refusals"] = [record for record in data.get("refusals", []) if _well_formed(record)]
    return data


_REFUSAL_TYPES = frozenset(cls.__name__ for cls in REFUSALS)


def _well_formed(record):
    """Whether a record is one this module writes: a refusal type, and real times no further apart than allowed."""
    if not isinstance(record, dict) or not isinstance(record.get("digest"), str) or not isinstance(record.get("error"), dict):
        return False
    if record["error"].get("error_type") not in _REFUSAL_TYPES:
        return False
    times = [record.get(name) for name in ("at", "until")]
    if not all(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) for value in times):
        return False
    longest = LOCKOUT_SECONDS if record["digest"] == _ANY_CREDENTIAL else MAX_TTL
    return 0 <= times[0] <= times[1] <= times[0] + longest and times[1] < _LAST_TIME
