# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TLS without certificate verification, for ``validate_certs: false``.

grpc Python cannot skip certificate verification, so gRPC talks plaintext HTTP/2 to a Unix socket
in a private directory and this relay carries the bytes over a TLS connection that Python's ``ssl``
opens without verifying the robot. The connection is still encrypted; only the robot's identity
is unchecked, which is exactly what the option means.

The directory, in $TMPDIR (or /tmp when $TMPDIR is too long for a socket path), is named after its
owner process (pid and start time). It is removed when the relay
closes or the process exits; one left by a process that was killed is removed by the next relay
anyone of this user opens, once its owner is gone and it is a minute old.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import atexit
import os
import re
import selectors
import shutil
import socket
import ssl
import stat
import tempfile
import threading
import time

from ansible_collections.spot.auth.plugins.module_utils._process import own_identity, process_is_alive

_CHUNK = 65536
_SEND_TIMEOUT = 30.0
_PREFIX = "spot-auth-relay-"
_DIRECTORY_NAME = re.compile(r"^spot-auth-relay-(\d+)-(\d+)-")
LEFTOVER_SECONDS = 60
_OPEN_RELAYS = set()  # relays of this process, closed at exit
_REAPED = []  # whether this process has looked for leftovers yet


# A Unix socket path has room for 107 bytes; where $TMPDIR is too long for it, /tmp is used.
_MAX_SOCKET_PATH = 107
_SOCKET_NAME = "relay.sock"
_FALLBACK_BASE = "/tmp"


def _base_for(prefix):
    base = tempfile.gettempdir()
    longest = len(os.fsencode(os.path.join(base, prefix + "x" * 8, _SOCKET_NAME)))  # mkdtemp adds 8 characters
    return base if longest <= _MAX_SOCKET_PATH else _FALLBACK_BASE


def remove_leftover_directories(base=None, now=None):
    """Remove relay directories of this user whose owner process is gone and that are a minute old."""
    for directory in {base} if base else {tempfile.gettempdir(), _FALLBACK_BASE}:
        _remove_leftovers_in(directory, time.time() if now is None else now)


def _remove_leftovers_in(base, now):
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        match = _DIRECTORY_NAME.match(name)
        if not match or process_is_alive(int(match.group(1)), int(match.group(2))):
            continue
        path = os.path.join(base, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and now - info.st_mtime > LEFTOVER_SECONDS:
            shutil.rmtree(path, ignore_errors=True)


@atexit.register
def _close_open_relays():
    for relay in list(_OPEN_RELAYS):
        if relay.owner == os.getpid():  # a forked child inherits the set, not the relays
            relay.close()


class UnverifiedTlsRelay:
    """Listens on a Unix socket; each connection is relayed to ``hostname:port`` over unverified TLS."""

    def __init__(self, hostname, port, authority, connect_timeout=10.0):
        self._address = (hostname, port)
        self._authority = authority
        self._connect_timeout = connect_timeout
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._context.check_hostname = False
        self._context.verify_mode = ssl.CERT_NONE
        self._context.set_alpn_protocols(["h2"])
        if not _REAPED:
            _REAPED.append(True)
            remove_leftover_directories()
        self.owner, start = own_identity()
        prefix = "%s%d-%d-" % (_PREFIX, self.owner, start)
        self._directory = tempfile.mkdtemp(prefix=prefix, dir=_base_for(prefix))  # mode 0700
        self._path = os.path.join(self._directory, _SOCKET_NAME)
        try:
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._listener.bind(self._path)
            self._listener.listen(8)
        except BaseException:
            shutil.rmtree(self._directory, ignore_errors=True)
            raise
        self._closed = False
        _OPEN_RELAYS.add(self)
        thread = threading.Thread(target=self._accept_loop, name="spot-auth-tls-relay", daemon=True)
        thread.start()

    @property
    def target(self):
        return "unix:" + self._path

    def close(self):
        self._closed = True
        _OPEN_RELAYS.discard(self)
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        shutil.rmtree(self._directory, ignore_errors=True)

    def _accept_loop(self):
        while not self._closed:
            try:
                local, _address = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(local,), daemon=True).start()

    def _relay(self, local):
        try:
            raw = socket.create_connection(self._address, timeout=self._connect_timeout)
            remote = self._context.wrap_socket(raw, server_hostname=self._authority)
        except (OSError, ssl.SSLError):
            local.close()  # gRPC sees the connection drop and reports UNAVAILABLE
            return
        remote.setblocking(False)
        local.setblocking(False)
        peers = {local: remote, remote: local}
        selector = selectors.DefaultSelector()
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        try:
            while not self._closed:
                for key, _events in selector.select(timeout=1.0):
                    if not self._pump(key.fileobj, peers[key.fileobj]):
                        return
                if remote.pending() and not self._pump(remote, local):
                    return
        finally:
            selector.close()
            local.close()
            remote.close()

    @staticmethod
    def _pump(source, sink):
        """Move what ``source`` has to ``sink``; False once either side is closed."""
        try:
            data = source.recv(_CHUNK)
        except (ssl.SSLWantReadError, BlockingIOError):
            return True
        except OSError:
            return False
        if not data:
            return False
        sink.settimeout(_SEND_TIMEOUT)
        try:
            sink.sendall(data)
        except OSError:
            return False
        finally:
            sink.setblocking(False)
        return True
