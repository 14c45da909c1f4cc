"""The MongoDB store's batched reads (:mod:`kleio.storage.batched`): one request over every
id of a page (``$in``, or ``$or`` of ``seq`` ranges) instead of one per trial.

Replies carry :data:`BATCH` documents, not pymongo's first 101 and then the rest: a page's
status events come back in one reply (the server still caps a reply at 16 MiB). Nothing is
sorted by the server: a sort of every range's events could pass its memory limit, and each
caller puts what it needs in order. :class:`BatchedMixin` is a base of
:class:`kleio.storage.mongodb.MongoDBStore`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from bson.int64 import Int64
from pymongo.errors import PyMongoError

from kleio.storage.base import Event
from kleio.storage.mongodb_layout import INT64, guarded

#: Documents per reply of a batched read.
BATCH = 10_000


class BatchedMixin:
    """Batched reads of the MongoDB store (``self._db`` and the store's converters)."""

    _db: Any

    if TYPE_CHECKING:  # provided by the store and SummariesMixin (stubs would shadow them)

        def _unavailable(self, exc: BaseException) -> Any: ...
        @staticmethod
        def _from_mongo(doc: dict[str, Any]) -> dict[str, Any]: ...
        @staticmethod
        def _to_event(doc: dict[str, Any]) -> Event: ...
        def _summary_marks_of(
            self, cuts: Sequence[tuple[str, int]]
        ) -> dict[tuple[str, int], tuple[int, dict[str, dict[str, Any]]]]: ...

    @guarded
    def _get_trials(self, *, trial_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {
            doc["_id"]: self._from_mongo(doc)
            for doc in self._db.trials.find({"_id": {"$in": list(trial_ids)}}, batch_size=BATCH)
        }

    @guarded
    def _with_branches(self, *, trial_ids: Sequence[str]) -> set[str]:
        # One distinct over the parent index, for the ids of a page.
        return set(self._db.trials.distinct("parent.id", {"parent.id": {"$in": list(trial_ids)}}))

    @guarded
    def _read_events_of(
        self, *, trial_ids: Sequence[str], kinds: Sequence[str]
    ) -> dict[str, list[Event]]:
        # Served by the (trial_id, kind, seq) index; the caller puts each trial's in order.
        found: dict[str, list[Event]] = {}
        for doc in self._db.events.find(
            {"trial_id": {"$in": list(trial_ids)}, "kind": {"$in": list(kinds)}}, batch_size=BATCH
        ):
            event = self._to_event(doc)
            found.setdefault(event.trial_id, []).append(event)
        return found

    def _iter_ranges(
        self, *, kind: str, ranges: Sequence[tuple[str, int | None, int | None]]
    ) -> Iterator[tuple[int, Event]]:
        spans = [
            (t, -1 if after is None else after, INT64[1] if upto is None else min(upto, INT64[1]))
            for t, after, upto in ranges
        ]
        clauses = [
            {"trial_id": t, "kind": kind, "seq": {"$gt": Int64(low), "$lte": Int64(high)}}
            for t, low, high in spans
            if low < high
        ]
        if not clauses:
            return
        by_trial: dict[str, list[int]] = {}
        for index, (trial_id, _, _) in enumerate(spans):
            by_trial.setdefault(trial_id, []).append(index)
        try:
            # One cursor, streamed in any order: a server sort could pass its memory.
            for doc in self._db.events.find({"$or": clauses}, batch_size=BATCH):
                event = self._to_event(doc)
                for index in by_trial.get(event.trial_id, ()):  # ranges may overlap
                    _, low, high = spans[index]
                    if low < event.seq <= high:
                        yield index, event
        except PyMongoError as exc:
            raise self._unavailable(exc) from None

    @guarded
    def _summary_marks(
        self, *, cuts: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[int, dict[str, dict[str, Any]]]]:
        return self._summary_marks_of(cuts)
