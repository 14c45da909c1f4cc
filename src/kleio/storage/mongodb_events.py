"""A trial's journal in MongoDB: events encoded, appended (one or a batch) and read in order.

One event per document of ``events``::

    {_id: "<trial id>:<seq as 16 hex digits>", trial_id, seq (int64), kind, time,
     data (a sub-document), esc (when data holds an escaped value)}

The fixed-width hex ``_id`` makes ``(trial_id, seq)`` unique through the one index every
collection has (enforced by the server without relying on a secondary index having been
built) and sorts like ``seq``, so reading a trial's journal in order is a range scan of that
index. Filters on ``kind`` use the ``(trial_id, kind, seq)`` index. Events are only ever
inserted: the journal stays append-only. The statistics an append takes are folded into the
trial's summaries (:mod:`kleio.storage.mongodb_summaries`). :class:`EventsMixin` is a base of
:class:`kleio.storage.mongodb.MongoDBStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pymongo
from bson import encode as bson_encode
from bson.int64 import Int64
from pymongo.errors import BulkWriteError, DuplicateKeyError

from kleio.errors import StoreUnavailable
from kleio.storage.base import Event, NewEvent, decode, iter_chunks
from kleio.storage.mongodb_layout import (
    INT64,
    SENTINEL,
    escape,
    event_key,
    guarded,
    native,
    unescape,
    wrap,
)

_INSERT_CHUNK = 1000
#: MongoDB's maxBsonObjectSize less room for the envelope, and the JSON text above which an
#: event's document size is checked (a list of small numbers is ~6x longer in BSON).
_MAX_DOCUMENT = (16 << 20) - (16 << 10)
_CHECKED_TEXT = 1 << 20
#: Write errors that mean "not now" (no primary, shutting down, interrupted...): the journal
#: is unavailable, replaying later is safe. Any other refusal is about the event itself.
_RETRYABLE_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})


class EventsMixin:
    """The event primitives of the MongoDB store (``self._db``, ``self._hosts``)."""

    _db: Any
    _hosts: str

    if TYPE_CHECKING:  # provided by the store's other bases (stubs would shadow them)

        def _summarize(
            self, trial_id: str, stats: list[tuple[int, str]], declared: bool
        ) -> None: ...
        def _update_trial(self, *, trial_id: str, fields: dict[str, Any]) -> None: ...

    @staticmethod
    def _event_doc(trial_id: str, event: NewEvent) -> dict[str, Any]:
        seq, kind, when, text = event
        if not 0 <= seq <= INT64[1]:
            raise ValueError(f"event seq {seq} is outside 0..2**63-1")
        data, escaped = escape(decode(text))
        if not isinstance(data, dict):
            data, escaped = wrap(data), True
        doc = {
            "_id": event_key(trial_id, seq),
            "trial_id": trial_id,
            "seq": Int64(seq),  # one BSON type for every seq, whatever its size
            "kind": kind,
            "time": float(when),
            "data": data,
        }
        if escaped:
            doc["esc"] = True
        if len(text) > _CHECKED_TEXT and len(bson_encode(doc)) > _MAX_DOCUMENT:
            # Kept whole as its JSON text, which the reading side decodes (no query looks
            # inside the data of such an event).
            doc["data"], doc["esc"] = {SENTINEL: text}, True
        return doc

    @staticmethod
    def _to_event(doc: dict[str, Any]) -> Event:
        data = unescape(doc["data"]) if doc.get("esc") else native(doc["data"])
        return Event(doc["trial_id"], int(doc["seq"]), doc["kind"], doc["time"], data)

    @guarded
    def _try_append(self, *, trial_id: str, event: NewEvent, fields: dict[str, Any] | None) -> bool:
        try:
            self._db.events.insert_one(self._event_doc(trial_id, event))
        except DuplicateKeyError:
            return False
        if event[1] in ("statistic", "metrics"):
            self._summarize(
                trial_id,
                [(event[0], event[3])] if event[1] == "statistic" else [],
                event[1] == "metrics",
            )
        # Not atomic with the insert (no transactions): the journal is the truth and the
        # trial's cached fields are rewritten by the next update if this one is lost.
        if fields:
            self._update_trial(trial_id=trial_id, fields=fields)
        return True

    @guarded
    def _append_events(self, *, trial_id: str, events: Sequence[NewEvent]) -> int:
        inserted = 0
        stats: list[tuple[int, str]] = []
        declared = False
        # A replay meets events already in: folded then, unless the summaries were dropped
        # since (an outage below), which the state read by _summarize tells.
        replayed = False
        refusal: str | None = None
        for chunk in iter_chunks(events, _INSERT_CHUNK):
            docs = [self._event_doc(trial_id, event) for event in chunk]
            skipped: set[int] = set()
            try:
                inserted += len(self._db.events.insert_many(docs, ordered=False).inserted_ids)
            except BulkWriteError as exc:
                details = exc.details
                errors = details.get("writeErrors", [])
                others = [e for e in errors if e.get("code") != 11000]
                concern: list[Any] = details.get("writeConcernErrors") or []
                if concern or any(e.get("code") in _RETRYABLE_CODES for e in others):
                    # Some events may be in: summaries are rebuilt from the journal next time.
                    self._db.trials.update_one({"_id": trial_id}, {"$unset": {"_sum": ""}})
                    first = (others or concern)[0]
                    raise StoreUnavailable(
                        f"the MongoDB server at {self._hosts} refused journal events: "
                        f"{first.get('errmsg', first)}",
                        "replaying the batch later is safe",
                    ) from None
                inserted += details.get("nInserted", 0)
                skipped = {e.get("index") for e in errors}
                replayed = replayed or len(others) < len(errors)
                if others:
                    refusal = others[0].get("errmsg", others[0])
            for index, event in enumerate(chunk):
                if index in skipped:
                    continue
                if event[1] == "statistic":
                    stats.append((event[0], event[3]))
                elif event[1] == "metrics":
                    declared = True
            if refusal is not None:
                break
        if stats or declared or replayed:
            # Also when an event was refused for what it holds (too large, invalid): an
            # unordered insert takes every other document (MongoDB's documented behaviour),
            # so they are folded now, as the batch path would; the runner then stores the
            # batch one by one (kleio.spool.store_each) and finds them in.
            self._summarize(trial_id, stats, declared)
        if refusal is not None:
            # Not an outage: the runner counts the refused events in the final status.
            raise ValueError(
                f"the MongoDB server at {self._hosts} refused journal events: {refusal}"
            )
        return inserted

    @guarded
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
        low = 0 if after is None else max(after + 1, 0)
        high = INT64[1] if upto is None else min(upto, INT64[1])
        if low > high:
            return []
        direction = pymongo.DESCENDING if reverse else pymongo.ASCENDING
        if kinds is None:
            # The _id index: keys sort like seq within a trial (trial_id filter for safety).
            query: dict[str, Any] = {
                "_id": {"$gte": event_key(trial_id, low), "$lte": event_key(trial_id, high)},
                "trial_id": trial_id,
            }
            order = [("_id", direction)]
        else:
            query = {
                "trial_id": trial_id,
                "kind": {"$in": list(kinds)},
                "seq": {"$gte": Int64(low), "$lte": Int64(high)},
            }
            order = [("seq", direction)]
        cursor = self._db.events.find(query, sort=order)
        if limit is not None:
            cursor = cursor.limit(limit)
        return [self._to_event(doc) for doc in cursor]

    @guarded
    def _count_events(self, *, trial_id: str, kind: str, upto: int | None) -> int:
        query: dict[str, Any] = {"trial_id": trial_id, "kind": kind}
        if upto is not None:
            query["seq"] = {"$lte": Int64(min(upto, INT64[1]))}
        return int(self._db.events.count_documents(query))

    def _last_seq(self, *, trial_id: str) -> int | None:
        # As Store.read_events(trial_id=..., limit=1, reverse=True) asks it.
        events = self._read_events(
            trial_id=trial_id, kinds=None, after=None, upto=None, limit=1, reverse=True
        )
        return events[0].seq if events else None
