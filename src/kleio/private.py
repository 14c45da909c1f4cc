"""Directories only the user may use: the channel's socket, the ledger, the spool.

A directory another local user created (say ``/tmp/kleio-1000`` made in advance by someone
else) would let them read a program's statistics or answer its queries. Every directory
kleio puts private data in is created with mode 0700, and one that exists already is checked,
not trusted: it must be a real directory (not a symbolic link), owned by the user, and not
writable by anyone else.
"""

from __future__ import annotations

import os
import stat

from kleio.errors import ConfigError


class UnsafeDirectory(ConfigError):
    """A directory for private data is not the user's own."""


def private_dir(path: str, what: str, *, parent_too: bool = False) -> str:
    """Create ``path`` (and its parents) private to the user, or check the existing one.

    An existing directory that the user owns but that others can read is made private
    (chmod 0700): an older kleio created its directories with the umask's mode. With
    ``parent_too``, the parent must not let others rename ``path`` away and put theirs in
    its place: not writable by others, or sticky (like ``/tmp``).

    Raises:
        UnsafeDirectory: the path is a file, a symbolic link, owned by another user, or
            writable by others, or (``parent_too``) its parent is writable by others and
            not sticky.
    """
    if parent_too:
        _check_parent(os.path.dirname(path), what)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except (FileExistsError, NotADirectoryError):
        raise UnsafeDirectory(
            f"cannot use {path} as the {what}: a file of that name is in the way",
            "remove it, or point the setting or variable that names it elsewhere",
        ) from None
    except OSError as error:
        raise UnsafeDirectory(
            f"cannot create the {what} {path}: {error.strerror or error}",
            "check the permissions of its parent directory",
        ) from None
    uid = os.getuid()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafeDirectory(
            f"the {what} {path} is not a directory but a link or a file",
            "remove it; kleio creates it private to you",
        )
    if info.st_uid != uid:
        raise UnsafeDirectory(
            f"the {what} {path} belongs to another user (uid {info.st_uid})",
            "remove it or set XDG_RUNTIME_DIR to a directory of your own",
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        raise UnsafeDirectory(
            f"the {what} {path} is writable by other users (mode {mode:o})",
            f"make it private with 'chmod 700 {path}'",
        )
    if mode & 0o077:
        os.chmod(path, 0o700)
    return path


def _check_parent(path: str, what: str) -> None:
    try:
        info = os.stat(path)
    except OSError:
        return  # private_dir says what is wrong with it
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise UnsafeDirectory(
            f"the directory {path} is writable by other users and not sticky, so the "
            f"{what} cannot be kept private there",
            "set XDG_RUNTIME_DIR to a directory of your own (mode 700)",
        )


def temp_dir() -> str:
    """The directory for temporary files, as :func:`tempfile.gettempdir` chooses it from
    ``TMPDIR``, ``TEMP`` and ``TMP`` (importing :mod:`tempfile` costs milliseconds on every
    ``kleio run``). Whatever kleio puts there goes into a :func:`private_dir`."""
    for name in ("TMPDIR", "TEMP", "TMP"):
        value = os.environ.get(name)
        if value and os.path.isabs(value) and os.path.isdir(value):
            return value
    return "/tmp"


def new_private_file(directory: str, prefix: str) -> tuple[int, str]:
    """Create a new file only the user can read in ``directory``; return ``(fd, path)``.

    Like :func:`tempfile.mkstemp`: a random name, created with ``O_EXCL`` (never an existing
    file or a link someone put there) and mode 0600.
    """
    flags = (
        os.O_RDWR
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_CLOEXEC", 0)
    )
    for _ in range(100):
        path = os.path.join(directory, prefix + os.urandom(6).hex())
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free file name in {directory}")


def peer_is_same_user(sock: object) -> bool:
    """Tell whether the peer of a connected Unix socket runs as this user (SO_PEERCRED)."""
    import _socket  # what socket.py wraps, without its import cost
    import sys

    option = getattr(_socket, "SO_PEERCRED", None)
    if option is None:  # pragma: no cover - not Linux: the private directory is the guard
        return True
    try:  # struct ucred: pid, uid, gid, three C ints
        creds = sock.getsockopt(_socket.SOL_SOCKET, option, 12)  # type: ignore[attr-defined]
    except OSError:
        return False
    return int.from_bytes(creds[4:8], sys.byteorder, signed=True) == os.getuid()


def channel_path(trial_id: str) -> str:
    """A short socket path (Unix sockets are limited to ~107 bytes) in a private directory.

    Raises:
        UnsafeDirectory: the directory exists but is not the user's own and private.
    """
    base = os.environ.get("XDG_RUNTIME_DIR") or temp_dir()
    if not os.path.isabs(base):
        base = temp_dir()
    name = f"{trial_id[:12]}-{os.getpid()}.sock"
    directory = os.path.join(base, f"kleio-{os.getuid()}")
    if len(os.path.join(directory, name).encode()) > 100:
        directory = os.path.join(temp_dir(), f"kleio-{os.getuid()}")
    private_dir(directory, "channel directory", parent_too=True)
    return os.path.join(directory, name)
