"""The socket-directory attack: no other local user reaches a program's channel.

Another user who creates ``kleio-<uid>`` in ``XDG_RUNTIME_DIR`` (or in the temporary
directory when it is unset) before the victim runs would receive the victim's statistics and
answer its queries. ``kleio run`` must refuse such a directory with one line (exit 65) and
run nothing; and the runner drops a connection from another uid (SO_PEERCRED) even when
someone reached the socket anyway. The cases that need a second user run as root (chown,
setuid to an unused uid).
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import sys
import tempfile

import pytest

from kleio.private import UnsafeDirectory, private_dir
from kleio.private import peer_is_same_user as _same_user
from tests.faults import programs
from tests.faults.helpers import TOTALS, Run, kleio, read_report, statistics, wait_for

OTHER_UID = 12345
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")


@pytest.fixture
def runtime(monkeypatch):
    """A short private XDG_RUNTIME_DIR (a socket path must stay under ~100 bytes)."""
    base = tempfile.mkdtemp(prefix="kf", dir="/tmp")
    monkeypatch.setenv("XDG_RUNTIME_DIR", base)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def plant(base: str, attack: str) -> tuple[str, str]:
    """Prepare ``<base>/kleio-<uid>`` the way an attacker would; return (path, elsewhere)."""
    path = os.path.join(base, f"kleio-{os.getuid()}")
    elsewhere = os.path.join(base, "attacker")
    os.mkdir(elsewhere, 0o700)
    if attack == "world-writable":
        os.mkdir(path)
        os.chmod(path, 0o777)
    elif attack == "group-writable":
        os.mkdir(path)
        os.chmod(path, 0o770)
    elif attack == "symlink":
        os.symlink(elsewhere, path)
    elif attack == "file":
        with open(path, "w") as handle:
            handle.write("not a directory\n")
    elif attack == "other-user":
        os.mkdir(path, 0o700)
        os.chown(path, OTHER_UID, OTHER_UID)
    else:
        raise AssertionError(attack)
    return path, elsewhere


def snapshot(path: str) -> tuple:
    info = os.lstat(path)
    listing = sorted(os.listdir(path)) if stat.S_ISDIR(info.st_mode) else None
    return info.st_mode, info.st_uid, listing


ATTACKS = [
    "world-writable",
    "group-writable",
    "symlink",
    "file",
    pytest.param("other-user", marks=as_root),
]


@pytest.mark.parametrize(
    ("attack", "where"),
    [
        *[(attack, "xdg") for attack in ATTACKS[:-1]],
        pytest.param("other-user", "xdg", marks=as_root),
        # XDG_RUNTIME_DIR unset: the directory is made in the temporary directory, where anyone
        # can create it first (the attack of issue 7).
        ("world-writable", "tmp"),
        pytest.param("other-user", "tmp", marks=as_root),
    ],
)
def test_kleio_run_refuses_a_planted_channel_directory(lab, runtime, monkeypatch, attack, where):
    if where == "tmp":
        monkeypatch.delenv("XDG_RUNTIME_DIR")
        monkeypatch.setenv("TMPDIR", runtime)
    path, elsewhere = plant(runtime, attack)
    before, target_before = snapshot(path), snapshot(elsewhere)
    marker = os.path.join(lab.state, "ran")
    command = [sys.executable, "-c", f"open({marker!r}, 'w').close()"]
    result = kleio("run", "-q", *command, cwd=lab.repo)
    TOTALS["runs"] += 1
    lines = result.stderr.splitlines()
    assert result.returncode == 65, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert path in lines[0]
    assert not os.path.exists(marker), "the program ran"
    assert (snapshot(path), snapshot(elsewhere)) == (before, target_before)

    # Once the directory is removed, the same trial runs (the refusal left it resumable).
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)
    again = kleio("run", "-q", *command, cwd=lab.repo)
    TOTALS["runs"] += 1
    assert again.returncode == 0, again.stderr
    assert os.path.exists(marker)
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o700


def test_own_readable_channel_directory_is_made_private(lab, runtime):
    path = os.path.join(runtime, f"kleio-{os.getuid()}")
    os.mkdir(path)
    os.chmod(path, 0o755)  # what an older kleio made with the umask's mode
    result = kleio("run", "-q", sys.executable, "-c", "pass", cwd=lab.repo)
    TOTALS["runs"] += 1
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700


# -- units ---------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", ATTACKS)
def test_private_dir_refuses(tmp_path, attack):
    path, _ = plant(str(tmp_path), attack)
    with pytest.raises(UnsafeDirectory, match="channel directory"):
        private_dir(path, "channel directory")


def test_private_dir_creates_private_parents(tmp_path):
    path = tmp_path / "a" / "b"
    old = os.umask(0)
    try:
        assert private_dir(str(path), "spool directory") == str(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert private_dir(str(path), "spool directory") == str(path)  # idempotent


def test_same_user_accepts_this_user():
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        assert _same_user(left) and _same_user(right)


def fork_as(uid: int, path: str, payload: bytes) -> tuple[int, int]:
    """Fork a child that, as ``uid``, connects to ``path``, sends ``payload`` and reads
    until the other end hangs up; return its pid and the pipe its report comes on."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only system calls, then _exit
        code = 0
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(10)
            sock.connect(path)
            reply = b""
            try:
                sock.sendall(payload)
                while True:
                    data = sock.recv(4096)
                    if not data:
                        break
                    reply += data
            except OSError:  # reset or broken pipe: the runner hung up
                pass
            os.write(write_fd, b"R" + reply)
        except BaseException as error:
            os.write(write_fd, b"E" + repr(error).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def collect(pid: int, read_fd: int) -> bytes:
    """What the child of :func:`fork_as` received (it fails if it could not connect)."""
    chunks = []
    while True:
        data = os.read(read_fd, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(read_fd)
    os.waitpid(pid, 0)
    out = b"".join(chunks)
    assert out[:1] == b"R", out
    return out[1:]


def connect_as(uid: int, path: str, payload: bytes) -> bytes:
    return collect(*fork_as(uid, path, payload))


@as_root
def test_same_user_refuses_another_uid(runtime):
    os.chmod(runtime, 0o711)  # /tmp/kf...: every parent is searchable by the other user
    path = os.path.join(runtime, "s.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o666)
    listener.listen(1)
    listener.settimeout(10)
    with listener:
        child = fork_as(OTHER_UID, path, b"hello")
        conn, _ = listener.accept()
        with conn:
            assert not _same_user(conn)
    assert collect(*child) == b""


@as_root
def test_runner_drops_a_connection_from_another_user(lab, runtime):
    """Someone reached the socket anyway (here: root opened the way): nothing gets in."""
    lab.program("victim.py", programs.VICTIM)
    run = Run(["run", "-q", sys.executable, "victim.py", lab.state], cwd=lab.repo, out_dir=lab.tmp)
    ready = wait_for(
        lambda: read_report(lab.state, "ready") or run.proc.poll() is not None,
        "the program to start",
    )
    assert isinstance(ready, dict), run.stderr
    lab.pids.append(ready["pid"])
    channel = ready["channel"]
    for directory in (runtime, os.path.dirname(channel)):
        os.chmod(directory, 0o711)
    os.chmod(channel, 0o666)
    evil = b'S{"evil":1}\nQ{"op":"statistics"}\n'
    replies = [connect_as(OTHER_UID, channel, evil) for _ in range(3)]
    open(os.path.join(lab.state, "attacked"), "w").close()
    assert run.wait() == 0, run.stderr
    assert replies == [b""] * 3, "the runner answered another user"
    stats = statistics(ready["trial"], lab.repo)
    assert stats == [{"mine": i} for i in range(10)]
    warnings = [line for line in run.stderr.splitlines() if "refused a connection" in line]
    assert len(warnings) == 1, run.stderr
