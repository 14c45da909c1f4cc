"""Reading a ledger's ``.log`` files as they grow: complete records only, in linear time."""

from __future__ import annotations

import errno
import os
import stat

from kleio.ledger.directories import writer_pid
from kleio.reservation import pid_alive

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from collections.abc import Callable, Iterator
    from typing import TypeVar

    T = TypeVar("T")

READ_CHUNK = 1 << 20
#: What an open fails with when the process (or the system) has no descriptor left.
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)


class Chunk:
    """Complete records read from bytes ``[start, end)`` of one ledger file."""

    __slots__ = ("end", "lines", "name", "start")

    def __init__(self, name: str, start: int, end: int, lines: list[bytes]) -> None:
        self.name, self.start, self.end, self.lines = name, start, end, lines

    def __repr__(self) -> str:
        return f"Chunk({self.name!r}, {self.start}, {self.end}, {len(self.lines)} records)"


#: Longest record a reader keeps (the client refuses larger ones): a longer line, which only
#: a program writing its ledger by hand makes, is skipped instead of filling memory.
MAX_RECORD = 64 << 20


def open_regular(path: str) -> int:
    """Open a file of a ledger for reading: a regular file only, never through a link.

    A FIFO, a device or a directory that a program put in its ledger must not block or
    crash the runner or ``kleio sync``.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path} is not a regular file")
    return fd


class LedgerFile:
    """Read complete records of one file as it grows, in linear time.

    Bytes after the last newline wait in ``partial`` (a list of pieces, joined once when
    the record is complete): a 150 MB record read in 1 MiB pieces costs one copy, not 150.
    A record longer than :data:`MAX_RECORD` becomes an empty line (no event), so that its
    index, and the sequence numbers of the records after it, stay what a recovery computes.
    """

    def __init__(self, path: str, offset: int = 0) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.fd = open_regular(path)
        self.offset = offset  # everything before is handed over as complete records
        self.read_to = offset
        self.partial: list[bytes] = []
        self.partial_size = 0
        self.skipping = False

    def read(self, budget: int = READ_CHUNK) -> Chunk | None:
        """Read at most ``budget`` bytes; return the records they complete, if any."""
        if self.fd < 0:
            return None
        try:
            data = os.pread(self.fd, budget, self.read_to)
        except OSError:
            return None
        if not data:
            return None
        self.read_to += len(data)
        newline = data.rfind(b"\n")
        if newline < 0:
            self._keep(data)
            return None
        head, rest = data[:newline], data[newline + 1 :]
        if self.skipping:
            first = head.find(b"\n")
            head = b"" if first < 0 else head[first:]
            self.skipping = False
        elif self.partial:
            self.partial.append(head)
            head = b"".join(self.partial)
        self.partial, self.partial_size = [], 0
        if rest:
            self._keep(rest)
        start, self.offset = self.offset, self.read_to - len(rest)
        return Chunk(self.name, start, self.offset, head.split(b"\n"))

    def _keep(self, data: bytes) -> None:
        if self.skipping:
            return
        self.partial.append(data)
        self.partial_size += len(data)
        if self.partial_size > MAX_RECORD:
            self.partial, self.partial_size, self.skipping = [], 0, True

    def at_end(self) -> bool:
        """True when every byte of the file was handed over as complete records."""
        if self.fd < 0:
            return True
        try:
            return os.fstat(self.fd).st_size == self.offset
        except OSError:
            return True

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1


def open_budget() -> int:
    """How many ledger files a reader may hold open: half the descriptors a process may have.

    The other half is the runner's own: its journal, spool, sockets, the modules it imports
    on the way. A reader that took descriptors until the kernel refused one left none for
    them, and the journal's first write then failed (``EMFILE``) and dropped its statistics.
    """
    try:
        limit = os.sysconf("SC_OPEN_MAX")  # the soft RLIMIT_NOFILE, without importing resource
    except (OSError, ValueError):
        limit = 256
    if limit <= 0:
        limit = 1 << 13  # unlimited
    return max(1, min(limit // 2, 4096))


class LedgerReader:
    """Every ``.log`` file of one execution directory, read as they grow.

    A file whose writer has ended and that is read to its end is closed, and at most
    :func:`open_budget` files are open at once: a job that forks thousands of short-lived
    workers must not exhaust the runner's descriptors.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.files: dict[str, LedgerFile] = {}
        self.ignored: set[str] = set()
        self.max_open = open_budget()
        self._open = 0  # files of self.files whose descriptor is open
        self._polls = 0

    def scan(self) -> bool:
        """Open the files that appeared; False when some must wait for descriptors."""
        try:
            names = self._with_descriptor(os.listdir, self.directory)  # listdir takes one too
        except OSError as error:
            return error.errno not in OUT_OF_DESCRIPTORS  # gone: nothing to open
        for name in names:
            if name.endswith(".log") and name not in self.files and name not in self.ignored:
                if self._open >= self.max_open and not self.close_finished():
                    return False  # every open file's writer is alive, or it is unread
                try:
                    opened = self._with_descriptor(LedgerFile, os.path.join(self.directory, name))
                except OSError as error:
                    if error.errno in OUT_OF_DESCRIPTORS:
                        return False
                    self.ignored.add(name)  # not a regular file, or gone: never a record
                    continue
                self.files[name] = opened
                self._open += 1
        return True

    def _with_descriptor(self, call: Callable[[str], T], path: str) -> T:
        """``call(path)``, once more if the process ran out of descriptors (held elsewhere:
        the runner's journal, its sockets) and closing finished files freed some."""
        try:
            return call(path)
        except OSError as error:
            if error.errno not in OUT_OF_DESCRIPTORS or not self.close_finished():
                raise
        return call(path)

    @property
    def open_files(self) -> int:
        return self._open

    def poll(self, budget: int = READ_CHUNK) -> list[Chunk]:
        """One read of at most ``budget`` bytes per file (no file starves the others)."""
        self.scan()
        chunks = []
        for ledger_file in self.files.values():
            chunk = ledger_file.read(budget)
            if chunk is not None:
                chunks.append(chunk)
        self._polls += 1
        # Often when many files are open (a job forking short-lived workers), else now and
        # then: each check costs a system call per file whose writer may still be alive.
        if self._polls % 20 == 0 or self._open > 64:
            self.close_finished()
        return chunks

    def close_finished(self) -> int:
        """Close every file read to its end whose writer has ended; return how many."""
        closed = 0
        for name, ledger_file in self.files.items():
            # At its end once more after its writer's end is seen: a writer that appended
            # and exited between the first two checks left a record to read (fstat first:
            # the cheap check rules most live writers' files out).
            if (
                ledger_file.fd >= 0
                and ledger_file.at_end()
                and not pid_alive(writer_pid(name))
                and ledger_file.at_end()
            ):
                ledger_file.close()
                closed += 1
        self._open -= closed
        return closed

    def drain(self) -> Iterator[Chunk]:
        """Read every file to its current end (in rounds, if descriptors run short)."""
        for _ in range(1000):  # bounded: a writer may go on creating files meanwhile
            known = len(self.files)
            complete = self.scan()
            for ledger_file in list(self.files.values()):
                while True:
                    before = ledger_file.read_to
                    chunk = ledger_file.read()
                    if chunk is not None:
                        yield chunk
                    elif ledger_file.read_to == before:
                        break
            # Done when every file there was is open and read and none appeared meanwhile;
            # when some wait for descriptors, another round once this one's files are closed,
            # unless none could be (their writers live on: nothing more to read now).
            if len(self.files) == known and (complete or not self.close_finished()):
                return

    def all_read(self) -> bool:
        return all(f.at_end() for f in self.files.values())

    def close(self) -> None:
        for ledger_file in self.files.values():
            ledger_file.close()
        self._open = 0
