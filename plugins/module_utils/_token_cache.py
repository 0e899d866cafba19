# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A directory of user tokens that survives between runs and processes.

Layout: one file per robot and user holding the raw token, as the Spot SDK's
``TokenCacheFilesystem`` does. A robot whose serial is known is stored as ``<serial>.<username>.jwt``,
the SDK's own name, so a bosdyn-client program can read the entry; otherwise as
``<hostname>_<port>.<username>.jwt``.

Safety: the directory is created 0700 and refused when it is a symlink, belongs to another user or
is open to others. Entries are created 0600 (never briefly wider), written to a temporary file in the
same directory, fsynced and renamed into place, so concurrent writers and a writer killed half way
never leave a torn or wider file; a temporary file left by a writer that was killed is removed by the
next process that uses the directory, once it is a minute old. An entry that is not a regular 0600
file of this user is refused; one that does not hold a usable token is ignored and replaced.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import re
import stat
import tempfile
import time

from ansible_collections.spot.auth.plugins.module_utils._errors import InvalidOptionError
from ansible_collections.spot.auth.plugins.module_utils._tokens import TokenTimes, usable_token

DEFAULT_MARGIN = 3600
_MAX_ENTRY_BYTES = 64 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@-]")
# A write takes milliseconds; a temporary file this old belongs to a writer that was killed.
ORPHAN_SECONDS = 60
_TEMPORARY = re.compile(r"^\..+\.jwt\..+\.tmp$")
_SWEPT = set()  # directories whose orphans this process has removed


class TokenCacheError(Exception):
    """An entry or the directory failed a safety check; the message names the path, never a token."""


def entry_name(username, hostname, port, serial=None):
    robot = serial if serial else "%s_%s" % (hostname, port)
    return "%s.%s.jwt" % (_UNSAFE.sub("_", robot), _UNSAFE.sub("_", username or "_token"))


class TokenCache:
    """Reads and writes the entries of one cache directory."""

    def __init__(self, directory, create=True):
        self.directory = os.path.abspath(os.path.expanduser(directory))
        self._checked = False
        self._create = create

    def _check_directory(self):
        if self._checked:
            return
        if self._create:
            try:
                os.makedirs(self.directory, mode=0o700)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise InvalidOptionError("token_cache", "cannot create %s (%s)" % (self.directory, exc.strerror)) from None
        try:
            info = os.lstat(self.directory)
        except OSError as exc:
            raise InvalidOptionError("token_cache", "cannot use %s (%s)" % (self.directory, exc.strerror)) from None
        if stat.S_ISLNK(info.st_mode):
            raise InvalidOptionError("token_cache", "%s is a symlink; give the real directory" % self.directory)
        if not stat.S_ISDIR(info.st_mode):
            raise InvalidOptionError("token_cache", "%s is not a directory" % self.directory)
        if info.st_uid != os.geteuid():
            raise InvalidOptionError("token_cache", "%s belongs to another user" % self.directory)
        if info.st_mode & 0o077:
            raise InvalidOptionError("token_cache", "%s is open to other users (mode %04o); it must be 0700"
                                     % (self.directory, stat.S_IMODE(info.st_mode)))
        self._checked = True
        if self.directory not in _SWEPT:
            _SWEPT.add(self.directory)
            remove_orphans(self.directory)

    def path(self, name):
        return os.path.join(self.directory, name)

    def refusal_path(self, name):
        """Where the refusals of entry ``name``'s robot and user are recorded (``<robot>.<user>.refused``)."""
        self._check_directory()
        return self.path(name[:-len(".jwt")] + ".refused" if name.endswith(".jwt") else name + ".refused")

    def read(self, name):
        """The token stored under ``name``, or None when there is none or it is unusable as a token.

        Raises TokenCacheError for an entry that fails the safety checks.
        """
        entry = self.read_entry(name)
        return entry[0] if entry else None

    def read_entry(self, name):
        """(token, time it was stored) of the entry ``name``, or None; see ``read``."""
        self._check_directory()
        path = self.path(name)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            if exc.errno == errno.ELOOP:
                raise TokenCacheError("token cache entry %s is a symlink; refusing it" % path) from None
            raise TokenCacheError("cannot read token cache entry %s (%s)" % (path, exc.strerror)) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise TokenCacheError("token cache entry %s is not a regular file; refusing it" % path)
            if info.st_uid != os.geteuid():
                raise TokenCacheError("token cache entry %s belongs to another user; refusing it" % path)
            if info.st_mode & 0o077:
                raise TokenCacheError("token cache entry %s is readable by others (mode %04o); refusing it"
                                      % (path, stat.S_IMODE(info.st_mode)))
            data = os.read(fd, _MAX_ENTRY_BYTES + 1)
        finally:
            os.close(fd)
        try:
            token = data.decode("ascii").strip()
        except UnicodeDecodeError:
            return None
        if len(data) > _MAX_ENTRY_BYTES or not usable_token(token) or TokenTimes(token).expires_at is None:
            return None  # corrupt or foreign: the next write replaces it
        return token, info.st_mtime

    def write(self, name, token):
        """Store ``token`` under ``name`` atomically, mode 0600 from creation."""
        if not usable_token(token):
            raise ValueError("not a token that can be stored (printable ASCII, at most 16384 characters)")
        self._check_directory()
        # mkstemp creates the file O_EXCL with mode 0600 whatever the umask.
        fd, temp_path = tempfile.mkstemp(prefix=".%s." % name, suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(token.encode("ascii"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_path, self.path(name))
        except BaseException:
            try:
                os.unlink(temp_path)
            except OSError:
                pass
            raise
        self._fsync_directory()

    def _fsync_directory(self):
        try:
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


def remove_orphans(directory, now=None):
    """Remove temporary files older than ``ORPHAN_SECONDS`` that killed writers left in ``directory``."""
    now = time.time() if now is None else now
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not _TEMPORARY.match(name):
            continue
        path = os.path.join(directory, name)
        try:
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and now - info.st_mtime > ORPHAN_SECONDS:
                os.unlink(path)
        except OSError:
            pass  # gone already, or another process's business
