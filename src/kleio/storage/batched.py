"""Reads of many trials at once, for a page of a listing (``kleio ls``, the read API).

A page of 50 trials used to cost a few requests per trial (its status events, its lineage, its
ancestors' summaries...): over a network that is a round trip each, 150 for ``kleio ls``.
These methods read what a whole page needs in a constant number of requests, whatever its
length: each has a default built on the one-trial primitives (right for SQLite, where a query
costs microseconds) and backends that talk over a network override the ``_`` primitive with
one query over every id (MongoDB: ``$in`` and ``$or`` of ranges).

:class:`BatchedReads` is a base of :class:`kleio.storage.base.Store`; its methods are public
store methods like the others (read-only).
"""

from __future__ import annotations

from kleio.storage.records import iter_chunks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from typing import Any

    from kleio.storage.base import Event

#: Ids per request of a batched read.
CHUNK = 500


def _usable(trial_ids: Iterable[str]) -> list[str]:
    from kleio.storage.base import encodable

    return [t for t in dict.fromkeys(trial_ids) if encodable(t)]


class BatchedReads:
    """The batched reads of a store (see the module docstring)."""

    if TYPE_CHECKING:  # provided by Store

        def get_trial(self, *, trial_id: str) -> dict[str, Any] | None: ...
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
        def _summary_mark(
            self, *, trial_id: str, upto: int
        ) -> tuple[int, dict[str, dict[str, Any]]] | None: ...
        def _iter_own(
            self,
            trial_id: str,
            kinds: Sequence[str],
            upto: int | None,
            batch: int = 5000,
            after: int | None = None,
        ) -> Iterator[Event]: ...

    # -- trials ---------------------------------------------------------------------------

    def get_trials(self, *, trial_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The documents of those of ``trial_ids`` that exist, ``{id: doc}``."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in iter_chunks(_usable(trial_ids), CHUNK):
            found.update(self._get_trials(trial_ids=chunk))
        return found

    def _get_trials(self, *, trial_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        found = {}
        for trial_id in trial_ids:
            doc = self.get_trial(trial_id=trial_id)
            if doc is not None:
                found[trial_id] = doc
        return found

    def with_branches(self, *, trial_ids: Iterable[str]) -> set[str]:
        """Those of ``trial_ids`` that have a branch (a trial whose parent is it): one
        indexed query per chunk of ids, never a read of every branch of the journal. (What a
        backend answers is kept to the ids asked: the nx-27017 stand-in answers MongoDB's
        ``distinct`` without applying a filter on a dotted path.)"""
        found: set[str] = set()
        for chunk in iter_chunks(_usable(trial_ids), CHUNK):
            found |= self._with_branches(trial_ids=chunk) & set(chunk)
        return found

    def _with_branches(self, *, trial_ids: Sequence[str]) -> set[str]:
        return {t for t in trial_ids if self.find_trials(parent_id=t, limit=1)}  # type: ignore[attr-defined]

    def lineages(
        self, *, docs: Iterable[dict[str, Any]]
    ) -> dict[str, list[tuple[dict[str, Any], int | None]]]:
        """:meth:`~kleio.storage.base.Store.lineage` of each of these trial documents,
        ``{id: [(doc, upto), ...]}`` oldest first: one :meth:`get_trials` per generation."""
        chains: dict[str, list[tuple[dict[str, Any], int | None]]] = {
            doc["id"]: [(doc, None)] for doc in docs
        }
        growing = list(chains)
        known: dict[str, dict[str, Any]] = {}
        while growing:
            wanted: dict[str, dict[str, Any]] = {}
            for trial_id in growing:
                chain = chains[trial_id]
                parent = chain[-1][0].get("parent") or None
                if isinstance(parent, dict) and parent.get("id") not in {d["id"] for d, _ in chain}:
                    wanted[trial_id] = parent
            known.update(self.get_trials(trial_ids={p["id"] for p in wanted.values()} - set(known)))
            growing = []
            for trial_id, parent in wanted.items():
                found = known.get(parent["id"])
                if found is not None:
                    # Sequence numbers are per trial: the cut applies to the parent only.
                    chains[trial_id].append((found, parent.get("cut")))
                    growing.append(trial_id)
        return {trial_id: chain[::-1] for trial_id, chain in chains.items()}

    # -- events ---------------------------------------------------------------------------

    def read_events_of(
        self, *, trial_ids: Iterable[str], kinds: Sequence[str]
    ) -> dict[str, list[Event]]:
        """Every own event of these kinds of each trial, ``{id: [event, ...]}`` in ``seq``
        order (a trial without any is left out). For kinds a trial holds few of (status,
        metrics): nothing bounds what is read."""
        found: dict[str, list[Event]] = {}
        for chunk in iter_chunks(_usable(trial_ids), CHUNK):
            for trial_id, events in self._read_events_of(
                trial_ids=chunk, kinds=list(kinds)
            ).items():
                if events:
                    found[trial_id] = sorted(events, key=lambda e: e.seq)
        return found

    def _read_events_of(
        self, *, trial_ids: Sequence[str], kinds: Sequence[str]
    ) -> dict[str, list[Event]]:
        return {t: self.read_events(trial_id=t, kinds=kinds) for t in trial_ids}

    # -- summaries up to a cut --------------------------------------------------------------

    def summarize_events_of(
        self, *, cuts: Iterable[tuple[str, int | None]]
    ) -> dict[tuple[str, int | None], dict[str, Any]]:
        """:meth:`~kleio.storage.base.Store.summarize_events` of each ``(trial id, upto)``:
        the summaries of a trial's own events up to a branch's cut (None: all of them, for a
        trial an older kleio never summarized). Each starts from the
        store's mark before its cut, when it keeps one; the marks, the statistics after
        them and the declarations are each read in one request on a batching backend, and
        folded as they arrive (memory holds the summaries, not the statistics)."""
        from kleio.storage.summary import as_kept, declarations, fold_all

        pairs = [(t, upto) for t, upto in dict.fromkeys(cuts) if _usable([t])]
        if not pairs:
            return {}
        marks: dict[Any, tuple[int, dict[str, dict[str, Any]]]] = dict(
            self._summary_marks(cuts=[(t, upto) for t, upto in pairs if upto is not None])
        )
        ranges = [(t, (marks.get((t, upto)) or (None, None))[0], upto) for t, upto in pairs]
        folds = [fold_all((), (marks.get(pair) or (None, None))[1]) for pair in pairs]
        for index, event in self._iter_ranges(kind="statistic", ranges=ranges):
            folds[index].add(event.seq, event.data)
        declared = self.read_events_of(trial_ids=[t for t, _ in pairs], kinds=("metrics",))
        out = {}
        for (trial_id, upto), fold in zip(pairs, folds):
            modes, primary = declarations(
                e.data for e in declared.get(trial_id, ()) if upto is None or e.seq <= upto
            )
            out[(trial_id, upto)] = as_kept(
                {
                    "entries": fold.entries,
                    "modes": modes,
                    "primary": primary,
                    "last_stat_seq": fold.state["last_stat_seq"],
                    "runs_ok": False,
                }
            )
        return out

    def _summary_marks(
        self, *, cuts: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[int, dict[str, dict[str, Any]]]]:
        """``{(trial id, upto): (seq, entries)}``: the latest mark at or before each cut."""
        found = {}
        for trial_id, upto in cuts:
            mark = self._summary_mark(trial_id=trial_id, upto=upto)
            if mark is not None:
                found[(trial_id, upto)] = mark
        return found

    def _iter_ranges(
        self, *, kind: str, ranges: Sequence[tuple[str, int | None, int | None]]
    ) -> Iterator[tuple[int, Event]]:
        """``(index, event)`` for the events of ``kind`` of each ``(trial id, after, upto)``
        of ``ranges`` (``after < seq <= upto``, None for no bound), in any order (folding
        summaries does not depend on it), streamed: memory stays bounded."""
        for index, (trial_id, after, upto) in enumerate(ranges):
            for event in self._iter_own(trial_id, (kind,), upto, after=after):
                yield index, event
