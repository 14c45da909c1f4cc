"""The permissions of the SQLite journal's files (see "The SQLite journal's files" in
docs/reference/configuration.rst)."""

from __future__ import annotations

import os
import stat


class Modes:
    """The permissions of the files kleio creates for one journal (see the module doc)."""

    def __init__(self, directory: str) -> None:
        try:
            mode = os.stat(directory).st_mode
        except OSError:
            mode = 0
        # The setgid bit is the deliberate sign of a shared directory: mkdir and the umask
        # never set it, so a directory that merely happens to be group-writable stays private.
        self.shared = bool(mode & stat.S_ISGID) and mode & 0o070 == 0o070
        self.file = 0o660 if self.shared else 0o600
        self.dir = 0o2770 if self.shared else 0o700

    @staticmethod
    def _own_mode(path: str, *, is_dir: bool = False) -> int | None:
        """The permission bits of a regular file (or directory) of the user's own, else None.

        Anything else is left alone: ``--db /tmp`` must never chmod /tmp.
        """
        try:
            info = os.lstat(path)
        except OSError:
            return None
        kind = stat.S_ISDIR if is_dir else stat.S_ISREG
        if info.st_uid != os.geteuid() or not kind(info.st_mode):
            return None
        return stat.S_IMODE(info.st_mode)

    def tighten(self, path: str, *, is_dir: bool = False, like: str | None = None) -> None:
        """Bring a file of the user's own to this journal's modes, taking bits, never adding.

        ``like``: a file whose mode this one takes whole (the WAL and its index follow the
        journal file, as SQLite makes them: a read-only open must not leave them read-only).
        """
        current = self._own_mode(path, is_dir=is_dir)
        if current is None:
            return
        if like is not None:
            wanted = self._own_mode(like)
            if wanted is None:
                return
        else:
            wanted = current & (self.dir if is_dir else self.file)
        if wanted != current:
            try:
                os.chmod(path, wanted)
            except OSError:
                pass

    def make_dir(self, path: str) -> None:
        """Create ``path`` (not its parents) with this journal's directory mode."""
        try:
            os.mkdir(path, self.dir)
        except FileExistsError:
            return
        os.chmod(path, self.dir)  # the umask may have taken bits the group needs

    def make_file(self, path: str) -> int:
        """Create ``path`` exclusively with this journal's file mode; return its descriptor."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, self.file)
        os.fchmod(fd, self.file)  # whatever the umask
        return fd
