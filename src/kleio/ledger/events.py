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
from kleio.storage.base import NewEvent, Store, encode

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any, Callable

    from kleio.ledger.reader import Chunk

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
            data = {"filename": header.get("filename"), "metadata": header.get("metadata") or {},
                    "sha256": stored[0], "size": stored[1]}
            events.append((seq + 1 + index, "artifact", when, encode(data)))
    marker = (seq, "ledger", when, encode({"file": chunk.name, "from": chunk.start,
                                           "to": chunk.end, "n": len(chunk.lines),
                                           "e": len(events)}))
    return marker, events


def is_complete(store: Store, trial_id: str, marker: Any) -> bool:
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
