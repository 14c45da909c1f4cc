"""The summaries the MongoDB store keeps beside the journal (see :mod:`kleio.storage.summary`).

Collections (no document grows with the journal)::

    summaries      {_id: "<trial id>:<name>", trial_id, name, created_at, mode, primary,
                    count, last, last_seq, min, min_seq, min_step, min_step_key, max, ...}
    step_runs      {_id: "<trial id>:<key>:<first seq as 16 hex digits>", trial_id, key,
                    first_seq, last_seq, value}
    summary_marks  {_id: "<trial id>:<seq as 16 hex digits>", trial_id, seq,
                    entries: [{name, count, last, ...}, ...]}
    trials._sum    {last_stat_seq, runs_ok, since_mark}: the trial's summary state

A batch of statistics costs a constant number of requests whatever the names it holds: the
trial's state, its summaries and its open runs are read (three finds), then every change is
sent in one unordered ``bulk_write`` per collection and the state last. Every write *sets*
values (``$set``, upserts keyed by ``_id``), never increments them, so a request the driver
retries, or a bulk write sent again, leaves the same documents. A replayed batch of events
does not count twice either: only the events that the insert took (not the duplicate keys)
are folded.

Marks: every :data:`MARK_EVERY` statistics in order (``runs_ok``), the trial's summaries as
they stood, as SQLite keeps them: a branch cut in the middle of a long trial summarizes its
inherited part from the mark before the cut and at most :data:`MARK_EVERY` statistics.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

import pymongo
from bson.int64 import Int64
from pymongo import UpdateMany, UpdateOne

from kleio.storage.base import encodable
from kleio.storage.mongodb_layout import INT64, event_key, plain

#: Statistics between two summary marks (as :data:`kleio.storage.sqlite.MARK_EVERY`).
MARK_EVERY = 10_000


def _state(doc: dict[str, Any] | None) -> dict[str, Any]:
    state = doc or {}
    return {
        "last_stat_seq": state.get("last_stat_seq"),
        "runs_ok": bool(state.get("runs_ok")),
        "since_mark": state.get("since_mark") or 0,
    }


class SummariesMixin:
    """The summary primitives of :class:`kleio.storage.mongodb.MongoDBStore`.

    Callers (the store's ``_guarded`` primitives) turn pymongo failures into one
    :class:`~kleio.errors.StoreUnavailable`; ``self._db`` is the database.
    """

    _db: Any

    def _summarize(self, trial_id: str, stats: list[tuple[int, str]], declared: bool) -> None:
        """Fold newly inserted statistics into the trial's summaries.

        Without transactions: the trial's runner is the one writer of its events (the
        reservation guarantees it), so reading and rewriting its summaries is safe.
        """
        from kleio.storage.summary import Fold, new_entry

        trial = self._db.trials.find_one({"_id": trial_id}, {"_sum": 1, "created_at": 1})
        if trial is None:
            return
        if trial.get("_sum") is None:
            self._resummarize(trial_id)
            return
        state = _state(trial["_sum"])
        if stats:
            # Every summary of the trial (tens of names): a mark copies them all, and no pass
            # over the batch is needed to name them.
            entries: dict[str, dict[str, Any]] = {}
            fields = new_entry()
            for doc in self._db.summaries.find({"trial_id": trial_id, "count": {"$gt": 0}}):
                entries[doc["name"]] = {k: doc.get(k) for k in fields}
            runs: dict[str, dict[str, Any]] = {}
            if state["runs_ok"] and state["last_stat_seq"] is not None:
                for doc in self._db.step_runs.find(
                    {"trial_id": trial_id, "last_seq": state["last_stat_seq"]}
                ):
                    runs[doc["key"]] = {
                        "first_seq": doc["first_seq"],
                        "last_seq": doc["last_seq"],
                        "value": doc["value"],
                    }
            fold = Fold(entries, state, runs, mark_every=MARK_EVERY)
            fold.add_texts(stats)  # by columns where it can, as add(seq, decode(text)) each
            self._write_fold(trial_id, trial.get("created_at"), fold)
        if declared:
            self._declare(trial_id, trial.get("created_at"))

    def _resummarize(self, trial_id: str) -> None:
        """Rebuild one trial's summaries, runs, marks and declarations from its events."""
        from kleio.storage.summary import Fold

        trial = self._db.trials.find_one({"_id": trial_id}, {"created_at": 1})
        if trial is None:
            return
        for name in ("summaries", "step_runs", "summary_marks"):
            self._db[name].delete_many({"trial_id": trial_id})
        fold = Fold(mark_every=MARK_EVERY)
        cursor = self._db.events.find(
            {"trial_id": trial_id, "kind": "statistic"}, sort=[("seq", pymongo.ASCENDING)]
        )
        for doc in cursor:
            event = self._to_event(doc)  # type: ignore[attr-defined]
            fold.add(event.seq, {k: v for k, v in event.data.items() if encodable(k)})
        self._write_fold(trial_id, trial.get("created_at"), fold)
        self._declare(trial_id, trial.get("created_at"))

    def _write_fold(self, trial_id: str, created_at: Any, fold: Any) -> None:
        """Send what the fold changed: one bulk write per collection, the state last (a
        crash before it leaves the state of the previous batch, never a state ahead of the
        summaries)."""
        summaries = [
            UpdateOne(
                {"_id": f"{trial_id}:{name}"},
                {
                    "$set": {
                        **{k: plain(v) for k, v in fold.entries[name].items()},
                        "trial_id": trial_id,
                        "name": name,
                        "created_at": created_at,
                    },
                    "$setOnInsert": {"mode": None, "primary": False},
                },
                upsert=True,
            )
            for name in fold.changed
        ]
        if summaries:
            self._db.summaries.bulk_write(summaries, ordered=False)
        runs = [
            UpdateOne(
                {"_id": f"{trial_id}:{key}:{first:016x}"},
                {
                    "$set": {
                        "trial_id": trial_id,
                        "key": key,
                        "first_seq": Int64(first),
                        "last_seq": Int64(run["last_seq"]),
                        "value": plain(run["value"]),
                    }
                },
                upsert=True,
            )
            for (key, first), run in fold.changed_runs.items()
        ]
        if runs:
            self._db.step_runs.bulk_write(runs, ordered=False)
        marks = [
            UpdateOne(
                {"_id": event_key(trial_id, seq)},
                {
                    "$set": {
                        "trial_id": trial_id,
                        "seq": Int64(seq),
                        "entries": [
                            {**{k: plain(v) for k, v in entry.items()}, "name": name}
                            for name, entry in entries.items()
                        ],
                    }
                },
                upsert=True,
            )
            for seq, entries in fold.marks
        ]
        if marks:
            self._db.summary_marks.bulk_write(marks, ordered=False)
        state = fold.state
        self._db.trials.update_one(
            {"_id": trial_id},
            {
                "$set": {
                    "_sum": {
                        "last_stat_seq": state["last_stat_seq"],
                        "runs_ok": bool(state["runs_ok"]),
                        "since_mark": int(state.get("since_mark") or 0),
                    }
                }
            },
        )

    def _declare(self, trial_id: str, created_at: Any) -> None:
        """Bring the trial's declared modes and primary metric in line with its events."""
        from kleio.storage.summary import declarations, new_entry

        datas = [
            e.data
            for e in self._read_events(  # type: ignore[attr-defined]
                trial_id=trial_id,
                kinds=("metrics",),
                after=None,
                upto=None,
                limit=None,
                reverse=False,
            )
        ]
        modes, primary = declarations(datas)
        named = [
            name
            for name in {**dict.fromkeys(modes), **({primary: None} if primary else {})}
            if encodable(name)
        ]
        keys = [f"{trial_id}:{name}" for name in named]
        # Unordered: the reset names none of the declared (no write depends on another).
        writes: list[Any] = [
            UpdateMany(
                {"trial_id": trial_id, "_id": {"$nin": keys}},
                {"$set": {"mode": None, "primary": False}},
            )
        ]
        writes += [
            UpdateOne(
                {"_id": key},
                {
                    "$set": {"mode": modes.get(name), "primary": name == primary},
                    "$setOnInsert": {
                        **new_entry(),
                        "trial_id": trial_id,
                        "name": name,
                        "created_at": created_at,
                    },
                },
                upsert=True,
            )
            for name, key in zip(named, keys)
        ]
        self._db.summaries.bulk_write(writes, ordered=False)

    def _read_summaries_of(self, trial_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        from kleio.storage.summary import ENTRY_FIELDS

        found: dict[str, dict[str, Any]] = {}
        for doc in self._db.trials.find(
            {"_id": {"$in": list(trial_ids)}, "_sum": {"$exists": True}}, {"_sum": 1}
        ):
            state = _state(doc["_sum"])
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
        from kleio.storage.summary import ENTRY_FIELDS

        trial = self._db.trials.find_one({"_id": trial_id}, {"_sum": 1})
        if trial is None or not _state(trial.get("_sum"))["runs_ok"]:
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
        from kleio.storage.summary import ENTRY_FIELDS

        ids = list({trial_id for trial_id, _ in cuts})
        ordered = {
            doc["_id"]
            for doc in self._db.trials.find({"_id": {"$in": ids}}, {"_sum": 1})
            if _state(doc.get("_sum"))["runs_ok"]
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
        yield (
            -value if descending else value,
            -(doc.get("created_at") or 0),
            doc["trial_id"],
            value,
        )
