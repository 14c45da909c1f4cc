"""Records of a ledger as journal events, exactly once: a ``ledger`` marker before them.

Before the events read from bytes ``[from, to)`` of a file are journalled, a ``ledger`` event
records ``{file, from, to, n, e}`` at sequence number ``S``; the ``n`` records become events
``S+1 .. S+n``, record ``i`` always at ``S+1+i`` (``e`` of them are events: a record that is
no event keeps its number unused). The marker is inserted before its events (its own insert),
so whatever of a range reached the journal, its marker did too.
"""

from __future__ import annotations

import os

from kleio.cjson import loads
from kleio.ledger import reader
from kleio.ledger.reader import READ_CHUNK, LedgerFile, open_regular
from kleio.storage.base import NewEvent, Store, encode, execution_of, first_seq

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any, Callable

    from kleio.ledger.reader import Chunk
    from kleio.storage.base import Event

if TYPE_CHECKING:
    #: ``put_blob(path, header) -> (sha256, size) | None``: make the bytes of an artifact
    #: record safe (journal or spool) and say what they are; None when they are gone, and
    #: the record is then skipped.
    PutBlob = Callable[[str, dict[str, Any]], "tuple[str, int] | None"]


def chunk_events(
    chunk: Chunk, seq: int, when: float, directory: str, put_blob: PutBlob
) -> tuple[NewEvent, list[NewEvent]]:
    """Turn a chunk into its ``ledger`` marker (at ``seq``) and its events (``seq+1+i``).

    The marker says how many events the range makes (``e``), so that a recovery can tell a
    range whose events are all in the journal from one whose insert never happened.
    """
    from kleio.client import BLOB, EVENT_KINDS  # the wire format (after the program started)

    events: list[NewEvent] = []
    for index, line in enumerate(chunk.lines):
        tag = line[:1]
        if len(line) > reader.MAX_RECORD:
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
            data = {
                "filename": header.get("filename"),
                "metadata": header.get("metadata") or {},
                "sha256": stored[0],
                "size": stored[1],
            }
            events.append((seq + 1 + index, "artifact", when, encode(data)))
    marker = (
        seq,
        "ledger",
        when,
        encode(
            {
                "file": chunk.name,
                "from": chunk.start,
                "to": chunk.end,
                "n": len(chunk.lines),
                "e": len(events),
            }
        ),
    )
    return marker, events


def is_complete(store: Store, trial_id: str, marker: Any) -> bool:
    """Tell whether every event of a marked range is in the journal."""
    expected = marker.data.get("e")
    if not isinstance(expected, int):
        return False
    found = store.read_events(
        trial_id=trial_id,
        kinds=("statistic", "artifact", "metrics"),
        after=marker.seq,
        upto=marker.seq + int(marker.data.get("n", 0)),
    )
    return len(found) >= expected


def append_marked(
    store: Store, trial_id: str, marker: NewEvent | None, events: list[NewEvent]
) -> int:
    """Insert a marker before its events (see the module docstring); return events inserted."""
    if marker is not None:
        store.append_events(trial_id=trial_id, events=[marker])
    return store.append_events(trial_id=trial_id, events=events) if events else 0


# -- a dead runner's files, journalled again exactly once ---------------------------------


def rejournal(store: Store, directory: str, trial_id: str, execution: int) -> int:
    """Journal what the ``.log`` files of one execution directory hold; return the events
    inserted.

    Marked ranges whose events are not all in the journal are journalled again at their
    marker's numbers (a duplicate is skipped, never doubled); what follows the last marked
    range of each file is journalled after the execution's last event, with new markers.
    Only what the files hold now is read: writers that outlived their runner may go on
    appending, and a recovery must end (a later sync takes the rest).
    """
    markers, next_seq = _marked_ranges(store, trial_id, execution)
    put_blob = _blob_keeper(store)
    inserted = 0
    for name, size in _sizes(directory).items():
        path = os.path.join(directory, name)
        ranges = markers.get(name, [])
        inserted += _complete_ranges(store, trial_id, path, ranges, put_blob)
        offset = max((int(marker.data["to"]) for marker in ranges), default=0)
        count, next_seq = _journal_from(store, trial_id, path, offset, size, next_seq, put_blob)
        inserted += count
    return inserted


def _marked_ranges(
    store: Store, trial_id: str, execution: int
) -> tuple[dict[str, list[Event]], int]:
    """Every marked range of every file of ``execution``, in order, and the next free seq.

    A batch may hold several ranges of one file, and a runner killed between its two inserts
    leaves them all without events. A range only partly in the journal keeps its numbers.
    """
    low, high = first_seq(execution), first_seq(execution + 1) - 1
    markers: dict[str, list[Event]] = {}
    for event in store.read_events(trial_id=trial_id, kinds=("ledger",), after=low - 1, upto=high):
        markers.setdefault(str(event.data.get("file")), []).append(event)
    last = store.read_events(trial_id=trial_id, upto=high, limit=1, reverse=True)
    next_seq = max(low, last[0].seq + 1 if last and execution_of(last[0].seq) == execution else low)
    for ranges in markers.values():
        for marker in ranges:
            next_seq = max(next_seq, marker.seq + int(marker.data.get("n", 0)) + 1)
    return markers, next_seq


def _blob_keeper(store: Store) -> PutBlob:
    """A :data:`PutBlob` storing a ``.blob`` file, or finding its bytes already stored."""

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

    return put_blob


def _sizes(directory: str) -> dict[str, int]:
    """The size of every ``.log`` file of ``directory`` now, by name, in name order."""
    sizes = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".log"):
            try:
                sizes[name] = os.stat(os.path.join(directory, name)).st_size
            except OSError:
                continue
    return sizes


def _complete_ranges(
    store: Store, trial_id: str, path: str, ranges: list[Event], put_blob: PutBlob
) -> int:
    """Journal again the marked ranges of one file whose events are not all in the journal."""
    inserted = 0
    for marker in ranges:
        if is_complete(store, trial_id, marker):
            continue
        start, end = int(marker.data["from"]), int(marker.data["to"])
        ledger_file = LedgerFile(path, start)
        chunk = ledger_file.read(end - start)
        ledger_file.close()
        if chunk is not None and chunk.end == end:
            _, events = chunk_events(
                chunk, marker.seq, marker.time, os.path.dirname(path), put_blob
            )
            inserted += append_marked(store, trial_id, None, events)
    return inserted


def _journal_from(
    store: Store, trial_id: str, path: str, offset: int, size: int, next_seq: int, put_blob: PutBlob
) -> tuple[int, int]:
    """Journal the records of one file from ``offset`` up to ``size``, each chunk after its
    own marker from ``next_seq`` on; return ``(events inserted, the next free seq)``."""
    directory, mtime = os.path.dirname(path), os.path.getmtime(path)
    inserted = 0
    ledger_file = LedgerFile(path, offset)
    try:
        while ledger_file.read_to < size:
            before = ledger_file.read_to
            chunk = ledger_file.read(min(4 * READ_CHUNK, size - ledger_file.read_to))
            if chunk is None:
                if ledger_file.read_to == before:
                    break  # the end, or a torn last record that never completes
                continue
            marker, events = chunk_events(chunk, next_seq, mtime, directory, put_blob)
            next_seq += len(chunk.lines) + 1
            inserted += append_marked(store, trial_id, marker, events)
    finally:
        ledger_file.close()
    return inserted, next_seq
