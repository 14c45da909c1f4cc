"""The reads of the summaries a store keeps (:mod:`kleio.storage.summary`), shared by every
backend: a trial's summaries and step runs, the primary metrics declared, trials ranked by a
metric. Each public method checks its arguments (ids and texts a backend cannot encode, limits)
and calls a ``_``-prefixed primitive the backend implements, which may assume them valid; a
trial the store has not summarized (written by an older kleio) is summarized from its events.

:class:`SummaryReads` is a base of :class:`kleio.storage.base.Store`; its methods are public
store methods like the others (read-only).
"""

from __future__ import annotations

import abc

from kleio.storage.records import encodable, iter_chunks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from typing import Any

    from kleio.storage.records import Event


class SummaryReads(abc.ABC):
    """The summary reads of a store (see the module docstring)."""

    if TYPE_CHECKING:  # provided by Store and its other bases

        def read_events(
            self,
            *,
            trial_id: str,
            kinds: Sequence[str] | None = None,
            after: int | None = None,
            upto: int | None = None,
            limit: int | None = None,
            reverse: bool = False,
        ) -> list[Event]: ...
        def get_trials(self, *, trial_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...
        def summarize_events_of(
            self, *, cuts: Iterable[tuple[str, int | None]]
        ) -> dict[tuple[str, int | None], dict[str, Any]]: ...

    def read_summaries(self, *, trial_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Return the summaries of the trials' own statistics, ``{trial_id: summary}``.

        A summary is ``{"entries": {name: entry}, "modes": {name: mode}, "primary": name or
        None, "last_stat_seq": int or None, "runs_ok": bool}`` (entries as documented in
        :mod:`kleio.storage.summary`). A trial the store has not summarized (written by an
        older kleio) is summarized here from its events, without writing; an unknown trial is
        left out. Every backend, and every way of making one, gives the same summary
        (:func:`kleio.storage.summary_entries.as_kept`): entries and modes in the order of
        their names, an integer value outside int64 as a float.
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
        from kleio.storage.summary_entries import as_kept

        for summary in found.values():
            as_kept(summary)  # a folded one again: already kept so, unchanged
        return found

    def summarize_events(self, *, trial_id: str, upto: int | None = None) -> dict[str, Any]:
        """Summarize a trial's own events up to ``upto`` by reading them (the slow way)."""
        from kleio.storage.summary import as_kept, declarations, fold_all

        mark = self._summary_mark(trial_id=trial_id, upto=upto) if upto is not None else None
        after, start = mark if mark is not None else (None, None)
        fold = fold_all(
            ((e.seq, e.data) for e in self._iter_own(trial_id, ("statistic",), upto, after=after)),
            start,
        )
        modes, primary = declarations(e.data for e in self._iter_own(trial_id, ("metrics",), upto))
        return as_kept(
            {
                "entries": fold.entries,
                "modes": modes,
                "primary": primary,
                "last_stat_seq": fold.state["last_stat_seq"],
                "runs_ok": False,
            }
        )

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

    # -- the primitives each backend implements (arguments already checked) ------------------

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
