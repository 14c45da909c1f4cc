"""What a store holds, as values: constants, :class:`Event`, the JSON codec of event data,
and the checks every backend shares (field names, sorts, ids a driver can pass, numbers).

Re-exported by :mod:`kleio.storage.base`, where they are documented with the contract; kept
apart so the contract reads in one sitting. Light: the runner imports it on every run.
"""

from __future__ import annotations

import math

from kleio import cjson as json  # json's C codec without json's imports (re, enum)
from kleio.errors import SchemaVersionError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from collections.abc import Iterable, Iterator
    from typing import IO, Any

SCHEMA_VERSION = 2

EXECUTION_SHIFT = 32

#: ``ledger`` events are bookkeeping of the runner (see :mod:`kleio.ledger`), not shown by readers.
#: ``metrics`` events are metric declarations (see :mod:`kleio.metrics`).
EVENT_KINDS = ("status", "stdout", "stderr", "statistic", "artifact", "ledger", "metrics", "check")

STATUSES = (
    "new",
    "reserved",
    "running",
    "completed",
    "broken",
    "interrupted",
    "suspended",
    "failover",
)

#: Trial document fields that can change after creation (a cache of the journal).
MUTABLE_FIELDS = frozenset(
    {
        "status",
        "status_at",
        "heartbeat_at",
        "runner",
        "started_at",
        "ended_at",
        "exit_code",
        "problems",
        "tags",
        "stop_requested",
        "checks",
        "note",
    }
)

#: Fields ``find_trials`` can sort on (prefix with ``-`` for descending).
SORTABLE_FIELDS = ("created_at", "started_at", "ended_at", "status", "id", "heartbeat_at")

#: Sort fields a trial may lack (never started, never ended, no heartbeat yet): trials
#: lacking them sort last in both directions.
NULLABLE_SORTS = frozenset({"started_at", "ended_at", "heartbeat_at"})

_HEX = frozenset("0123456789abcdef")

#: A new event as handed to a store: (seq, kind, time, data as JSON text).
NewEvent = tuple[int, str, float, str]


def short_id(trial_id: str) -> str:
    """The 7-character form of an id shown to people (any unique prefix is accepted back)."""
    return trial_id[:7]


def execution_of(seq: int) -> int:
    """Return the execution number encoded in a sequence number."""
    return seq >> EXECUTION_SHIFT


def first_seq(execution: int) -> int:
    """Return the sequence number of the first event of ``execution``."""
    return execution << EXECUTION_SHIFT


class JoinedTexts:
    """A batch of event data read as one text: each event's stored JSON text followed by a
    newline, ``rows`` of them (no text of the batch holds a newline of its own). What
    :meth:`kleio.storage.base.Store.iter_lineage_joined` yields where the backend can join
    a batch itself (SQLite, in C), so that a reader cutting the text whole never builds one
    string per event."""

    __slots__ = ("rows", "text")

    def __init__(self, text: str, rows: int) -> None:
        self.text, self.rows = text, rows

    def texts(self) -> list[str]:
        """The batch's texts, one per event (what :meth:`iter_lineage_raw` gives)."""
        return self.text[:-1].split("\n") if self.rows else []

    def __repr__(self) -> str:
        return f"JoinedTexts(<{len(self.text)} characters>, rows={self.rows})"


class Event:
    """One journal event as read back from a store."""

    __slots__ = ("data", "kind", "seq", "time", "trial_id")

    def __init__(
        self, trial_id: str, seq: int, kind: str, time: float, data: dict[str, Any]
    ) -> None:
        self.trial_id, self.seq, self.kind, self.time, self.data = (trial_id, seq, kind, time, data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and (
            self.trial_id,
            self.seq,
            self.kind,
            self.time,
            self.data,
        ) == (other.trial_id, other.seq, other.kind, other.time, other.data)

    __hash__ = None  # type: ignore[assignment]  # mutable data: not hashable, like a dict

    def __repr__(self) -> str:
        return f"Event({self.trial_id!r}, {self.seq}, {self.kind!r}, {self.time}, {self.data!r})"

    def to_json(self) -> dict[str, Any]:
        return {
            "trial_id": self.trial_id,
            "seq": self.seq,
            "kind": self.kind,
            "time": self.time,
            "data": self.data,
        }


def encode(data: dict[str, Any]) -> str:
    """Encode event data the way every backend expects it (compact JSON text).

    ``ensure_ascii`` keeps undecodable output bytes (kept as lone surrogates) representable.
    """
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True)


def decode(text: str) -> dict[str, Any]:
    """Decode event data; text that is not a JSON object is kept, never fatal.

    The runner stores what clients send without parsing it (speed); a damaged line must not
    make a whole trial unreadable, so it comes back as ``{"invalid_data": text}``.
    """
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than any reader goes
        return {"invalid_data": text}
    return data if isinstance(data, dict) else {"invalid_data": text}


def check_fields(fields: dict[str, Any]) -> None:
    """Raise ValueError unless every field is one of :data:`MUTABLE_FIELDS`."""
    unknown = sorted(set(fields) - MUTABLE_FIELDS)
    if unknown:
        raise ValueError(
            f"cannot update trial field(s) {', '.join(unknown)}: "
            f"only {', '.join(sorted(MUTABLE_FIELDS))} can change"
        )


def parse_sort(sort: str) -> tuple[str, bool]:
    """Return (field, descending) for a ``find_trials`` sort; ValueError if it is unknown."""
    descending = sort.startswith("-")
    field = sort[1:] if descending else sort
    if field not in SORTABLE_FIELDS:
        raise ValueError(
            f"cannot sort trials by {sort!r}: use one of {', '.join(SORTABLE_FIELDS)}"
            " (prefix with - for descending)"
        )
    return field, descending


def encodable(text: str) -> bool:
    """Tell whether ``text`` can be encoded as UTF-8 (it holds no lone surrogate).

    Undecodable argv bytes reach kleio as lone surrogates; no database driver can pass them
    and no stored id or tag holds one, so such an id or filter matches nothing.
    """
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def int_as_float(value: int) -> float:
    """``float(value)``, or an infinity of its sign past the largest float (``10**400``: a
    statistic may hold any JSON integer; summaries and ranks need a number)."""
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def as_number(value: Any) -> float | None:
    """``value`` as the number a ``where`` condition compares it as, or None (compared as
    text): ints and floats, and text holding a finite number or spelling an infinity (a
    bool is not a number). One rule for :mod:`kleio.api` and the backends that narrow a
    listing by such conditions (:meth:`Store.find_trials`'s ``hints``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int_as_float(value)
    if isinstance(value, float):
        return value
    if isinstance(value, str) and value.strip():
        try:
            number = float(value)
        except ValueError:
            return None
        if math.isfinite(number) or value.strip().lower() in ("inf", "-inf", "+inf"):
            return number
    return None


#: What a ``hint`` of :meth:`Store.find_trials` compares with: ``(name, op, number)``.
HINT_OPS = ("=", "<", "<=", ">", ">=")


def is_digest(text: str) -> bool:
    """Tell whether ``text`` is a sha256 hex digest as blobs are named (64 lowercase hex)."""
    return len(text) == 64 and _HEX.issuperset(text)


def copy_hashing(
    source: IO[bytes], sink: IO[bytes] | None = None, chunk: int = 1 << 20
) -> tuple[str, int]:
    """Read ``source`` to its end, writing it to ``sink`` if given; return (sha256, size)."""
    import hashlib  # only the blob paths need it

    digest, size = hashlib.sha256(), 0
    while block := source.read(chunk):
        digest.update(block)
        if sink is not None:
            sink.write(block)
        size += len(block)
    return digest.hexdigest(), size


def schema_too_new(journal: str, version: object) -> SchemaVersionError:
    """The one error for a journal written by a newer kleio (every backend raises it)."""
    return SchemaVersionError(
        f"the journal {journal} was written by a newer kleio (schema {version} > {SCHEMA_VERSION})",
        "upgrade kleio on this machine (pip install -U kleio)",
    )


def artifact_matches(data: dict[str, Any], filename: str | None, metadata: dict[str, Any]) -> bool:
    """Whether an artifact event's data is named ``filename`` (any if None) and holds every
    item of ``metadata``."""
    if filename is not None and data.get("filename") != filename:
        return False
    held = data.get("metadata") or {}
    return all(key in held and held[key] == value for key, value in metadata.items())


def iter_chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Split an iterable in lists of at most ``size`` items."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
