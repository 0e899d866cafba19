# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ca_cert bundle: only a regular file, never a blocking read, at most 1 MiB, every block a certificate."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import pty
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ansible_collections.spot.auth.plugins.module_utils import _client, _errors
from ansible_collections.spot.auth.plugins.module_utils._client import AuthClient, read_ca_bundle
from ansible_collections.spot.auth.plugins.module_utils._options import settings_from
from ansible_collections.spot.auth.tests.unit.conftest import MINTED, PASSWORD, COLLECTION_ROOT

MIB = 1024 * 1024
JUNK_BLOCK = b"-----BEGIN CERTIFICATE-----\njunk\n-----END CERTIFICATE-----\n"
# What a bundle may hold between its certificates: openssl's descriptions, notes, in any language.
COMMENT = "# Überprüfte Wurzel — 信頼されたルート, subject=/CN=spot.auth unit-test CA\n".encode("utf-8")
BOUND_SECONDS = 10  # a refusal is immediate; anything near this long is a blocked read
COLLECTIONS_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(COLLECTION_ROOT)))


def write(path, data):
    with open(str(path), "wb") as handle:
        handle.write(data)
    return str(path)


def bounded(function, *args, seconds=BOUND_SECONDS):
    """Run ``function(*args)`` in a daemon thread for at most ``seconds``: (finished, result, exception, elapsed)."""
    box = {}

    def run():
        try:
            box["result"] = function(*args)
        except BaseException as exc:  # handed to the test, whatever it is
            box["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, name="read-ca-bundle", daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), box.get("result"), box.get("error"), time.monotonic() - started


def release_fifo_reader(path):
    """Let a reader blocked on the FIFO ``path`` go: a writer comes and leaves, so it reads end-of-file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # no reader is waiting
    os.close(fd)


def assert_refused_at_once(outcome, reason):
    finished, result, error, elapsed = outcome
    assert finished, "the read blocked for %d s instead of refusing the file" % BOUND_SECONDS
    assert isinstance(error, _errors.InvalidOptionError), (result, error)
    assert error.option == "ca_cert" and reason in str(error), str(error)
    assert elapsed < 2.0, elapsed


# -- only a regular file, never a blocking read --------------------------------------------------

def test_a_fifo_is_refused_at_once_instead_of_blocking_forever(tmp_path):
    fifo = str(tmp_path / "ca.pem")
    os.mkfifo(fifo)
    try:
        assert_refused_at_once(bounded(read_ca_bundle, fifo), "is not a regular file")
        # The option check that runs before any network call refuses it the same way.
        params = {"hostname": "127.0.0.1", "username": "admin", "password": PASSWORD, "ca_cert": fifo}
        assert_refused_at_once(bounded(settings_from, params), "is not a regular file")
    finally:
        release_fifo_reader(fifo)


def test_a_symlink_to_a_fifo_is_refused_at_once(tmp_path):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    os.symlink(fifo, str(tmp_path / "ca.pem"))
    try:
        assert_refused_at_once(bounded(read_ca_bundle, str(tmp_path / "ca.pem")), "is not a regular file")
    finally:
        release_fifo_reader(fifo)


@pytest.mark.parametrize("kind", ["directory", "/dev/zero", "/dev/null", "unix socket"])
def test_what_is_not_a_regular_file_is_refused(tmp_path, kind, pki):
    if kind == "directory":
        path = str(tmp_path / "certs")
        os.mkdir(path)
        write(os.path.join(path, "ca.pem"), pki.roots)  # even with a certificate inside
    elif kind == "unix socket":
        path = str(tmp_path / "ca.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
    else:
        path = kind
    try:
        assert_refused_at_once(bounded(read_ca_bundle, path), "%s is not a regular file" % path)
    finally:
        if kind == "unix socket":
            listener.close()


READER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from ansible_collections.spot.auth.plugins.module_utils._client import read_ca_bundle
    try:
        print(json.dumps({"bytes": len(read_ca_bundle(sys.argv[2]))}))
    except Exception as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
""")


def read_in_a_process(path, seconds=BOUND_SECONDS, **popen):
    """What read_ca_bundle(path) does in a fresh interpreter, given at most ``seconds`` (None when it did not end)."""
    process = subprocess.Popen([sys.executable, "-c", READER, COLLECTIONS_ROOT, path], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, **popen)
    try:
        out, err = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=30)
        return None
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return json.loads(out.decode())


def test_dev_stdin_of_a_pipe_nobody_writes_to_is_refused_at_once():
    # /dev/stdin when ansible-playbook's input is a pipe or a terminal: a read would wait for input forever.
    reader, writer = os.pipe()  # the writing end stays open, and nothing is written
    try:
        answer = read_in_a_process("/dev/stdin", stdin=reader)
    finally:
        os.close(reader)
        os.close(writer)
    assert answer is not None, "reading /dev/stdin blocked"
    assert answer["error"] == "InvalidOptionError" and "/dev/stdin is not a regular file" in answer["message"], answer


def test_a_terminal_is_refused_at_once():
    controller, terminal = pty.openpty()
    try:
        path = os.ttyname(terminal)
        answer = read_in_a_process(path, start_new_session=True)  # a session leader: it could take the terminal
    finally:
        os.close(terminal)
        os.close(controller)
    assert answer is not None, "reading the terminal %s blocked" % path
    assert answer["error"] == "InvalidOptionError" and "is not a regular file" in answer["message"], answer


def test_a_regular_file_through_a_symlink_is_read(tmp_path, pki):
    real = write(tmp_path / "real.pem", pki.roots)
    os.symlink(real, str(tmp_path / "ca.pem"))
    assert read_ca_bundle(str(tmp_path / "ca.pem")) == pki.roots


# -- at most 1 MiB -------------------------------------------------------------------------------

def test_a_bundle_over_one_mib_is_refused(tmp_path, pki):
    data = pki.roots + COMMENT * (MIB // len(COMMENT) + 1)
    path = write(tmp_path / "big.pem", data[:MIB + 1])
    with pytest.raises(_errors.InvalidOptionError, match=r"ca_cert: .*big\.pem is larger than the 1 MiB"):
        read_ca_bundle(path)


def test_a_bundle_of_exactly_one_mib_is_read(tmp_path, pki):
    padding = b"#" * (MIB - len(pki.roots) - 1) + b"\n"
    path = write(tmp_path / "full.pem", pki.roots + padding)
    assert os.path.getsize(path) == MIB
    assert read_ca_bundle(path) == pki.roots


def test_a_huge_sparse_file_is_refused_without_reading_it(tmp_path, pki):
    path = write(tmp_path / "sparse.pem", pki.roots)
    os.truncate(path, 64 * 1024 * MIB)  # 64 GiB of holes
    started = time.monotonic()
    with pytest.raises(_errors.InvalidOptionError, match="is larger than the 1 MiB"):
        read_ca_bundle(path)
    assert time.monotonic() - started < 2.0


# -- every block a certificate, and only the certificates returned -------------------------------

def test_comments_between_certificates_are_fine_and_only_the_certificates_are_returned(tmp_path, pki):
    other = pki.other_ca.cert_pem
    path = write(tmp_path / "bundle.pem", COMMENT + pki.roots + b"\n" + COMMENT + COMMENT + other + COMMENT)
    data = read_ca_bundle(path)
    assert data == pki.roots + other
    assert "Überprüfte".encode("utf-8") not in data and b"#" not in data


def test_crlf_line_endings_are_fine(tmp_path, pki):
    path = write(tmp_path / "windows.pem", (COMMENT + pki.roots).replace(b"\n", b"\r\n"))
    data = read_ca_bundle(path)
    assert data.replace(b"\r\n", b"\n") == pki.roots and COMMENT.strip() not in data


@pytest.mark.parametrize("where", ["last", "first"])
def test_a_junk_certificate_block_is_refused_and_named(tmp_path, pki, where):
    blocks = [pki.roots, JUNK_BLOCK] if where == "last" else [JUNK_BLOCK, pki.roots]
    path = write(tmp_path / "bundle.pem", COMMENT.join(blocks))
    number = 2 if where == "last" else 1
    with pytest.raises(_errors.InvalidOptionError,
                       match=r"ca_cert: .*bundle\.pem holds a certificate block that is not a valid X\.509 certificate "
                             r"\(block %d of 2\)" % number):
        read_ca_bundle(path)


@pytest.mark.parametrize("block", [
    b"-----BEGIN CERTIFICATE-----\nTWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvcmsu\n-----END CERTIFICATE-----",
    b"-----BEGIN CERTIFICATE-----\n\xc3\xbc\xc3\xa9\n-----END CERTIFICATE-----",
    b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----",
], ids=["base64 that is not DER", "non-ASCII", "empty"])
def test_other_blocks_that_are_no_certificate_are_refused(tmp_path, pki, block):
    path = write(tmp_path / "bundle.pem", pki.roots + block + b"\n")
    with pytest.raises(_errors.InvalidOptionError, match=r"not a valid X\.509 certificate \(block 2 of 2\)"):
        read_ca_bundle(path)


def test_a_truncated_certificate_is_refused(tmp_path, pki):
    lines = pki.roots.splitlines()
    truncated = b"\n".join(lines[:len(lines) // 2] + lines[-1:]) + b"\n"
    path = write(tmp_path / "bundle.pem", pki.other_ca.cert_pem + truncated)
    with pytest.raises(_errors.InvalidOptionError, match=r"\(block 2 of 2\)"):
        read_ca_bundle(path)


def test_a_bundle_with_a_junk_block_is_refused_before_any_request(tmp_path, pki, robot_factory):
    robot = robot_factory()
    path = write(tmp_path / "bundle.pem", pki.roots + JUNK_BLOCK)
    params = {"hostname": "127.0.0.1", "port": robot.port, "username": "admin", "password": PASSWORD,
              "ca_cert": path, "retries": 0, "timeout": 5}
    with pytest.raises(_errors.InvalidOptionError, match=r"\(block 2 of 2\)"):
        settings_from(params)
    # A delegated handshake checks the file where it runs: the client refuses it there, still before any request.
    settings = settings_from(params, runs_here=False)
    with pytest.raises(_errors.InvalidOptionError, match=r"\(block 2 of 2\)"):
        settings.client()
    assert robot.requests == []


def test_the_returned_certificates_are_trusted_for_the_handshake(tmp_path, pki, robot_factory):
    robot = robot_factory()
    path = write(tmp_path / "bundle.pem", COMMENT + pki.other_ca.cert_pem + COMMENT + pki.roots + COMMENT)
    with AuthClient("127.0.0.1", robot.port, root_certificates=read_ca_bundle(path), timeout=10, retries=0) as client:
        assert client.auth("admin", PASSWORD) == MINTED


def test_a_bundle_of_unterminated_blocks_is_refused_at_once(tmp_path):
    path = write(tmp_path / "begins.pem", (b"-----BEGIN CERTIFICATE-----\n" * 40000)[:MIB])
    answer = read_in_a_process(path, seconds=5)
    assert answer is not None, "checking a bundle under the size limit took more than 5 s"
    assert answer["error"] == "InvalidOptionError", answer


def test_a_file_replaced_with_the_same_size_and_time_is_read_again(tmp_path, pki):
    size = 4096

    def bundle(certificate):
        return certificate + b"#" * (size - len(certificate) - 1) + b"\n"

    path = write(tmp_path / "ca.pem", bundle(pki.roots))
    times = os.stat(path).st_mtime_ns
    assert read_ca_bundle(path) == pki.roots
    replacement = write(tmp_path / "new.pem", bundle(pki.other_ca.cert_pem))
    os.utime(replacement, ns=(times, times))
    os.replace(replacement, path)  # same path, size and time: another file (inode)
    assert read_ca_bundle(path) == pki.other_ca.cert_pem


def test_a_bundle_is_read_once_per_file(tmp_path, pki, monkeypatch):
    path = write(tmp_path / "ca.pem", COMMENT + pki.roots)
    first = read_ca_bundle(path)
    reads = []
    real_read = os.read
    monkeypatch.setattr(_client.os, "read", lambda fd, size: reads.append(size) or real_read(fd, size))
    assert read_ca_bundle(path) is first and reads == []
