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
(:mod:`kleio.storage.lineage`) and those of many trials at once (:mod:`kleio.storage.batched`).
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
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from collections.abc import Iterator, Sequence
    from typing import IO, Any


class Store(LineageReads, BatchedReads, abc.ABC):
    """Abstract journal. All methods are keyword-only after ``self``.

    A store instance is used by one thread at a time; open one per thread or process.
    The reads of many trials at once (a page of a listing) are those of
    :class:`~kleio.storage.batched.BatchedReads`.
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

    # -- summaries (see kleio.storage.summary) ----------------------------------------------

    def read_summaries(self, *, trial_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Return the summaries of the trials' own statistics, ``{trial_id: summary}``.

        A summary is ``{"entries": {name: entry}, "modes": {name: mode}, "primary": name or
        None, "last_stat_seq": int or None, "runs_ok": bool}`` (entries as documented in
        :mod:`kleio.storage.summary`). A trial the store has not summarized (written by an
        older kleio) is summarized here from its events, without writing; an unknown trial is
        left out.
        """
        ids = [t for t in dict.fromkeys(trial_ids) if encodable(t)]
        found: dict[str, dict[str, Any]] = {}
        for chunk in iter_chunks(ids, 500):
            found.update(self._read_summaries(trial_ids=chunk))
        missing = [t for t in ids if t not in found]
        if missing:  # all of them at once (a page of an older journal)
            known = self.get_trials(trial_ids=missing)
            folded = self.summarize_events_of(cuts=[(t, None) for t in missing if t in known])
            found.update({t: folded[(t, upto)] for t, upto in folded})
        return found

    def summarize_events(self, *, trial_id: str, upto: int | None = None) -> dict[str, Any]:
        """Summarize a trial's own events up to ``upto`` by reading them (the slow way)."""
        from kleio.storage.summary import declarations, fold_all

        mark = self._summary_mark(trial_id=trial_id, upto=upto) if upto is not None else None
        after, start = mark if mark is not None else (None, None)
        fold = fold_all(
            ((e.seq, e.data) for e in self._iter_own(trial_id, ("statistic",), upto, after=after)),
            start,
        )
        modes, primary = declarations(e.data for e in self._iter_own(trial_id, ("metrics",), upto))
        return {
            "entries": fold.entries,
            "modes": modes,
            "primary": primary,
            "last_stat_seq": fold.state["last_stat_seq"],
            "runs_ok": False,
        }

    def _iter_own(
        self,
        trial_id: str,
        kinds: Sequence[str],
        upto: int | None,
        batch: int = 5000,
        after: int | None = None,
    ) -> Iterator[Event]:
        while True:
            events = self.read_events(
                trial_id=trial_id, kinds=kinds, after=after, upto=upto, limit=batch
            )
            yield from events
            if len(events) < batch:
                return
            after = events[-1].seq

    def step_runs(self, *, trial_id: str, key: str) -> list[dict[str, Any]] | None:
        """The runs of ``key`` (one of :data:`kleio.storage.summary.RUN_KEYS`) in the trial's
        own statistics, ``[{"first_seq", "last_seq", "value"}, ...]`` in seq order; None when
        the store cannot answer (not kept for this trial or key): scan the statistics then.
        """
        from kleio.storage.summary import RUN_KEYS

        if key not in RUN_KEYS or not encodable(trial_id):
            return None
        return self._step_runs(trial_id=trial_id, key=key)

    def next_seq_of(self, *, trial_id: str, kind: str, after: int) -> int | None:
        """The ``seq`` of the first event of ``kind`` after ``after`` (an indexed query)."""
        events = self.read_events(trial_id=trial_id, kinds=(kind,), after=after, limit=1)
        return events[0].seq if events else None

    def declared_primaries(
        self,
        *,
        statuses: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        since: float | None = None,
        project: str | None = None,
    ) -> tuple[set[str], bool]:
        """``(primary metrics declared, whether some trial declares none)`` over the trials
        that are not branches and match the filters (as :meth:`find_trials`), from the
        summaries."""
        if not all(encodable(text) for text in (project or "", *(statuses or ()), *(tags or ()))):
            return set(), False
        return self._declared_primaries(
            statuses=statuses, tags=tags, since=since, project=project or None
        )

    def rank_trials(
        self,
        *,
        metric: str,
        mode: str | None,
        default_mode: str | None,
        descending: bool,
        statuses: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        since: float | None = None,
        project: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[tuple[dict[str, Any], float]]:
        """Trials that are not branches, ordered by the best value of ``metric`` in their own
        statistics: ``[(doc, best), ...]``, ties newest first.

        The mode of each trial is ``mode`` (the reader's) if given, else its own declaration,
        else ``default_mode``; trials for which that gives no mode, or with no best value, are
        left out. Filters as :meth:`find_trials`. Served by the summaries, never by decoding
        statistics.
        """
        if limit <= 0 or not all(
            encodable(text) for text in (metric, project or "", *(statuses or ()), *(tags or ()))
        ):
            return []
        return self._rank_trials(
            metric=metric,
            mode=mode,
            default_mode=default_mode,
            descending=descending,
            statuses=statuses,
            tags=tags,
            since=since,
            project=project or None,
            offset=max(0, offset),
            limit=limit,
        )

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
    def _read_summaries(self, *, trial_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored summaries of these trials; trials not summarized are left out."""

    @abc.abstractmethod
    def _declared_primaries(
        self,
        *,
        statuses: Sequence[str] | None,
        tags: Sequence[str] | None,
        since: float | None,
        project: str | None,
    ) -> tuple[set[str], bool]: ...

    def _summary_mark(
        self,
        *,
        trial_id: str,  # noqa: ARG002 - a default
        upto: int,  # noqa: ARG002
    ) -> tuple[int, dict[str, dict[str, Any]]] | None:
        """``(seq, entries)``: the trial's summaries as they stood at the latest mark at or
        before ``upto`` (every statistic up to ``seq`` folded in), or None (no mark kept:
        the caller folds from the start)."""
        return None

    @abc.abstractmethod
    def _step_runs(self, *, trial_id: str, key: str) -> list[dict[str, Any]] | None: ...

    @abc.abstractmethod
    def _rank_trials(
        self,
        *,
        metric: str,
        mode: str | None,
        default_mode: str | None,
        descending: bool,
        statuses: Sequence[str] | None,
        tags: Sequence[str] | None,
        since: float | None,
        project: str | None,
        offset: int,
        limit: int,
    ) -> list[tuple[dict[str, Any], float]]: ...

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
