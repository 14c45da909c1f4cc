"""The reads of a trial's lineage, built on the store's primitives (every backend shares
them): :meth:`lineage`, its events, its raw data, its newest artifact, its tail.

A branch copies nothing: reading it yields each ancestor's events up to the cut of the branch
below it, then its own. :class:`LineageReads` is a base of :class:`kleio.storage.base.Store`.
"""

from __future__ import annotations

from kleio.storage.records import JoinedTexts, artifact_matches

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import Any

    from kleio.storage.records import Event


class LineageReads:
    """Lineage reads of a store (see the module docstring)."""

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
        def find_trials(
            self,
            *,
            id_prefix: str | None = None,
            sort: str = "-created_at",
            limit: int | None = None,
        ) -> list[dict[str, Any]]: ...

    def lineage(self, *, trial_id: str) -> list[tuple[dict[str, Any], int | None]]:
        """Return ``[(trial_doc, upto), ...]`` from the oldest ancestor to this trial.

        ``upto`` is the cut inherited from the child (None for the trial itself): reading a
        lineage yields each ancestor's events up to the cut of the branch below it.
        """
        chain: list[tuple[dict[str, Any], int | None]] = []
        upto: int | None = None
        current: str | None = trial_id
        seen: set[str] = set()
        while current is not None and current not in seen:
            seen.add(current)
            doc = self.get_trial(trial_id=current)
            if doc is None:
                break
            chain.append((doc, upto))
            parent = doc.get("parent") or None
            if parent:
                current = parent["id"]
                # Sequence numbers are per trial: the cut applies to the parent only.
                upto = parent.get("cut")
            else:
                current = None
        chain.reverse()
        return chain

    def iter_lineage_events(
        self,
        *,
        trial_id: str,
        kinds: Sequence[str] | None = None,
        batch: int = 5000,
    ) -> Iterator[Event]:
        """Yield the events of a trial's whole lineage: ancestors up to their cut, then its own.

        Events are read in batches so memory stays bounded whatever the journal's size.
        """
        for doc, upto in self.lineage(trial_id=trial_id):
            after: int | None = None
            while True:
                events = self.read_events(
                    trial_id=doc["id"], kinds=kinds, after=after, upto=upto, limit=batch
                )
                yield from events
                if len(events) < batch:
                    break
                after = events[-1].seq

    def iter_lineage_raw(
        self, *, trial_id: str, kind: str, batch: int = 20000
    ) -> Iterator[list[str | dict[str, Any]]]:
        """Yield, in batches (lists), the data of a lineage's events of one kind, oldest
        first, as the store holds it: the JSON text as written when the backend keeps text
        (SQLite; it may be anything, :func:`decode` it unless it can be passed through), else
        the decoded object. For readers that pass data through (``kleio cat --json``)
        without decoding each event; memory stays bounded.
        """
        for doc, upto in self.lineage(trial_id=trial_id):
            after: int | None = None
            while True:
                rows = self._read_raw(
                    trial_id=doc["id"], kind=kind, after=after, upto=upto, limit=batch
                )
                if rows:
                    yield [data for _, data in rows]
                if len(rows) < batch:
                    break
                after = rows[-1][0]

    def iter_lineage_joined(
        self, *, trial_id: str, kind: str, batch: int = 20000
    ) -> Iterator[JoinedTexts | list[str | dict[str, Any]]]:
        """:meth:`iter_lineage_raw`, where a batch may come as one :class:`JoinedTexts`
        (its texts joined by the backend: SQLite does it in C, one string per batch instead
        of one per event) and is otherwise a list as :meth:`iter_lineage_raw` gives it. For
        readers that cut a batch's text whole (``kleio cat --statistics``)."""
        for doc, upto in self.lineage(trial_id=trial_id):
            after: int | None = None
            while True:
                found = self._read_joined(
                    trial_id=doc["id"], kind=kind, after=after, upto=upto, limit=batch
                )
                if found is not None:
                    last, joined = found
                    count = joined.rows
                    if count:
                        yield joined
                else:
                    rows = self._read_raw(
                        trial_id=doc["id"], kind=kind, after=after, upto=upto, limit=batch
                    )
                    count = len(rows)
                    if rows:
                        yield [data for _, data in rows]
                        last = rows[-1][0]
                if count < batch:
                    break
                after = last

    def _read_joined(
        self,
        *,
        trial_id: str,  # noqa: ARG002 - what a backend that joins texts reads
        kind: str,  # noqa: ARG002
        after: int | None,  # noqa: ARG002
        upto: int | None,  # noqa: ARG002
        limit: int,  # noqa: ARG002
    ) -> tuple[int, JoinedTexts] | None:
        """``(last seq, joined texts)`` of the events :meth:`_read_raw` would read, or None
        where the backend cannot join them (the default; then :meth:`_read_raw` reads
        them)."""
        return None

    def _read_raw(
        self, *, trial_id: str, kind: str, after: int | None, upto: int | None, limit: int
    ) -> list[tuple[int, str | dict[str, Any]]]:
        """``[(seq, data)]``: data is the stored JSON text or a decoded object (default:
        decoded; a backend holding JSON text overrides this)."""
        return [
            (e.seq, e.data)
            for e in self.read_events(
                trial_id=trial_id, kinds=(kind,), after=after, upto=upto, limit=limit
            )
        ]

    def find_artifact(
        self,
        *,
        trial_id: str,
        filename: str | None = None,
        metadata: dict[str, Any] | None = None,
        batch: int = 500,
    ) -> Event | None:
        """The newest artifact of a trial's lineage named ``filename`` (any name if None)
        whose metadata holds every ``metadata`` item (a key missing never matches, even a
        ``None`` value), or None. The trial's own artifacts come first, then each ancestor's
        up to its cut: what ``load_artifact``, ``kleio pdb`` and the read API return."""
        wanted = metadata or {}
        for doc, upto in reversed(self.lineage(trial_id=trial_id)):
            while True:
                events = self.read_events(
                    trial_id=doc["id"], kinds=("artifact",), upto=upto, limit=batch, reverse=True
                )
                for event in events:
                    if artifact_matches(event.data, filename, wanted):
                        return event
                if len(events) < batch:
                    break
                upto = events[-1].seq - 1
        return None

    def tail_lineage_events(
        self, *, trial_id: str, kinds: Sequence[str], count: int
    ) -> list[Event]:
        """Return the last ``count`` events of the given kinds over a trial's lineage."""
        result: list[Event] = []
        for doc, upto in reversed(self.lineage(trial_id=trial_id)):
            need = count - len(result)
            if need <= 0:
                break
            events = self.read_events(
                trial_id=doc["id"], kinds=kinds, upto=upto, limit=need, reverse=True
            )
            result.extend(events)
        result.reverse()
        return result[-count:] if count else []

    def last_status(self, *, trial_id: str) -> Event | None:
        """Return the newest status event of a trial (its own, not its ancestors')."""
        events = self.read_events(trial_id=trial_id, kinds=("status",), limit=1, reverse=True)
        return events[0] if events else None

    def resolve_id(self, *, prefix: str) -> list[str]:
        """Return the ids of the trials whose id starts with ``prefix`` (at most 10)."""
        return [doc["id"] for doc in self.find_trials(id_prefix=prefix, sort="id", limit=10)]
