"""A read-only view of one journal: :class:`Journal`, which finds, filters and ranks trials."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from kleio.api.conditions import (
    FIELDS,
    STORE_SORTS,
    Condition,
    _order,
    best_of,
    checked_names,
    parse_since,
    parse_sort,
    ranked_sort,
    sort_trials,
)
from kleio.api.filters import (
    HELD_OR_LOST,
    as_texts,
    checked_limit,
    passes,
    store_filters,
    wanted_statuses,
)
from kleio.api.prefetch import prefetch
from kleio.api.trial import Trial
from kleio.errors import UsageError
from kleio.metrics import from_config, from_specs, is_number
from kleio.storage.base import HINT_OPS, Store


class Journal:
    """A read-only view of one journal; open with :func:`open_journal`.

    The connection opens on first use and again after :meth:`close`, so the trials it
    returned can still read their statistics later.
    """

    def __init__(
        self, uri: str | None = None, *, metrics: Sequence[str] = (), cwd: str | None = None
    ) -> None:
        from kleio.config import load_config

        config = load_config({"db": uri}, cwd=cwd)
        self.uri = config.db
        self.config = config
        from kleio.reservation import hostname

        self.host = hostname(config.hostname)
        self.stale_after = config.stale_after
        self.configured = from_config(config.metrics)
        try:
            self.reader = from_specs(metrics)
        except ValueError as error:
            raise UsageError(str(error), "write --metric NAME or NAME:min / NAME:max") from None
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            from kleio.storage import open_existing

            self._store = open_existing(self.uri)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------

    def trial(self, trial_id: str) -> Trial:
        """The trial whose id starts with ``trial_id``.

        Raises:
            TrialNotFound, AmbiguousId: no trial, or several, match.
        """
        from kleio.trial import resolve_trial

        if not isinstance(trial_id, str):
            raise TypeError(
                f"trial() takes an id or id prefix (a string), not {type(trial_id).__name__}"
            )
        return Trial(self, resolve_trial(self.store, trial_id))

    def statistics(self, trial_id: str) -> list[dict[str, Any]]:
        """The statistics of a trial's lineage, oldest first."""
        return self.trial(trial_id).statistics()

    def prefetch(self, trials: Sequence[Trial]) -> None:
        """Read what these trials show (summaries, status events, lineages) in a constant
        number of requests instead of a few each (see :mod:`kleio.api.prefetch`)."""
        prefetch(self.store, trials)

    def _prefetched(self, trials: Iterable[Trial], size: int = 200) -> Iterator[Trial]:
        chunk: list[Trial] = []
        for trial in trials:
            chunk.append(trial)
            if len(chunk) >= size:
                self.prefetch(chunk)
                yield from chunk
                chunk = []
        self.prefetch(chunk)
        yield from chunk

    def _ranked(
        self, name: str, descending: bool, pushed: dict[str, Any], page: int
    ) -> Iterator[Trial]:
        """Every trial matching the pushed filters, by the best value of metric ``name``
        (missing last, ties newest first): the store ranks trials that are not branches by
        their summaries; branches (whose lineage decides) are ranked here and merged in."""
        import heapq

        mode = self.reader.modes.get(name)
        default = self.configured.mode(name)

        def stored() -> Iterator[tuple[tuple[float, float], Trial]]:
            offset, size = 0, page
            while True:
                rows = self.store.rank_trials(
                    metric=name,
                    mode=mode,
                    default_mode=default,
                    descending=descending,
                    offset=offset,
                    limit=size,
                    **pushed,
                )
                trials = [Trial(self, doc) for doc, _ in rows]
                self.prefetch(trials)
                for (_, best), trial in zip(rows, trials):
                    yield (_order(best, descending), -(trial.created_at or 0)), trial
                if len(rows) < size:
                    return
                offset, size = offset + size, min(size * 4, 20000)

        branches = list(
            self._prefetched(
                Trial(self, doc) for doc in self.store.find_trials(branches=True, **pushed)
            )
        )
        placed = []
        for trial in branches:
            value = trial.value(name)
            if is_number(value) and value == value:
                placed.append(((_order(value, descending), -(trial.created_at or 0)), trial))
        placed.sort(key=lambda item: item[0])
        seen: set[str] = set()
        for _, trial in heapq.merge(stored(), placed, key=lambda item: item[0]):
            seen.add(trial.id)
            yield trial
        # Then the trials without a value, newest first.
        for trial in self._prefetched(
            Trial(self, doc) for doc in self.store.find_trials(sort="-created_at", **pushed)
        ):
            if trial.id not in seen:
                yield trial

    def iter_trials(
        self,
        *,
        where: Iterable[str] | str = (),
        status: Sequence[str] | str | None = None,
        tags: Sequence[str] | str | None = None,
        project: str | None = None,
        since: Any = None,
        ids: Sequence[str] | str | None = None,
        sort: str | None = None,
        limit: int | None = None,
    ) -> Iterator[Trial]:
        """Like :meth:`trials`, as a generator (unsorted listings stream).

        Raises:
            UsageError: a malformed filter, a negative ``limit``, or a ``sort`` on a name
                none of the listed trials has (as ``kleio ls`` refuses them).
            TypeError: ``where``, ``status``, ``tags`` or ``ids`` neither a string nor a
                list of strings.
        """
        yield from self._listing(
            True,
            where=where,
            status=status,
            tags=tags,
            project=project,
            since=since,
            ids=ids,
            sort=sort,
            limit=limit,
        )

    def _listing(self, check: bool, **filters: Any) -> Iterator[Trial]:
        """:meth:`iter_trials`; ``check``: refuse a sort on a name no trial has."""
        where = as_texts(filters.get("where"), "where") or ()
        conditions = [Condition(spec) for spec in where]
        status, tags, ids = (as_texts(filters.get(k), k) for k in ("status", "tags", "ids"))
        limit = checked_limit(filters.get("limit"))
        name, descending = parse_sort(filters.get("sort") or "-created")
        found = self._iter_trials(
            conditions,
            status,
            tags,
            filters.get("project"),
            filters.get("since"),
            ids,
            name,
            descending,
            limit,
        )
        yield from checked_names(found, name, "sort by") if check else found

    def _iter_trials(
        self,
        conditions: list[Condition],
        status: Sequence[str] | None,
        tags: Sequence[str] | None,
        project: str | None,
        since: Any,
        ids: Sequence[str] | None,
        name: str,
        descending: bool,
        limit: int | None,
    ) -> Iterator[Trial]:
        wanted = wanted_statuses(status)
        filters = store_filters(conditions, wanted, tags, project, since)
        if ids:
            docs: Iterable[Any] = self._docs_by_prefix(ids)
        elif ranked_sort(name):
            docs = self._ranked(name, descending, filters, max(64, (limit or 0) + 1))
        else:
            docs = self._docs_found(name, descending, conditions, wanted, filters, limit)
        trials = self._selected(docs, conditions, wanted, filters, bool(ids))
        if not ids and (ranked_sort(name) or name in STORE_SORTS):
            yield from _first(trials, limit)  # in the order the store gave
            return
        chosen = sort_trials(list(trials), name, descending)
        yield from (chosen if limit is None else chosen[:limit])

    def _docs_by_prefix(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The documents of the trials whose id starts with one of ``ids``, each once."""
        found: dict[str, dict[str, Any]] = {}
        for prefix in ids:
            for doc in self.store.find_trials(id_prefix=prefix.lower(), sort="id"):
                found[doc["id"]] = doc
        return list(found.values())

    def _docs_found(
        self,
        name: str,
        descending: bool,
        conditions: Sequence[Condition],
        wanted: set[str],
        filters: dict[str, Any],
        limit: int | None,
    ) -> list[dict[str, Any]]:
        """The documents the store finds by ``filters``, sorted by ``name`` if it holds that
        field (else newest first, sorted here later)."""
        store_sort = ("-" if descending else "") + STORE_SORTS.get(name, "created_at")
        # With every other filter answered by the database, the limit is too.
        # A held trial may show as lost: such a status filter is checked here, not there.
        pushed = name in STORE_SORTS and not conditions and not (wanted & HELD_OR_LOST)
        # Conditions comparing an option or a metric with a number narrow the database's
        # answer (each candidate is still checked here: a hint never decides).
        hints = [
            (c.name, c.op, c.number)
            for c in conditions
            if c.number is not None and c.op in HINT_OPS and c.name not in FIELDS
        ]
        return self.store.find_trials(
            **filters, sort=store_sort, limit=limit if pushed else None, hints=hints
        )

    def _selected(
        self,
        docs: Iterable[Any],
        conditions: Sequence[Condition],
        wanted: set[str],
        filters: dict[str, Any],
        by_ids: bool,
    ) -> Iterator[Trial]:
        """The trials of ``docs`` (documents, or trials already made) that pass every filter
        and condition, read a page at a time. Documents found by id prefix were not filtered
        by the store: its filters are checked here."""
        tags = filters["tags"] if by_ids else None
        candidates = (
            doc if isinstance(doc, Trial) else Trial(self, doc)
            for doc in docs
            if isinstance(doc, Trial) or passes(doc, filters["since"], filters["project"], tags)
        )
        for trial in self._prefetched(candidates):
            if wanted and trial.status not in wanted:
                continue
            if all(c.matches(trial.value(c.name)) for c in conditions):
                yield trial

    def best(self, metric: str | None = None, **filters: Any) -> Trial:
        """The best trial by ``metric`` among those matching ``filters`` (see :func:`best`).

        With a metric whose mode the reader, ``kleio.yaml`` or the name rule gives, the store
        ranks the trials and one is read; otherwise every candidate is compared here.
        """
        from kleio.metrics import parse_spec

        name = parse_spec(metric)[0] if metric else None
        if name is None:
            found = self._primaries(filters)
            if found is None:  # a condition only checked here: compare every candidate
                return best_of(self.trials(**filters), metric)
            if len(found) != 1:  # none (or no candidate) or several: best_of says which
                return best_of(
                    self.trials(**{**filters, "limit": 1}) if not found else self.trials(**filters),
                    metric,
                )
            name = found.pop()
        mode = None
        if name is not None:
            mode = self.reader.modes.get(name) or self.configured.mode(name)
        if mode is None:
            return best_of(self.trials(**filters), metric)
        filters.pop("sort", None)
        filters.pop("limit", None)
        # Unchecked: a metric no candidate has is best_of's TrialNotFound, not a bad sort.
        order = ("-" if mode == "max" else "") + str(name)
        top = list(self._listing(False, **filters, sort=order, limit=1))
        return best_of(top, metric)

    def _primaries(self, filters: dict[str, Any]) -> set[str] | None:
        """The primary metrics of the candidates (as :func:`best_of` collects them), from the
        summaries: the store's declared primaries, the branches' read here. None when that
        takes reading every candidate (a condition only checked here)."""
        if self.reader.primary:
            return {self.reader.primary}
        if (
            filters.get("where")
            or filters.get("ids")
            or {"lost", "running", "reserved"} & set(filters.get("status") or ())
        ):
            return None
        since = filters.get("since")
        pushed: dict[str, Any] = {
            "statuses": list(filters["status"]) if filters.get("status") else None,
            "tags": filters.get("tags"),
            "since": parse_since(since) if since is not None else None,
            "project": filters.get("project") or None,
        }
        names, lacking = self.store.declared_primaries(**pushed)
        for doc in self.store.find_trials(branches=True, **pushed):
            primary = Trial(self, doc).declarations.primary
            if primary:
                names.add(primary)
            else:
                lacking = True
        if lacking and self.configured.primary:
            names.add(self.configured.primary)
        return names

    def trials(self, **filters: Any) -> list[Trial]:
        """The trials matching every filter, sorted and limited (see the module docstring)."""
        return list(self.iter_trials(**filters))

    def count(self, **filters: Any) -> int:
        """How many trials match (``limit`` ignored)."""
        filters.pop("limit", None)
        filters["sort"] = "-created"
        return sum(1 for _ in self.iter_trials(**filters))


def _first(trials: Iterable[Trial], limit: int | None) -> Iterator[Trial]:
    """The first ``limit`` trials (all if None). Like the listing always did, it reads one
    trial past the limit before stopping."""
    for index, trial in enumerate(trials):
        if limit is not None and index >= limit:
            return
        yield trial
