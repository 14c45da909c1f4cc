"""The storage contract every kleio backend implements.

A store holds three things:

* **trials**: one JSON-compatible document per trial (see :data:`TRIAL_FIELDS`), created once.
  Its identity fields never change; a few *cached* fields (``status``, ``heartbeat_at``,
  ``runner``, ``started_at``, ``ended_at``, ``exit_code``) are updated so that listing and
  filtering are served by the database instead of replaying the journal.
* **events**: the append-only journal. Every event has a per-trial integer ``seq`` and the key
  ``(trial_id, seq)`` is unique. Kinds are listed in :data:`EVENT_KINDS`.
* **blobs**: content-addressed bytes (sha256 hex digest), stored once whatever the number of
  trials and artifacts that refer to them.

Sequence numbers are composite: ``seq = (execution << 32) | counter``. Execution 0 holds the
``new`` status written at creation; each reservation opens the next execution by appending its
first event at ``execution << 32``. Racing reservations compute the same key, so exactly one
insert wins (see :mod:`kleio.reservation`); events spooled by a dead runner keep their own
execution number and can be replayed later without colliding with its successor.

:class:`Store` is the one place where arguments are checked: its public methods validate (the
fields that may change, the sort key, ids a backend cannot encode, digests) and then call the
``_``-prefixed primitives each backend implements, which may assume valid arguments. The
reads built on the public methods and shared by every backend are its bases: the lineage's
(:mod:`kleio.storage.lineage`), those of many trials at once (:mod:`kleio.storage.batched`)
and those of the summaries, ranking included (:mod:`kleio.storage.summary_reads`, which
checks its arguments the same way and declares its own primitives).
The values the contract speaks of (constants, :class:`Event`, the event codec, the shared
checks) are in :mod:`kleio.storage.records`, re-exported here.
"""

from __future__ import annotations

import abc

from kleio.storage.batched import BatchedReads
from kleio.storage.lineage import LineageReads
from kleio.storage.records import (  # noqa: F401 - the contract's values, re-exported
    EVENT_KINDS,
    EXECUTION_SHIFT,
    HINT_OPS,
    MUTABLE_FIELDS,
    NULLABLE_SORTS,
    SCHEMA_VERSION,
    SORTABLE_FIELDS,
    STATUSES,
    Event,
    JoinedTexts,
    NewEvent,
    artifact_matches,
    as_number,
    check_fields,
    copy_hashing,
    decode,
    encodable,
    encode,
    execution_of,
    first_seq,
    int_as_float,
    is_digest,
    iter_chunks,
    parse_sort,
    schema_too_new,
    short_id,
)
from kleio.storage.summary_reads import SummaryReads

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from collections.abc import Sequence
    from typing import IO, Any


class Store(LineageReads, BatchedReads, SummaryReads, abc.ABC):
    """Abstract journal. All methods are keyword-only after ``self``.

    A store instance is used by one thread at a time; open one per thread or process.
    The reads of many trials at once (a page of a listing) are those of
    :class:`~kleio.storage.batched.BatchedReads`; those of the summaries (and the ranking
    of trials by a metric) are those of :class:`~kleio.storage.summary_reads.SummaryReads`.
    """

    #: The URI the store was opened with, password masked.
    uri: str = ""

    # -- trials ---------------------------------------------------------------------------

    def create_trial(self, *, doc: dict[str, Any]) -> bool:
        """Insert a trial document; return False if a trial with ``doc["id"]`` exists.

        The existing document is left untouched in that case.
        """
        return self._create_trial(doc=doc)

    def get_trial(self, *, trial_id: str) -> dict[str, Any] | None:
        """Return the trial document with exactly this id, or None."""
        if not encodable(trial_id):
            return None
        return self._get_trial(trial_id=trial_id)

    def update_trial(self, *, trial_id: str, fields: dict[str, Any]) -> None:
        """Set cached fields (a subset of :data:`MUTABLE_FIELDS`) of a trial."""
        check_fields(fields)
        if fields:
            self._update_trial(trial_id=trial_id, fields=fields)

    def find_trials(
        self,
        *,
        id_prefix: str | None = None,
        statuses: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        parent_id: str | None = None,
        since: float | None = None,
        project: str | None = None,
        branches: bool | None = None,
        sort: str = "-created_at",
        limit: int | None = None,
        hints: Sequence[tuple[str, str, float]] = (),
    ) -> list[dict[str, Any]]:
        """Return trial documents matching every given filter, sorted and limited.

        Trials lacking the sort field (:data:`NULLABLE_SORTS`) come last in both directions;
        ties are broken by id, in the same direction.

        Args:
            id_prefix: keep trials whose id starts with this.
            statuses: keep trials whose cached status is one of these.
            tags: keep trials carrying every one of these tags.
            parent_id: keep the direct branches of this trial.
            since: keep trials created at or after this time (epoch seconds).
            project: keep trials whose project contains this text.
            branches: True: only branches (trials with a parent); False: only the others.
            sort: a field of :data:`SORTABLE_FIELDS`, ``-`` prefixed for descending.
            limit: at most this many documents.
            hints: conditions ``(name, op, number)``, ``op`` in :data:`HINT_OPS`, as
                :mod:`kleio.api` reads ``where``: the trial's option ``name`` (compared as
                :func:`as_number` says, any element of a list), else its metric (``name``:
                its best under its mode; ``name.last``, ``name.best``). A backend may leave
                out trials that cannot match one; it keeps every trial that may, so the
                caller checks each (a hint narrows, it never decides). With hints, ``limit``
                counts the narrowed trials.
        """
        field, descending = parse_sort(sort)
        if limit is not None and limit <= 0:
            return []
        if not all(
            encodable(text)
            for text in (
                id_prefix or "",
                parent_id or "",
                project or "",
                *(statuses or ()),
                *(tags or ()),
            )
        ):
            return []
        usable = [h for h in hints if h[1] in HINT_OPS and encodable(h[0]) and h[2] == h[2]]
        if usable:
            return self._find_trials_narrowed(
                id_prefix=id_prefix,
                statuses=statuses,
                tags=tags,
                parent_id=parent_id,
                field=field,
                descending=descending,
                limit=limit,
                since=since,
                project=project or None,
                branches=branches,
                hints=usable,
            )
        return self._find_trials(
            id_prefix=id_prefix,
            statuses=statuses,
            tags=tags,
            parent_id=parent_id,
            field=field,
            descending=descending,
            limit=limit,
            since=since,
            project=project or None,
            branches=branches,
        )

    def _find_trials_narrowed(
        self,
        *,
        hints: Sequence[tuple[str, str, float]],  # noqa: ARG002
        **filters: Any,
    ) -> list[dict[str, Any]]:
        """:meth:`_find_trials` with hints (valid); by default they narrow nothing."""
        return self._find_trials(**filters)

    # -- events ---------------------------------------------------------------------------

    def try_append(
        self, *, trial_id: str, event: NewEvent, fields: dict[str, Any] | None = None
    ) -> bool:
        """Append one event unless its key exists: the compare-and-append of reservations.

        Returns True if this call inserted the event (and then applied ``fields`` to the
        trial document like :meth:`update_trial`), False if ``(trial_id, seq)`` was taken.
        """
        if fields:
            check_fields(fields)
        return self._try_append(trial_id=trial_id, event=event, fields=fields or None)

    def append_events(self, *, trial_id: str, events: Sequence[NewEvent]) -> int:
        """Append a batch of events; keys that already exist are skipped, never doubled.

        Returns the number of events actually inserted. Replaying a batch is therefore safe.
        """
        if not events:
            return 0
        return self._append_events(trial_id=trial_id, events=events)

    def read_events(
        self,
        *,
        trial_id: str,
        kinds: Sequence[str] | None = None,
        after: int | None = None,
        upto: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> list[Event]:
        """Return the events of one trial (not its ancestors) in ``seq`` order.

        Args:
            kinds: only these kinds.
            after: only ``seq > after``.
            upto: only ``seq <= upto``.
            limit: at most this many events (the first ones, or the last ones if reverse).
            reverse: newest first.
        """
        if limit is not None and limit <= 0:
            return []
        return self._read_events(
            trial_id=trial_id, kinds=kinds, after=after, upto=upto, limit=limit, reverse=reverse
        )

    def count_events(self, *, trial_id: str, kind: str, upto: int | None = None) -> int:
        """Count the events of one kind of one trial (not its ancestors)."""
        return self._count_events(trial_id=trial_id, kind=kind, upto=upto)

    def last_seq(self, *, trial_id: str) -> int | None:
        """Return the highest ``seq`` of a trial's own events, or None if it has none."""
        return self._last_seq(trial_id=trial_id)

    # -- blobs ----------------------------------------------------------------------------

    def put_blob(self, *, fileobj: IO[bytes]) -> tuple[str, int]:
        """Store the bytes read from ``fileobj``; return (sha256 hex digest, size).

        Identical content is stored once.
        """
        return self._put_blob(fileobj=fileobj)

    def open_blob(self, *, sha256: str) -> IO[bytes]:
        """Open stored bytes for reading. Raises KeyError if unknown."""
        if not is_digest(sha256):
            raise KeyError(sha256)
        return self._open_blob(sha256=sha256)

    def has_blob(self, *, sha256: str) -> bool:
        """Tell whether bytes with this digest are stored."""
        return is_digest(sha256) and self._has_blob(sha256=sha256)

    # -- removal (kleio rm only: the journal is otherwise append-only) ----------------------

    def delete_trial(self, *, trial_id: str) -> int:
        """Remove a trial's document and its own events (not its ancestors' nor its
        branches'); return the number of events removed. Blobs stay (see :meth:`delete_blob`).
        """
        if not encodable(trial_id):
            return 0
        return self._delete_trial(trial_id=trial_id)

    def delete_blob(self, *, sha256: str) -> int:
        """Remove stored bytes; return their size in bytes (0 when they were not stored)."""
        if not is_digest(sha256):
            return 0
        return self._delete_blob(sha256=sha256)

    # -- the primitives each backend implements (arguments already checked) ------------------

    @abc.abstractmethod
    def _delete_trial(self, *, trial_id: str) -> int: ...

    @abc.abstractmethod
    def _delete_blob(self, *, sha256: str) -> int: ...

    @abc.abstractmethod
    def _create_trial(self, *, doc: dict[str, Any]) -> bool: ...

    @abc.abstractmethod
    def _get_trial(self, *, trial_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def _update_trial(self, *, trial_id: str, fields: dict[str, Any]) -> None:
        """Set ``fields`` (valid, not empty)."""

    @abc.abstractmethod
    def _find_trials(
        self,
        *,
        id_prefix: str | None,
        statuses: Sequence[str] | None,
        tags: Sequence[str] | None,
        parent_id: str | None,
        field: str,
        descending: bool,
        limit: int | None,
        since: float | None,
        project: str | None,
        branches: bool | None,
    ) -> list[dict[str, Any]]:
        """``field`` is sortable; ``limit`` is None or positive; every text is encodable."""

    @abc.abstractmethod
    def _try_append(
        self, *, trial_id: str, event: NewEvent, fields: dict[str, Any] | None
    ) -> bool: ...

    @abc.abstractmethod
    def _append_events(self, *, trial_id: str, events: Sequence[NewEvent]) -> int:
        """``events`` is not empty."""

    @abc.abstractmethod
    def _read_events(
        self,
        *,
        trial_id: str,
        kinds: Sequence[str] | None,
        after: int | None,
        upto: int | None,
        limit: int | None,
        reverse: bool,
    ) -> list[Event]:
        """``limit`` is None or positive."""

    @abc.abstractmethod
    def _count_events(self, *, trial_id: str, kind: str, upto: int | None) -> int: ...

    @abc.abstractmethod
    def _last_seq(self, *, trial_id: str) -> int | None: ...

    @abc.abstractmethod
    def _put_blob(self, *, fileobj: IO[bytes]) -> tuple[str, int]: ...

    @abc.abstractmethod
    def _open_blob(self, *, sha256: str) -> IO[bytes]:
        """``sha256`` is a digest; raise KeyError if no blob has it."""

    @abc.abstractmethod
    def _has_blob(self, *, sha256: str) -> bool: ...

    # -- lifecycle ------------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections and files."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
