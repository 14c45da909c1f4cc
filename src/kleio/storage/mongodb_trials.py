"""Trial documents in MongoDB: created once, their cached fields updated, found by filters.

One document per trial in ``trials``::

    {_id: trial id, ...the trial document without "id",
     _sum: its summary state (kleio.storage.mongodb_summaries),
     _opts: its options as where compares them (kleio.storage.mongodb_where),
     _esc: true when a field holds a value BSON cannot hold as it is}

Listings sort by the field asked, then ``_id`` (a stable order); trials lacking a sort field
that may be null (never started, ended, beat) come last in both directions, as in SQLite.
:class:`TrialsMixin` is a base of :class:`kleio.storage.mongodb.MongoDBStore`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pymongo
from pymongo.errors import DuplicateKeyError

from kleio.storage.base import NULLABLE_SORTS
from kleio.storage.mongodb_layout import escape, guarded, safe_key, unescape
from kleio.storage.mongodb_where import narrowing, option_index


class TrialsMixin:
    """The trial primitives of the MongoDB store (``self._db``)."""

    _db: Any

    @staticmethod
    def _to_mongo(fields: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        escaped_any = False
        for key, value in fields.items():
            if not safe_key(key) or key in ("_id", "_esc", "_opts", "_sum"):
                raise ValueError(f"trial field name {key!r} cannot be stored in MongoDB")
            out[key], escaped = escape(value)
            escaped_any = escaped_any or escaped
        if escaped_any:
            out["_esc"] = True
        return out

    @staticmethod
    def _from_mongo(doc: dict[str, Any]) -> dict[str, Any]:
        trial_id = doc.pop("_id")
        doc.pop("_sum", None)
        doc.pop("_opts", None)
        if doc.pop("_esc", False):
            doc = unescape(doc)
        return {"id": trial_id, **doc}

    @guarded
    def _create_trial(self, *, doc: dict[str, Any]) -> bool:
        body = self._to_mongo({k: v for k, v in doc.items() if k != "id"})
        try:
            # _sum: the trial's summary state (kleio.storage.summary), complete from the start.
            # _opts: the options as where-conditions compare them (mongodb_where).
            self._db.trials.insert_one(
                {
                    "_id": doc["id"],
                    **body,
                    "_sum": {"last_stat_seq": None, "runs_ok": True},
                    "_opts": option_index(doc.get("config")),
                }
            )
        except DuplicateKeyError:
            return False
        return True

    @guarded
    def _get_trial(self, *, trial_id: str) -> dict[str, Any] | None:
        doc = self._db.trials.find_one({"_id": trial_id})
        return None if doc is None else self._from_mongo(doc)

    @guarded
    def _update_trial(self, *, trial_id: str, fields: dict[str, Any]) -> None:
        self._db.trials.update_one({"_id": trial_id}, {"$set": self._to_mongo(fields)})

    @staticmethod
    def _filters(
        *,
        statuses: Sequence[str] | None,
        tags: Sequence[str] | None,
        since: float | None,
        project: str | None,
        branches: bool | None,
    ) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if statuses is not None:
            query["status"] = {"$in": list(statuses)}
        if tags:
            query["tags"] = {"$all": list(tags)}
        if since is not None:
            query["created_at"] = {"$gte": float(since)}
        if project:
            query["project"] = {"$regex": re.escape(project)}
        if branches is not None:
            if branches:
                query["parent.id"] = {"$exists": True}
            else:
                query["parent"] = None
        return query

    @guarded
    def _find_trials_narrowed(
        self, *, hints: Sequence[tuple[str, str, float]], **filters: Any
    ) -> list[dict[str, Any]]:
        return self._find_trials(**filters, narrow=narrowing(self._db, hints))

    @guarded
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
        narrow: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        query = self._filters(
            statuses=statuses, tags=tags, since=since, project=project, branches=branches
        )
        if narrow:
            query = {**query, "$and": [narrow]} if query else narrow
        if id_prefix:
            # An anchored, case-sensitive regex is answered by a range scan of the _id index.
            query["_id"] = {"$regex": "^" + re.escape(id_prefix)}
        if parent_id is not None:
            query["parent.id"] = parent_id
        key = "_id" if field == "id" else field
        direction = pymongo.DESCENDING if descending else pymongo.ASCENDING
        order = [(key, direction), ("_id", direction)] if key != "_id" else [(key, direction)]
        if field not in NULLABLE_SORTS:
            docs = list(self._find(query, order, limit))
        else:
            # MongoDB sorts null/missing first when ascending; two index-served queries put
            # trials that never started (ended, beat) last in both directions, like SQLite.
            docs = list(self._find({**query, key: {"$ne": None}}, order, limit))
            if limit is None or len(docs) < limit:
                rest = None if limit is None else limit - len(docs)
                docs += self._find({**query, key: None}, [("_id", direction)], rest)
        return [self._from_mongo(doc) for doc in docs]

    def _find(self, query: dict[str, Any], order: list[Any], limit: int | None) -> list[Any]:
        cursor = self._db.trials.find(query, sort=order)
        if limit is not None:
            cursor = cursor.limit(limit)
        return list(cursor)
