"""The ledger: what a program logged, on local disk, until it is in the journal.

Acknowledged means durable against the death of *any* process of a trial, the runner's
included. So the client does not hand a statistic to the runner: it appends it to a file of
its own, with one ``write`` per call, and returns. What the kernel accepted survives the
program's crash and the runner's ``kill -9`` alike (no fsync is needed for that; a power cut
is another matter, see docs/reliability.rst). The runner tails the files and journals what
they hold; whoever comes next on the host (a resume, a failover, ``kleio sync``, a worker)
journals what a dead runner left.

Layout, under ``<spool_dir>/ledger/`` (private: 0700)::

    <trial id>-<execution>-<runner pid>/   one directory per execution of a trial
        runner.json                        the runner's pid and start stamp
        <pid>-<token>.log                  one file per process of the program
        <pid>-<token>-<n>.blob             the bytes of one artifact

Each ``.log`` line is one record in the wire format of :mod:`kleio.client`: ``S<json>`` a
statistic, ``B<json>`` an artifact whose bytes are in the ``.blob`` named by the record,
``M<json>`` a metric declaration (a ``metrics`` event).

Exactly once. Before the events read from bytes ``[from, to)`` of a file are journalled, a
``ledger`` event records ``{file, from, to, n}`` at sequence number ``S``; the ``n`` records
become events ``S+1 .. S+n``, record ``i`` always at ``S+1+i``. The marker is inserted before
its events (its own insert), so whatever of a range reached the journal, its marker did too.
Whoever takes a dead runner's ledger over re-journals the last marked range of each file with
the same sequence numbers (a duplicate key is skipped, never doubled), then goes on from its
end. Nothing depends on the dead runner having recorded anything after its last insert.
"""

from __future__ import annotations

import errno
import os
import stat

from kleio.cjson import dumps, loads
from kleio.private import private_dir
from kleio.reservation import pid_alive, process_start
from kleio.storage.base import NewEvent, Store, encode, execution_of, first_seq

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from collections.abc import Iterator
    from typing import Any, Callable

LEDGER_ENV = "KLEIO_LEDGER"
MAX_STATISTIC_ENV = "KLEIO_MAX_STATISTIC_SIZE"
READ_CHUNK = 1 << 20


def ledger_root(spool_dir: str) -> str:
    return os.path.join(spool_dir, "ledger")


def create_execution_dir(spool_dir: str, trial_id: str, execution: int, journal: str) -> str:
    """Make the private directory of one execution and record its runner and journal."""
    private_dir(spool_dir, "spool directory")
    root = private_dir(ledger_root(spool_dir), "ledger directory")
    pid = os.getpid()
    path = os.path.join(root, f"{trial_id}-{execution}-{pid}")
    os.mkdir(path, 0o700)
    fd = os.open(os.path.join(path, "runner.json"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "w", encoding="utf-8") as handle:  # ASCII, without a codec to import
        handle.write(dumps({"pid": pid, "pid_start": process_start(pid), "journal": journal,
                            "host": os.uname().nodename}))
    return path


def writer_pid(name: str) -> int | None:
    """The pid of the process that wrote a ``.log`` or ``.blob`` file, from its name."""
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _runner_info(directory: str) -> dict[str, Any]:
    try:
        with open(os.path.join(directory, "runner.json"), encoding="utf-8") as handle:
            info = loads(handle.read())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def runner_alive(info: dict[str, Any]) -> bool:
    """Tell whether the runner an execution directory's ``runner.json`` names is at work."""
    host = os.uname().nodename
    if info.get("host", host) != host:
        return True  # a spool shared between hosts (an NFS home): only its own host can tell
    try:
        pid = int(info["pid"])
    except (ValueError, KeyError, TypeError):
        return False
    if pid == os.getpid():
        return True
    if not pid_alive(pid):
        return False
    started = info.get("pid_start")
    return started is None or process_start(pid) in (None, started)


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
        head, rest = data[:newline], data[newline + 1:]
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


class LedgerReader:
    """Every ``.log`` file of one execution directory, read as they grow.

    A file whose writer has ended and that is read to its end is closed: a job that forks
    thousands of short-lived workers must not exhaust the runner's descriptors.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.files: dict[str, LedgerFile] = {}
        self.ignored: set[str] = set()
        self._polls = 0

    def scan(self) -> None:
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            if name.endswith(".log") and name not in self.files and name not in self.ignored:
                try:
                    self.files[name] = LedgerFile(os.path.join(self.directory, name))
                except OSError as error:
                    if error.errno in (errno.EMFILE, errno.ENFILE):
                        # Out of descriptors: close what is finished, try again next time.
                        self.close_finished()
                        return
                    self.ignored.add(name)  # not a regular file, or gone: never a record

    @property
    def open_files(self) -> int:
        return sum(1 for f in self.files.values() if f.fd >= 0)

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
        if self._polls % 20 == 0 or self.open_files > 64:
            self.close_finished()
        return chunks

    def close_finished(self) -> None:
        for name, ledger_file in self.files.items():
            if ledger_file.fd >= 0 and ledger_file.at_end() \
                    and not pid_alive(writer_pid(name)):
                ledger_file.close()

    def drain(self) -> Iterator[Chunk]:
        """Read every file to its current end (in rounds, if descriptors run short)."""
        for _ in range(1000):  # bounded: a writer may go on creating files meanwhile
            known = len(self.files)
            self.scan()
            for ledger_file in list(self.files.values()):
                while True:
                    before = ledger_file.read_to
                    chunk = ledger_file.read()
                    if chunk is not None:
                        yield chunk
                    elif ledger_file.read_to == before:
                        break
            if len(self.files) == known:
                return
            self.close_finished()

    def all_read(self) -> bool:
        return all(f.at_end() for f in self.files.values())

    def close(self) -> None:
        for ledger_file in self.files.values():
            ledger_file.close()


if TYPE_CHECKING:
    #: ``put_blob(path, header) -> (sha256, size) | None``: make the bytes of an artifact
    #: record safe (journal or spool) and say what they are; None when they are gone, and
    #: the record is then skipped.
    PutBlob = Callable[[str, dict[str, Any]], "tuple[str, int] | None"]


def chunk_events(chunk: Chunk, seq: int, when: float, directory: str,
                 put_blob: PutBlob) -> tuple[NewEvent, list[NewEvent]]:
    """Turn a chunk into its ``ledger`` marker (at ``seq``) and its events (``seq+1+i``).

    The marker says how many events the range makes (``e``), so that a recovery can tell a
    range whose events are all in the journal from one whose insert never happened.
    """
    from kleio.client import BLOB, EVENT_KINDS  # the wire format (after the program started)

    events: list[NewEvent] = []
    for index, line in enumerate(chunk.lines):
        tag = line[:1]
        if len(line) > MAX_RECORD:
            continue  # what the live reader skipped as too long: the same index, no event
        kind = EVENT_KINDS.get(tag)  # a statistic, a metric declaration
        if kind is not None:
            events.append((seq + 1 + index, kind, when, line[1:].decode("ascii", "replace")))
        elif tag == BLOB:
            try:
                header = loads(line[1:])
                blob = os.path.basename(str(header["blob"]))
            except (ValueError, KeyError, TypeError, RecursionError):
                continue
            if not blob.endswith(".blob") or blob.startswith("."):
                continue  # only the client's own .blob files, never runner.json or a lock
            stored = put_blob(os.path.join(directory, blob), header)
            if stored is None:
                continue
            data = {"filename": header.get("filename"), "metadata": header.get("metadata") or {},
                    "sha256": stored[0], "size": stored[1]}
            events.append((seq + 1 + index, "artifact", when, encode(data)))
    marker = (seq, "ledger", when, encode({"file": chunk.name, "from": chunk.start,
                                           "to": chunk.end, "n": len(chunk.lines),
                                           "e": len(events)}))
    return marker, events


def _complete(store: Store, trial_id: str, marker: Any) -> bool:
    """Tell whether every event of a marked range is in the journal."""
    expected = marker.data.get("e")
    if not isinstance(expected, int):
        return False
    found = store.read_events(trial_id=trial_id, kinds=("statistic", "artifact", "metrics"),
                              after=marker.seq, upto=marker.seq + int(marker.data.get("n", 0)))
    return len(found) >= expected


def append_marked(store: Store, trial_id: str, marker: NewEvent | None,
                  events: list[NewEvent]) -> int:
    """Insert a marker before its events (see the module docstring); return events inserted."""
    if marker is not None:
        store.append_events(trial_id=trial_id, events=[marker])
    return store.append_events(trial_id=trial_id, events=events) if events else 0


# -- what a dead runner left --------------------------------------------------------------


class Leftover:
    """The ledger of an execution whose runner is gone."""

    __slots__ = ("directory", "execution", "journal", "trial_id")

    def __init__(self, directory: str, trial_id: str, execution: int, journal: str) -> None:
        self.directory, self.trial_id, self.execution = directory, trial_id, execution
        self.journal = journal  # the (masked) URI of the journal the records belong to

    def __repr__(self) -> str:
        return f"Leftover({self.directory!r}, {self.trial_id[:7]}, {self.execution})"


def leftovers(spool_dir: str, trial_id: str | None = None) -> list[Leftover]:
    """Execution directories whose runner is gone, oldest execution first.

    Each belongs to one journal: recover it only into a store opened with that URI.
    """
    root = ledger_root(spool_dir)
    try:
        names = os.listdir(root)
    except OSError:
        return []
    found = []
    for name in names:
        parts = name.rsplit("-", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        if trial_id is not None and parts[0] != trial_id:
            continue
        path = os.path.join(root, name)
        if not os.path.isdir(path):
            continue
        info = _runner_info(path)
        if not runner_alive(info):
            found.append(Leftover(path, parts[0], int(parts[1]), str(info.get("journal") or "")))
    found.sort(key=lambda item: (item.trial_id, item.execution))
    return found


def pending_bytes(directory: str) -> int:
    total = 0
    try:
        for name in os.listdir(directory):
            if name.endswith((".log", ".blob")):
                total += os.path.getsize(os.path.join(directory, name))
    except OSError:
        pass
    return total


def recover(store: Store, leftover: Leftover) -> int | None:
    """Journal what a dead runner's ledger holds; return the events inserted.

    Returns None when another process is recovering the same directory right now, or
    when the directory belongs to another journal than ``store``.
    """
    if leftover.journal and leftover.journal != store.uri:
        return None
    if store.get_trial(trial_id=leftover.trial_id) is None:
        return None  # not this journal's trial (a journal replaced since): never guess
    spool_dir = os.path.dirname(os.path.dirname(leftover.directory))
    prefix = f"{leftover.trial_id}-{leftover.execution}-"
    try:
        if any(name.startswith(prefix) and name.endswith(".jsonl")
               for name in os.listdir(spool_dir)):
            # Its spool is not replayed yet (another process holds it): the events in it
            # come first, or the ledger's would take their numbers.
            return None
    except OSError:
        pass
    from filelock import FileLock, Timeout

    lock = FileLock(os.path.join(leftover.directory, ".lock"))
    try:
        lock.acquire(timeout=0)
    except (Timeout, OSError):  # another process has it, or the directory is unreadable
        return None
    try:
        if not os.path.isdir(leftover.directory):
            return 0
        try:
            return _recover(store, leftover)
        except OSError:  # a file the program made unreadable: what was read is journalled
            return None
    finally:
        lock.release()
        _remove_if_done(leftover.directory)


def _recover(store: Store, leftover: Leftover) -> int:
    directory, trial_id, execution = leftover.directory, leftover.trial_id, leftover.execution
    low, high = first_seq(execution), first_seq(execution + 1) - 1
    # Every marked range of every file, in order: a batch may hold several ranges of one
    # file, and a runner killed between its two inserts leaves them all without events.
    markers: dict[str, list[Any]] = {}
    for event in store.read_events(trial_id=trial_id, kinds=("ledger",), after=low - 1,
                                   upto=high):
        markers.setdefault(str(event.data.get("file")), []).append(event)
    last = store.read_events(trial_id=trial_id, upto=high, limit=1, reverse=True)
    next_seq = max(low, last[0].seq + 1 if last and execution_of(last[0].seq) == execution
                   else low)
    # A marked range may be only partly in the journal: its numbers are taken all the same.
    for ranges in markers.values():
        for marker in ranges:
            next_seq = max(next_seq, marker.seq + int(marker.data.get("n", 0)) + 1)

    def put_blob(path: str, header: dict[str, Any]) -> tuple[str, int] | None:
        try:
            fd = open_regular(path)
        except FileNotFoundError:  # stored and removed by the runner before it died
            sha = str(header.get("sha256"))
            return (sha, int(header.get("size") or 0)) if store.has_blob(sha256=sha) else None
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            return store.put_blob(fileobj=handle)

    # What the files hold now, all taken at once: writers that outlived their runner may go
    # on appending, and a recovery must end (a later sync takes the rest).
    sizes = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".log"):
            try:
                sizes[name] = os.stat(os.path.join(directory, name)).st_size
            except OSError:
                continue
    inserted = 0
    for name, size in sizes.items():
        path = os.path.join(directory, name)
        mtime = os.path.getmtime(path)
        offset = 0
        for marker in markers.get(name, []):
            start, end = int(marker.data["from"]), int(marker.data["to"])
            offset = max(offset, end)
            if _complete(store, trial_id, marker):
                continue
            ledger_file = LedgerFile(path, start)
            chunk = ledger_file.read(end - start)
            ledger_file.close()
            if chunk is not None and chunk.end == end:
                _, events = chunk_events(chunk, marker.seq, marker.time, directory, put_blob)
                inserted += append_marked(store, trial_id, None, events)
        ledger_file = LedgerFile(path, offset)
        try:
            while ledger_file.read_to < size:
                before = ledger_file.read_to
                chunk = ledger_file.read(min(4 * READ_CHUNK, size - ledger_file.read_to))
                if chunk is None:
                    if ledger_file.read_to == before:
                        break  # the end, or a torn last record that never completes
                    continue
                marker_event, events = chunk_events(chunk, next_seq, mtime, directory, put_blob)
                next_seq += len(chunk.lines) + 1
                inserted += append_marked(store, trial_id, marker_event, events)
            done = not pid_alive(writer_pid(name))
        finally:
            ledger_file.close()
        if done:
            # A torn last record (its writer died inside a failed write) was never
            # acknowledged: the file goes with it.
            _remove(path)
    return inserted


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _remove_if_done(directory: str) -> None:
    """Remove an execution directory once no ``.log`` file is left in it."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    if any(name.endswith(".log") for name in names):
        return
    for name in names:
        _remove(os.path.join(directory, name))
    try:
        os.rmdir(directory)
    except OSError:
        pass


def finish(directory: str, reader: LedgerReader | None, *, complete: bool) -> None:
    """After a run: delete what was journalled; keep what a later sync must still read.

    ``complete`` says every record read was made durable (journal or spool). A file whose
    writer is still alive (a grandchild that outlived the program) is kept for ``sync``.
    """
    if reader is not None:
        for name, ledger_file in reader.files.items():
            if complete and ledger_file.at_end() and not pid_alive(writer_pid(name)):
                _remove(ledger_file.path)
        reader.close()
    if complete:
        _remove_if_done(directory)


def recover_all(store: Store, spool_dir: str, trial_id: str | None = None
                ) -> Iterator[tuple[str, int | None]]:
    """Journal what dead runners of ``trial_id`` (every trial if None) left on this host.

    Yields ``(path, events inserted)`` per spool file and ledger directory, with None for
    one left alone (its runner is alive, another process holds it, or it belongs to another
    journal). Spool files are replayed first: they may hold ledger markers of the same
    executions, which the ledger's recovery then builds on.
    """
    from kleio.spool import leftover_files, replay_file  # noqa: I001 - beside its use

    for path, pid in leftover_files(spool_dir):
        if trial_id is not None and not os.path.basename(path).startswith(trial_id + "-"):
            continue
        if pid != os.getpid() and pid_alive(pid):
            yield path, None  # its runner is still at work and will replay it
        else:
            yield path, replay_file(store, path)
    for leftover in leftovers(spool_dir, trial_id):
        yield leftover.directory, recover(store, leftover)


def recover_trial(store: Store, spool_dir: str, trial_id: str) -> int:
    """:func:`recover_all` for one trial; return the events inserted."""
    return sum(count or 0 for _, count in recover_all(store, spool_dir, trial_id))
