"""Local spool: events wait here while the journal is unreachable, then are replayed.

One JSON-lines file per runner execution, ``<trial>-<execution>-<pid>.jsonl`` in the spool
directory. Each line is one record:

* ``{"events": [[seq, kind, time, data_json], ...]}``
* ``{"blob": path}``: bytes to store before the events that follow refer to them;
* ``{"fields": {...}}``: cached trial fields to set.

Replaying is idempotent because event keys are unique: a replayed duplicate is skipped.
"""

from __future__ import annotations

import os

from kleio.cjson import dumps, loads
from kleio.storage.base import NewEvent, Store, execution_of, short_id

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any, Callable

    from kleio.errors import StoreUnavailable


def split_markers(events: list[NewEvent]) -> tuple[list[NewEvent], list[NewEvent]]:
    """Separate ``ledger`` markers from the other events (markers are inserted first)."""
    markers = [e for e in events if e[1] == "ledger"]
    if not markers:
        return [], events
    return markers, [e for e in events if e[1] != "ledger"]


class Spool:
    """Append-only spool file of one runner."""

    def __init__(self, directory: str, trial_id: str, execution: int) -> None:
        self.directory = directory
        self.trial_id = trial_id
        self.execution = execution
        self.path = os.path.join(directory, f"{trial_id}-{execution}-{os.getpid()}.jsonl")
        self._handle: Any = None

    def _write(self, record: dict[str, Any]) -> None:
        if self._handle is None:
            from kleio.private import private_dir

            private_dir(self.directory, "spool directory")
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            # UTF-8, not ASCII (the same bytes: the records are ASCII): no codec to import.
            self._handle = open(fd, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        self._handle.write(dumps(record, separators=(",", ":")) + "\n")
        self._handle.flush()

    def add_events(self, events: list[NewEvent]) -> None:
        self._write({"trial": self.trial_id, "events": [list(e) for e in events]})

    def add_blob(self, path: str) -> None:
        self._write({"trial": self.trial_id, "blob": path})

    def add_fields(self, fields: dict[str, Any]) -> None:
        self._write({"trial": self.trial_id, "execution": self.execution, "fields": fields})

    def close(self) -> None:
        """Close the file (it stays on disk until replayed)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    @property
    def pending(self) -> bool:
        return self._handle is not None or os.path.exists(self.path)

    def replay(self, store: Store) -> int:
        """Replay the spool into ``store`` and delete it; return events inserted.

        If the store fails half-way, the file stays and a later replay starts it over:
        what was already inserted is skipped as a duplicate.
        """
        self.close()
        return replay_file(store, self.path)


def replay_file(store: Store, path: str) -> int:
    """Replay one spool file into ``store``, then remove it (and its blob files).

    A file lock keeps two processes (two ``kleio sync``, or a sync and a runner that came
    back) from replaying the same file at once; the one that finds it locked skips it.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(path + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return 0
    try:
        if not os.path.exists(path):  # replayed by another process meanwhile
            return 0
        return _replay(store, path)
    finally:
        lock.release()
        try:
            os.remove(path + ".lock")
        except OSError:
            pass


def store_each(
    store: Store,
    trial_id: str,
    events: list[NewEvent],
    refused: Callable[[NewEvent, BaseException], None],
) -> tuple[int, list[NewEvent], StoreUnavailable | None]:
    """Append ``events`` one by one, after the journal refused their batch for what an event
    holds: ``refused(event, error)`` is told each event it refuses again (dropped).

    Returns:
        ``(events inserted, events not tried, the outage)``: when the journal becomes
        unavailable on the way, the rest is not tried and the error is returned, so that the
        caller keeps the rest (the runner spools it, a replay keeps its file).
    """
    from kleio.errors import StoreUnavailable

    inserted = 0
    for index, event in enumerate(events):
        try:
            inserted += store.append_events(trial_id=trial_id, events=[event])
        except StoreUnavailable as down:
            return inserted, events[index:], down
        except OSError as error:  # not the event's content: see as_outage
            return inserted, events[index:], as_outage(error)
        except Exception as error:
            refused(event, error)
    return inserted, [], None


def as_outage(error: OSError) -> StoreUnavailable:
    """An :class:`OSError` out of a store's write (no descriptor left to open a file, a
    module or the journal with, a disk that failed) as the outage it is: the events are
    kept (spooled, or their file kept for the next replay) and written when it passes,
    never dropped as if the journal had refused what they hold."""
    from kleio.errors import StoreUnavailable

    return StoreUnavailable(f"the journal could not be written ({error})")


def _append_what_is_taken(store: Store, trial_id: str, events: list[NewEvent]) -> int:
    """Append ``events``; when the journal refuses the batch for what an event holds (not an
    outage: that raises :class:`~kleio.errors.StoreUnavailable`, and the file is kept for the
    next replay), store them one by one and drop those refused, as the runner does, so that
    one event can never stop ``kleio sync`` forever."""
    from kleio.errors import StoreUnavailable

    try:
        return store.append_events(trial_id=trial_id, events=events)
    except StoreUnavailable:
        raise
    except OSError as error:
        raise as_outage(error) from None
    except Exception:

        def told(event: NewEvent, error: BaseException) -> None:
            import sys

            sys.stderr.write(
                f"kleio: warning: the journal refused a {event[1]} event of "
                f"trial {short_id(trial_id)} ({error}); it is dropped\n"
            )

        inserted, _, down = store_each(store, trial_id, events, told)
        if down is not None:
            raise down from None
        return inserted


def _replay(store: Store, path: str) -> int:
    inserted = 0
    blobs: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break  # a torn last line from a killed runner: everything before it counts
            record = loads(line)
            trial_id = record["trial"]
            if "events" in record:
                events = [(int(s), str(k), float(t), str(d)) for s, k, t, d in record["events"]]
                # A ledger marker goes in before its events, as in the runner (kleio.ledger).
                markers, rest = split_markers(events)
                if markers:
                    store.append_events(trial_id=trial_id, events=markers)
                inserted += _append_what_is_taken(store, trial_id, rest)
            elif "blob" in record:
                blob = record["blob"]
                if os.path.exists(blob):
                    with open(blob, "rb") as data:
                        store.put_blob(fileobj=data)
                    blobs.append(blob)
            elif "fields" in record:
                # The cached fields describe this execution: if another runner has taken the
                # trial over since, they are stale and must not overwrite its state.
                last = store.last_status(trial_id=trial_id)
                if last is None or execution_of(last.seq) <= record.get("execution", 0):
                    store.update_trial(trial_id=trial_id, fields=record["fields"])
    os.remove(path)
    for blob in blobs:
        os.remove(blob)
    return inserted


def leftover_files(directory: str) -> list[tuple[str, int]]:
    """Return ``(path, pid)`` of the spool files in ``directory``."""
    found = []
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    for name in names:
        if name.endswith(".jsonl"):
            try:
                pid = int(name[: -len(".jsonl")].rsplit("-", 1)[1])
            except (IndexError, ValueError):
                continue
            found.append((os.path.join(directory, name), pid))
    return found
