"""The summaries the MongoDB store keeps beside the journal (see :mod:`kleio.storage.summary`):
their collections, and how the statistics appended update them (their reads are in
:mod:`kleio.storage.mongodb_summary_reads`).

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

from typing import Any

import pymongo
from bson.int64 import Int64
from pymongo import UpdateMany, UpdateOne

from kleio.storage.base import encodable
from kleio.storage.mongodb_layout import event_key, plain
from kleio.storage.mongodb_summary_reads import SummaryReadsMixin, summary_state

#: Statistics between two summary marks (as :data:`kleio.storage.sqlite.MARK_EVERY`).
MARK_EVERY = 10_000


class SummariesMixin(SummaryReadsMixin):
    """The summary primitives of :class:`kleio.storage.mongodb.MongoDBStore`: the writes
    here, the reads in :class:`~kleio.storage.mongodb_summary_reads.SummaryReadsMixin`.

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
        state = summary_state(trial["_sum"])
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
