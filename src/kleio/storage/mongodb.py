"""The MongoDB backend: a replica set or Atlas cluster shared by many machines and users.

URIs are ``mongodb://[user:password@]host[:port][,host...]/[database][?options]`` or
``mongodb+srv://...``. The database is the URI's path and defaults to ``kleio``. kleio sets
``retryWrites=true``, ``appname=kleio`` and a server selection timeout of a few seconds unless
the URI sets them itself. The ``kleio.storage.mongodb*`` modules are the only ones that import
pymongo; the registry in :mod:`kleio.storage` imports this one lazily.

Layout (no multi-document transactions; no document grows without bound)::

    meta          {_id: "schema", version, indexes, opts}
    trials        {_id: trial id, ...the trial document without "id",
                   _sum: its summary state, _opts: its options as where compares them}
    events        {_id: "<trial id>:<seq as 16 hex digits>", trial_id, seq (int64), kind,
                   time, data (a sub-document)}              one event per document
    blobs.files   GridFS bucket "blobs": filename = sha256 (unique index), _id = ObjectId
    blobs.chunks
    summaries, step_runs, summary_marks    see :mod:`kleio.storage.mongodb_summaries`

One concern a module: URIs, BSON-safe values and indexes in :mod:`kleio.storage.mongodb_layout`;
trial documents in :mod:`kleio.storage.mongodb_trials`; a trial's events (their keys,
appending, reading in order) in :mod:`kleio.storage.mongodb_events`; the summaries kept as
statistics are appended in :mod:`kleio.storage.mongodb_summaries` and read (a page's
summaries, marks, ranking) in :mod:`kleio.storage.mongodb_summary_reads`; the reads of a page of
trials in :mod:`kleio.storage.mongodb_reads`; ``where`` conditions asked of the database in
:mod:`kleio.storage.mongodb_where`; artifacts' bytes in :mod:`kleio.storage.mongodb_blobs`.
This module holds the store built of them: connecting, opening (schema, indexes, bringing an
older database up to date), the summary primitives, removal.

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

import warnings
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import pymongo
from pymongo import UpdateOne
from pymongo.errors import (
    ConfigurationError,
    InvalidName,
    InvalidURI,
    OperationFailure,
)

from kleio.errors import ConfigError, StoreUnavailable
from kleio.storage import mask_uri
from kleio.storage.base import SCHEMA_VERSION, Store, iter_chunks, schema_too_new
from kleio.storage.mongodb_blobs import BlobsMixin
from kleio.storage.mongodb_events import EventsMixin
from kleio.storage.mongodb_layout import (
    BLOB_BUCKET,
    DEFAULT_DATABASE,
    INDEXES_VERSION,
    database_from_uri,
    ensure_indexes,
    guarded,
    has_journal,
    hosts_of,
    split_uri,
    unescape,
    with_database,
)
from kleio.storage.mongodb_reads import BatchedMixin
from kleio.storage.mongodb_summaries import SummariesMixin
from kleio.storage.mongodb_trials import TrialsMixin
from kleio.storage.mongodb_where import option_index

_AUTH_CODES = frozenset({13, 18})  # Unauthorized, AuthenticationFailed
_CHECK_HINT = "Is the server running and reachable? Check the URI, network and credentials"
#: meta's ``opts``: every trial has its ``_opts`` (see :meth:`MongoDBStore._index_old_options`).
OPTIONS_VERSION = 1
#: Trials read and written per request of a backfill (its memory, whatever the database).
_BACKFILL_CHUNK = 1000


# -- the store ----------------------------------------------------------------------------


class MongoDBStore(TrialsMixin, EventsMixin, SummariesMixin, BatchedMixin, BlobsMixin, Store):
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
                if issubclass(warning.category, UserWarning) and "uri_parser" in warning.filename:
                    client.close()  # an option's value pymongo refused, and then ignored
                    raise ConfigError(
                        f"invalid MongoDB URI {self.uri!r}: {mask_uri(text).rstrip('.')}",
                        "fix the option's value (see the MongoDB connection string options)",
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
        if meta.get("opts", 0) < OPTIONS_VERSION:
            self._index_old_options()

    def _summarize_old(self) -> None:
        """Summarize the trials of a database written before summaries, once."""
        for doc in self._db.trials.find({"_sum": {"$exists": False}}, {"_id": 1}):
            self._resummarize(doc["_id"])
        self._db.meta.update_one(
            {"_id": "schema"}, {"$max": {"version": SCHEMA_VERSION}}, upsert=True
        )

    def _index_old_options(self) -> None:
        """Write the ``_opts`` of the trials created by a kleio from before them, once.

        Without it ``where`` could never narrow those trials (:mod:`kleio.storage.mongodb_where`
        keeps a trial without ``_opts`` as a maybe). Several processes may open the database at
        once: each sets the same value (a trial's options never change), only on the trials
        still without one, and the flag is raised last, so an interrupted backfill is resumed
        by the next open. A fresh database is flagged at once (an empty scan).
        """
        missing = {"_opts": {"$exists": False}}
        cursor = self._db.trials.find(missing, {"config": 1, "_esc": 1}, batch_size=_BACKFILL_CHUNK)
        for chunk in iter_chunks(cursor, _BACKFILL_CHUNK):
            updates = []
            for doc in chunk:
                config = doc.get("config")
                # As _create_trial computes it: from the options as logged, not as escaped.
                config = unescape(config) if doc.get("_esc") else config
                opts = {"$set": {"_opts": option_index(config)}}
                updates.append(UpdateOne({"_id": doc["_id"], **missing}, opts))
            self._db.trials.bulk_write(updates, ordered=False)
        self._db.meta.update_one(
            {"_id": "schema"}, {"$max": {"opts": OPTIONS_VERSION}}, upsert=True
        )

    def drop_database(self) -> None:
        """Delete this store's whole database (for tests)."""
        self._client.drop_database(self._db.name)

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
