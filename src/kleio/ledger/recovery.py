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
from kleio.storage.base import Store

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from collections.abc import Iterator


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
        if any(
            name.startswith(prefix) and name.endswith(".jsonl") for name in os.listdir(spool_dir)
        ):
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
    """Journal the files of ``leftover``, then remove those whose writer is gone."""
    # Here, not at the top: every run asks for its trial's leftovers before it starts, and
    # the reading and the events are needed only when a dead runner left some.
    from kleio.ledger.events import rejournal

    inserted = rejournal(store, leftover.directory, leftover.trial_id, leftover.execution)
    for name in os.listdir(leftover.directory):
        if name.endswith(".log") and not pid_alive(writer_pid(name)):
            # Read to its end by rejournal; a torn last record (its writer died inside a
            # failed write) was never acknowledged: the file goes with it.
            remove(os.path.join(leftover.directory, name))
    return inserted


def recover_all(
    store: Store, spool_dir: str, trial_id: str | None = None
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
