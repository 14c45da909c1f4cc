"""Journalling what a dead runner's ledger holds: on a resume, a failover or ``kleio sync``.

Whoever takes a dead runner's ledger over re-journals the last marked range of each file with
the same sequence numbers (a duplicate key is skipped, never doubled), then goes on from its
end (:mod:`kleio.ledger.events`). Nothing depends on the dead runner having recorded anything
after its last insert.
"""

from __future__ import annotations

import os

from kleio.ledger.directories import Leftover, leftovers, remove, remove_if_done, writer_pid
from kleio.reservation import pid_alive
from kleio.storage.base import Store, execution_of, first_seq

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from collections.abc import Iterator
    from typing import Any


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
        remove_if_done(leftover.directory)


def _recover(store: Store, leftover: Leftover) -> int:
    # Here, not at the top: every run asks for its trial's leftovers before it starts, and
    # the reading and the events are needed only when a dead runner left some.
    from kleio.ledger.events import append_marked, chunk_events, is_complete
    from kleio.ledger.reader import READ_CHUNK, LedgerFile, open_regular

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
            if is_complete(store, trial_id, marker):
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
            remove(path)
    return inserted


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
