"""The MongoDB store's reads of the summaries it keeps (:mod:`kleio.storage.mongodb_summaries`
writes them): a page's summaries, the marks before a cut, a trial's step runs, the primary
metrics declared, trials ranked by a metric along the summaries' indexes. The store's
primitives call these; :mod:`kleio.storage.summary_reads` builds its reads on the primitives.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

import pymongo

from kleio.storage.mongodb_layout import INT64, event_key, native


def summary_state(doc: dict[str, Any] | None) -> dict[str, Any]:
    """A trial's summary state (``trials._sum``) with its defaults: a missing one is empty."""
    state = doc or {}
    return {
        "last_stat_seq": state.get("last_stat_seq"),
        "runs_ok": bool(state.get("runs_ok")),
        "since_mark": state.get("since_mark") or 0,
    }


class SummaryReadsMixin:
    """The summary reads of :class:`kleio.storage.mongodb.MongoDBStore` (a base of
    :class:`kleio.storage.mongodb_summaries.SummariesMixin`).

    Callers (the store's ``_guarded`` primitives) turn pymongo failures into one
    :class:`~kleio.errors.StoreUnavailable`; ``self._db`` is the database.
    """

    _db: Any

    def _read_summaries_of(self, trial_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        from kleio.storage.summary_entries import ENTRY_FIELDS

        found: dict[str, dict[str, Any]] = {}
        for doc in self._db.trials.find(
            {"_id": {"$in": list(trial_ids)}, "_sum": {"$exists": True}}, {"_sum": 1}
        ):
            state = summary_state(doc["_sum"])
            found[doc["_id"]] = {
                "entries": {},
                "modes": {},
                "primary": None,
                "last_stat_seq": state["last_stat_seq"],
                "runs_ok": state["runs_ok"],
            }
        if not found:
            return found
        for doc in self._db.summaries.find({"trial_id": {"$in": list(found)}}, batch_size=10_000):
            summary = found[doc["trial_id"]]
            name = doc["name"]
            if doc.get("count"):
                summary["entries"][name] = {k: doc.get(k) for k in ENTRY_FIELDS}
            if doc.get("mode") is not None:
                summary["modes"][name] = doc["mode"]
            if doc.get("primary"):
                summary["primary"] = name
        return found

    def _summary_mark_of(
        self, trial_id: str, upto: int
    ) -> tuple[int, dict[str, dict[str, Any]]] | None:
        from kleio.storage.summary_entries import ENTRY_FIELDS

        trial = self._db.trials.find_one({"_id": trial_id}, {"_sum": 1})
        if trial is None or not summary_state(trial.get("_sum"))["runs_ok"]:
            return None  # marks hold only while statistics came in order
        high = min(upto, INT64[1])
        if high < 0:
            return None
        found = list(
            self._db.summary_marks.find(
                {
                    "_id": {"$gte": event_key(trial_id, 0), "$lte": event_key(trial_id, high)},
                    "trial_id": trial_id,
                },
                sort=[("_id", pymongo.DESCENDING)],
            ).limit(1)
        )
        if not found:
            return None
        return int(found[0]["seq"]), {
            item["name"]: {k: item.get(k) for k in ENTRY_FIELDS} for item in found[0]["entries"]
        }

    def _summary_marks_of(
        self, cuts: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[int, dict[str, dict[str, Any]]]]:
        """The latest mark at or before each ``(trial id, upto)``: three requests (the
        trials' states, the marks' keys, the chosen marks) whatever the number of cuts."""
        from kleio.storage.summary_entries import ENTRY_FIELDS

        ids = list({trial_id for trial_id, _ in cuts})
        ordered = {
            doc["_id"]
            for doc in self._db.trials.find({"_id": {"$in": ids}}, {"_sum": 1})
            if summary_state(doc.get("_sum"))["runs_ok"]
        }  # marks hold only then
        spans = [(t, min(upto, INT64[1])) for t, upto in cuts if t in ordered and upto >= 0]
        if not spans:
            return {}
        keys = self._db.summary_marks.find(
            {
                "$or": [
                    {"_id": {"$gte": event_key(t, 0), "$lte": event_key(t, high)}}
                    for t, high in spans
                ]
            },
            {"trial_id": 1, "seq": 1},
        )
        seqs: dict[str, list[int]] = {}
        for doc in keys:
            seqs.setdefault(doc["trial_id"], []).append(int(doc["seq"]))
        chosen: dict[tuple[str, int], int] = {}
        for (trial_id, upto), (_, high) in zip(
            [c for c in cuts if c[0] in ordered and c[1] >= 0], spans
        ):
            below = [seq for seq in seqs.get(trial_id, ()) if seq <= high]
            if below:
                chosen[(trial_id, upto)] = max(below)
        if not chosen:
            return {}
        marks = {
            doc["_id"]: doc
            for doc in self._db.summary_marks.find(
                {"_id": {"$in": [event_key(t, seq) for (t, _), seq in chosen.items()]}}
            )
        }
        found = {}
        for (trial_id, upto), seq in chosen.items():
            doc = marks.get(event_key(trial_id, seq))
            if doc is not None:
                found[(trial_id, upto)] = (
                    seq,
                    {
                        item["name"]: {k: item.get(k) for k in ENTRY_FIELDS}
                        for item in doc["entries"]
                    },
                )
        return found

    def _step_runs_of(self, trial_id: str, key: str) -> list[dict[str, Any]] | None:
        trial = self._db.trials.find_one({"_id": trial_id}, {"_sum": 1})
        if trial is None:
            return []
        if not (trial.get("_sum") or {}).get("runs_ok"):
            return None
        return [
            {"first_seq": int(d["first_seq"]), "last_seq": int(d["last_seq"]), "value": d["value"]}
            for d in self._db.step_runs.find(
                {"trial_id": trial_id, "key": key}, sort=[("first_seq", pymongo.ASCENDING)]
            )
        ]

    def _declared_primaries_of(self, query: dict[str, Any]) -> tuple[set[str], bool]:
        names: set[str] = set()
        declaring = 0
        rows = self._db.summaries.find({"primary": True}, {"trial_id": 1, "name": 1})
        by_trial = {row["trial_id"]: row["name"] for row in rows}
        total = 0
        for doc in self._db.trials.find(query, {"_id": 1}):
            total += 1
            name = by_trial.get(doc["_id"])
            if name is not None:
                names.add(name)
                declaring += 1
        return names, total > declaring

    def _rank_trials_of(
        self,
        *,
        metric: str,
        mode: str | None,
        default_mode: str | None,
        descending: bool,
        since: float | None,
        trial_query: dict[str, Any],
        offset: int,
        limit: int,
    ) -> list[tuple[dict[str, Any], float]]:
        direction = pymongo.DESCENDING if descending else pymongo.ASCENDING
        streams = []
        for side in ("max", "min") if mode is None else (mode,):
            query: dict[str, Any] = {"name": metric, side: {"$ne": None}}
            if mode is None:
                query["mode"] = {"$in": [side, None]} if default_mode == side else side
            if since is not None:
                query["created_at"] = {"$gte": float(since)}
            cursor = self._db.summaries.find(
                query,
                {"trial_id": 1, side: 1, "created_at": 1},
                sort=[
                    (side, direction),
                    ("created_at", pymongo.DESCENDING),
                    ("trial_id", pymongo.ASCENDING),
                ],
            )
            streams.append(_ranked(cursor, side, descending))
        merged = heapq.merge(*streams) if len(streams) > 1 else streams[0]
        out: list[tuple[dict[str, Any], float]] = []
        skip = offset
        batch: list[tuple[Any, ...]] = []

        def flush() -> bool:
            nonlocal skip
            ids = [item[2] for item in batch]
            docs = {d["_id"]: d for d in self._db.trials.find({**trial_query, "_id": {"$in": ids}})}
            for item in batch:
                doc = docs.get(item[2])
                if doc is None:
                    continue
                if skip:
                    skip -= 1
                    continue
                out.append((self._from_mongo(doc), item[3]))  # type: ignore[attr-defined]
                if len(out) >= limit:
                    return True
            batch.clear()
            return False

        for item in merged:
            batch.append(item)
            if len(batch) >= max(64, limit + offset) and flush():
                return out
        if batch:
            flush()
        return out


def _ranked(cursor: Any, side: str, descending: bool) -> Any:
    """``(sort key..., trial id, best)`` of summaries read in order, for heapq.merge."""
    for doc in cursor:
        value = doc.get(side)
        if value is None:  # tested again: a server may get {$ne: null} wrong
            continue
        value = native(value)  # an int64 as the int it was (read as bson's Int64)
        yield (
            -value if descending else value,
            -(doc.get("created_at") or 0),
            doc["trial_id"],
            value,
        )
