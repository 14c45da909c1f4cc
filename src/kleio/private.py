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
