"""The MongoDB backend: a replica set or Atlas cluster shared by many machines and users.

URIs are ``mongodb://[user:password@]host[:port][,host...]/[database][?options]`` or
``mongodb+srv://...``. The database is the URI's path and defaults to ``kleio``. kleio sets
``retryWrites=true``, ``appname=kleio`` and a server selection timeout of a few seconds unless
the URI sets them itself. This module is the only one that imports pymongo; the registry in
:mod:`kleio.storage` imports it lazily.

Layout (no multi-document transactions; no document grows without bound)::

    meta          {_id: "schema", version, indexes}
    trials        {_id: trial id, ...the trial document without "id",
                   _sum: its summary state, _opts: its options as where compares them}
    events        {_id: "<trial id>:<seq as 16 hex digits>", trial_id, seq (int64), kind,
                   time, data (a sub-document)}              one event per document
    blobs.files   GridFS bucket "blobs": filename = sha256 (unique index), _id = ObjectId
    blobs.chunks
    summaries, step_runs, summary_marks    see :mod:`kleio.storage.mongodb_summaries`

One concern a module: URIs, BSON-safe values and indexes in :mod:`kleio.storage.mongodb_layout`;
the summaries kept as statistics are appended in :mod:`kleio.storage.mongodb_summaries`; the
reads of a page of trials in :mod:`kleio.storage.mongodb_reads`; ``where`` conditions asked of
the database in :mod:`kleio.storage.mongodb_where`; artifacts' bytes in
:mod:`kleio.storage.mongodb_blobs`. This module holds the store: connecting, trials, events.

Event keys: the fixed-width hex ``_id`` makes ``(trial_id, seq)`` unique through the one
index every collection has (enforced by the server without relying on a secondary index
having been built) and sorts like ``seq``, so reading a trial's journal in order is a range
scan of that index. Filters on ``kind`` use the ``(trial_id, kind, seq)`` index.

Values BSON cannot hold faithfully (strings with lone surrogates from undecodable output,
integers beyond int64, keys starting with ``$``, containing ``.`` or NUL) are stored as
``{"__kleio_json__": "<ASCII JSON>"}`` and decoded on read, so nothing a program logged is
lost; documents holding such a value are flagged so ordinary reads skip the decoding walk.

Least privilege: kleio needs, on its database, ``find`` + ``insert`` + ``update`` on
``trials``, ``meta``, ``summaries``, ``step_runs`` and ``summary_marks``; ``find`` + ``insert``
on ``events`` (never update nor remove: the
journal stays append-only); ``find`` + ``insert`` + ``listIndexes`` on ``blobs.files``;
``find`` + ``insert`` + ``remove`` + ``listIndexes`` on ``blobs.chunks`` (remove only for
the chunks of an upload that lost a race); ``kleio rm`` alone also needs ``remove`` on
``trials``, ``events``, the three summary collections and both blob collections (and rebuilding
an older database's summaries ``remove`` on the summary collections); and ``createIndex`` on
``trials``, ``events``, ``summaries``, ``step_runs`` and both blob collections the first time a
database is used (an administrator can open it once instead).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import pymongo
from bson import encode as bson_encode
from bson.int64 import Int64
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    DuplicateKeyError,
    InvalidName,
    InvalidURI,
    OperationFailure,
)

from kleio.errors import ConfigError, StoreUnavailable
from kleio.storage import mask_uri
from kleio.storage.base import (
    NULLABLE_SORTS,
    SCHEMA_VERSION,
    Event,
    NewEvent,
    Store,
    decode,
    iter_chunks,
    schema_too_new,
)
from kleio.storage.mongodb_blobs import BlobsMixin
from kleio.storage.mongodb_layout import (
    BLOB_BUCKET,
    DEFAULT_DATABASE,
    INDEXES_VERSION,
    INT64,
    SENTINEL,
    database_from_uri,
    ensure_indexes,
    escape,
    event_key,
    guarded,
    has_journal,
    hosts_of,
    safe_key,
    split_uri,
    unescape,
    with_database,
    wrap,
)
from kleio.storage.mongodb_reads import BatchedMixin
from kleio.storage.mongodb_summaries import SummariesMixin
from kleio.storage.mongodb_where import narrowing, option_index

_INSERT_CHUNK = 1000
#: MongoDB's maxBsonObjectSize less room for the envelope, and the JSON text above which an
#: event's document size is checked (a list of small numbers is ~6x longer in BSON).
_MAX_DOCUMENT = (16 << 20) - (16 << 10)
_CHECKED_TEXT = 1 << 20
#: Write errors that mean "not now" (no primary, shutting down, interrupted...): the journal
#: is unavailable, replaying later is safe. Any other refusal is about the event itself.
_RETRYABLE_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})
_AUTH_CODES = frozenset({13, 18})  # Unauthorized, AuthenticationFailed
_CHECK_HINT = "Is the server running and reachable? Check the URI, network and credentials"


# -- the store ----------------------------------------------------------------------------


class MongoDBStore(SummariesMixin, BatchedMixin, BlobsMixin, Store):
    """A journal in a MongoDB database.

    Args:
        uri: ``mongodb://`` or ``mongodb+srv://`` URI; its path names the database.
        client: an existing client to use instead of connecting (tests pass mongomock's);
            it is not closed by :meth:`close`.
        timeout_ms: how long to wait for a reachable server before giving up.

    Raises:
        ConfigError: the URI is malformed.
        StoreUnavailable: no server answers, the credentials are refused, or the schema is
            newer than this kleio (:class:`~kleio.errors.SchemaVersionError`).

    Arguments are checked by :class:`~kleio.storage.base.Store`; the ``_`` primitives here
    turn any pymongo failure into one :class:`~kleio.errors.StoreUnavailable` sentence.
    """

    def __init__(self, uri: str, *, client: Any = None, timeout_ms: int = 5000) -> None:
        self.uri = mask_uri(uri)
        self._hosts = hosts_of(uri)
        self._owns_client = client is None
        if client is None:
            options = {k.lower() for k, _ in parse_qsl(split_uri(uri)[3], keep_blank_values=True)}
            defaults: dict[str, Any] = {
                "retryWrites": True,
                "serverSelectionTimeoutMS": timeout_ms,
                "connectTimeoutMS": timeout_ms,
                "appname": "kleio",
            }
            kwargs = {k: v for k, v in defaults.items() if k.lower() not in options}
            try:
                # pymongo only warns of an unknown option (a typo that silently changes
                # nothing), in lines of Python warnings: make it one clear error instead.
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    client = pymongo.MongoClient(uri, **kwargs)
            except (InvalidURI, ValueError) as exc:
                reason = mask_uri(str(exc)).rstrip(".")
                raise ConfigError(f"invalid MongoDB URI {self.uri!r}: {reason}") from None
            except ConfigurationError as exc:  # e.g. the SRV record cannot be resolved
                raise self._unavailable(exc) from None
            for warning in caught:
                text = str(warning.message)
                if text.startswith("Unknown option"):
                    client.close()
                    known = pymongo.common.URI_OPTIONS_VALIDATOR_MAP
                    names = sorted(k for k in options if k not in known) or ["?"]
                    hint = text.split(". ", 1)[-1].replace("Refer to docstring.", "").strip()
                    raise ConfigError(
                        f"invalid MongoDB URI {self.uri!r}: unknown option {names[0]!r}", hint
                    )
                warnings.warn_explicit(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
        self._client = client
        try:
            self._db = client[database_from_uri(uri)]
        except InvalidName:
            self.close()
            raise ConfigError(
                f"invalid database name {database_from_uri(uri)!r} in {self.uri!r}",
                'MongoDB database names cannot contain /\\. "$ or spaces',
            ) from None
        self._bucket: Any = None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        if isinstance(exc, OperationFailure):
            reason = mask_uri(str((exc.details or {}).get("errmsg") or exc))
            if exc.code in _AUTH_CODES or "auth" in reason.lower():
                return StoreUnavailable(
                    f"the MongoDB server at {self._hosts} refused kleio's credentials or "
                    f"permissions ({reason})",
                    "check the user, password, authSource and roles in the URI",
                )
            return StoreUnavailable(
                f"the MongoDB server at {self._hosts} failed a request: {reason}", _CHECK_HINT
            )
        return StoreUnavailable(f"cannot reach the MongoDB server at {self._hosts}", _CHECK_HINT)

    @guarded
    def _open(self) -> None:
        meta = self._db.meta.find_one({"_id": "schema"}) or {}
        version = meta.get("version", SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise schema_too_new(self.uri, version)
        if meta.get("indexes", 0) < INDEXES_VERSION:
            ensure_indexes(self._db)
            self._db.meta.update_one(
                {"_id": "schema"},
                {"$setOnInsert": {"version": SCHEMA_VERSION}, "$max": {"indexes": INDEXES_VERSION}},
                upsert=True,
            )
        if meta and meta.get("version", SCHEMA_VERSION) < SCHEMA_VERSION:
            self._summarize_old()

    def _summarize_old(self) -> None:
        """Summarize the trials of a database written before summaries, once."""
        for doc in self._db.trials.find({"_sum": {"$exists": False}}, {"_id": 1}):
            self._resummarize(doc["_id"])
        self._db.meta.update_one(
            {"_id": "schema"}, {"$max": {"version": SCHEMA_VERSION}}, upsert=True
        )

    def drop_database(self) -> None:
        """Delete this store's whole database (for tests)."""
        self._client.drop_database(self._db.name)

    # -- trials ---------------------------------------------------------------------------

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

    # -- events ---------------------------------------------------------------------------

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
        data = unescape(doc["data"]) if doc.get("esc") else doc["data"]
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
        for chunk in iter_chunks(events, _INSERT_CHUNK):
            docs = [self._event_doc(trial_id, event) for event in chunk]
            skipped: set[int] = set()
            try:
                inserted += len(self._db.events.insert_many(docs, ordered=False).inserted_ids)
            except BulkWriteError as exc:
                details = exc.details
                others = [e for e in details.get("writeErrors", []) if e.get("code") != 11000]
                if others or details.get("writeConcernErrors"):
                    # Some events may be in: summaries are rebuilt from the journal next time.
                    self._db.trials.update_one({"_id": trial_id}, {"$unset": {"_sum": ""}})
                    first = (others or details["writeConcernErrors"])[0]
                    message = (
                        f"the MongoDB server at {self._hosts} refused journal events: "
                        f"{first.get('errmsg', first)}"
                    )
                    if details.get("writeConcernErrors") or any(
                        e.get("code") in _RETRYABLE_CODES for e in others
                    ):
                        raise StoreUnavailable(
                            message, "replaying the batch later is safe"
                        ) from None
                    # Refused for what it holds (too large, invalid): not an outage. The
                    # runner then stores the batch's events one by one and counts the refused.
                    raise ValueError(message) from None
                inserted += details.get("nInserted", 0)
                skipped = {e.get("index") for e in details.get("writeErrors", [])}
            for index, event in enumerate(chunk):
                if index in skipped:
                    continue
                if event[1] == "statistic":
                    stats.append((event[0], event[3]))
                elif event[1] == "metrics":
                    declared = True
        if stats or declared:
            self._summarize(trial_id, stats, declared)
        return inserted

    # -- summaries (kleio.storage.mongodb_summaries) ---------------------------------------

    @guarded
    def _read_summaries(self, *, trial_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self._read_summaries_of(trial_ids)

    @guarded
    def _summary_mark(
        self, *, trial_id: str, upto: int
    ) -> tuple[int, dict[str, dict[str, Any]]] | None:
        return self._summary_mark_of(trial_id, upto)

    @guarded
    def _step_runs(self, *, trial_id: str, key: str) -> list[dict[str, Any]] | None:
        return self._step_runs_of(trial_id, key)

    @guarded
    def _declared_primaries(
        self,
        *,
        statuses: Sequence[str] | None,
        tags: Sequence[str] | None,
        since: float | None,
        project: str | None,
    ) -> tuple[set[str], bool]:
        return self._declared_primaries_of(
            self._filters(
                statuses=statuses, tags=tags, since=since, project=project, branches=False
            )
        )

    @guarded
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
    ) -> list[tuple[dict[str, Any], float]]:
        trial_query = self._filters(
            statuses=statuses, tags=tags, since=None, project=project, branches=False
        )
        return self._rank_trials_of(
            metric=metric,
            mode=mode,
            default_mode=default_mode,
            descending=descending,
            since=since,
            trial_query=trial_query,
            offset=offset,
            limit=limit,
        )

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
        events = self.read_events(trial_id=trial_id, limit=1, reverse=True)
        return events[0].seq if events else None

    # -- removal (kleio rm) ----------------------------------------------------------------

    @guarded
    def _delete_trial(self, *, trial_id: str) -> int:
        # Needs ``remove`` on trials and events (kleio rm only; see the module docstring).
        removed = self._db.events.delete_many({"trial_id": trial_id}).deleted_count
        self._db.summaries.delete_many({"trial_id": trial_id})
        self._db.step_runs.delete_many({"trial_id": trial_id})
        self._db.summary_marks.delete_many({"trial_id": trial_id})
        self._db.trials.delete_one({"_id": trial_id})
        return int(removed)

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


__all__ = [
    "BLOB_BUCKET",
    "DEFAULT_DATABASE",
    "INDEXES_VERSION",
    "MongoDBStore",
    "database_from_uri",
    "ensure_indexes",
    "has_journal",
    "hosts_of",
    "with_database",
]
