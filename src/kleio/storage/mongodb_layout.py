"""How kleio lays its journal out in MongoDB: URIs, BSON-safe values, indexes, keys.

Shared by :mod:`kleio.storage.mongodb` (the store) and :mod:`kleio.storage.mongodb_summaries`
(the summaries it keeps); the layout itself is described in :mod:`kleio.storage.mongodb`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, quote, unquote

import pymongo
from bson.int64 import Int64
from pymongo.errors import PyMongoError

from kleio.errors import ConfigError, StoreUnavailable
from kleio.storage import mask_uri
from kleio.storage.base import encodable, encode, int_as_float

DEFAULT_DATABASE = "kleio"
#: Bump when :func:`ensure_indexes` gains an index: opening a database then rebuilds them.
INDEXES_VERSION = 2
BLOB_BUCKET = "blobs"
INT64 = (-(2**63), 2**63 - 1)
SENTINEL = "__kleio_json__"
_URI = re.compile(r"^(?P<scheme>[^:/]+://)(?P<netloc>[^/?]*)(?P<path>/[^?]*)?(?:\?(?P<query>.*))?$")

# -- URIs -------------------------------------------------------------------------------


def split_uri(uri: str) -> tuple[str, str, str, str]:
    match = _URI.match(uri)
    if not match or not match["scheme"].lower().startswith("mongodb"):
        raise ConfigError(
            f"{mask_uri(uri)!r} is not a MongoDB URI",
            "use mongodb://host[:port]/database or mongodb+srv://host/database",
        )
    if not match["netloc"].rsplit("@", 1)[-1]:
        raise ConfigError(
            f"the MongoDB URI {mask_uri(uri)!r} names no host",
            "use mongodb://host[:port]/database, e.g. mongodb://localhost:27017/kleio",
        )
    database = unquote((match["path"] or "/")[1:])
    return match["scheme"], match["netloc"], database, match["query"] or ""


def database_from_uri(uri: str) -> str:
    """Return the database named by a MongoDB URI's path, ``kleio`` when it has none."""
    return split_uri(uri)[2] or DEFAULT_DATABASE


def hosts_of(uri: str) -> str:
    """Return the host list of a URI, without credentials (for messages)."""
    return split_uri(uri)[1].rsplit("@", 1)[-1]


def with_database(uri: str, name: str) -> str:
    """Return ``uri`` naming database ``name`` instead, keeping hosts, credentials and options.

    The path database is also MongoDB's default ``authSource``: for a ``mongodb://`` URI with
    credentials and no explicit ``authSource``, the old one (or ``admin``) is made explicit so
    the same user still authenticates. ``mongodb+srv://`` URIs are left to their TXT record.
    """
    scheme, netloc, old, query = split_uri(uri)
    options = {key.lower() for key, _ in parse_qsl(query, keep_blank_values=True)}
    if "@" in netloc and scheme.lower() == "mongodb://" and "authsource" not in options:
        extra = "authSource=" + quote(old or "admin", safe="")
        query = f"{query}&{extra}" if query else extra
    return f"{scheme}{netloc}/{quote(name, safe='')}" + (f"?{query}" if query else "")


# -- BSON-safe values ---------------------------------------------------------------------


def safe_key(key: Any) -> bool:
    return (
        isinstance(key, str)
        and key != SENTINEL
        and not key.startswith("$")
        and "." not in key
        and "\0" not in key
        and encodable(key)
    )


def escape(value: Any) -> tuple[Any, bool]:
    """Return (a BSON-safe equivalent of ``value``, whether anything was escaped)."""
    if isinstance(value, str):
        return (value, False) if encodable(value) else (wrap(value), True)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value, False
    if isinstance(value, int):
        return (value, False) if INT64[0] <= value <= INT64[1] else (wrap(value), True)
    if isinstance(value, dict):
        if not all(safe_key(key) for key in value):
            return wrap(value), True
        out, changed = {}, False
        for key, item in value.items():
            out[key], escaped = escape(item)
            changed = changed or escaped
        return (out, True) if changed else (value, False)
    if isinstance(value, (list, tuple)):
        pairs = [escape(item) for item in value]
        if any(escaped for _, escaped in pairs):
            return [item for item, _ in pairs], True
        return value, False
    return value, False  # not JSON-like: let BSON accept or reject it


def wrap(value: Any) -> dict[str, str]:
    return {SENTINEL: encode(value) if isinstance(value, dict) else json.dumps(value)}


def unescape(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and SENTINEL in value:
            return json.loads(value[SENTINEL])
        return {key: unescape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unescape(item) for item in value]
    return int(value) if type(value) is Int64 else value


def native(value: Any) -> Any:
    """``value`` as decoded by pymongo, with every BSON int64 a plain int, as logged.

    pymongo decodes an int64 (any int past 32 bits) as :class:`bson.int64.Int64`, a subclass
    of int that summaries' folds, which take ``type(value) is int`` for a number, would skip.
    Unchanged (the same object) when it holds none, the common case.
    """
    kind = type(value)
    if kind is Int64:
        return int(value)
    if kind is not dict and kind is not list:
        return value
    out: Any = None
    for key, item in value.items() if kind is dict else enumerate(value):
        if type(item) in _DECODED:
            new = native(item)
            if new is not item:
                if out is None:
                    out = dict(value) if kind is dict else list(value)
                out[key] = new
    return value if out is None else out


_DECODED = frozenset({Int64, dict, list})


# -- indexes ------------------------------------------------------------------------------


def ensure_indexes(db: Any) -> None:
    """Create every index kleio uses; idempotent (an existing index is left as it is)."""
    asc = pymongo.ASCENDING
    db.events.create_index([("trial_id", asc), ("kind", asc), ("seq", asc)], name="trial_kind_seq")
    db.trials.create_index([("status", asc), ("created_at", asc)], name="status_created")
    db.trials.create_index([("parent.id", asc)], name="parent")
    db.trials.create_index([("tags", asc)], name="tags")
    for field in ("created_at", "started_at", "ended_at", "heartbeat_at"):
        db.trials.create_index([(field, asc)], name=field)
    # Summaries (kleio.storage.summary): ranking by a metric's best is an index range.
    db.summaries.create_index([("trial_id", asc)], name="trial")
    for side in ("min", "max"):
        db.summaries.create_index([("name", asc), (side, asc)], name=f"name_{side}")
    db.step_runs.create_index(
        [("trial_id", asc), ("key", asc), ("first_seq", asc)], name="trial_key_seq"
    )
    files, chunks = db[f"{BLOB_BUCKET}.files"], db[f"{BLOB_BUCKET}.chunks"]
    files.create_index([("filename", asc)], name="sha256", unique=True)
    # The indexes the GridFS spec asks for, made here so that uploads need no createIndex.
    files.create_index([("filename", asc), ("uploadDate", asc)])
    chunks.create_index([("files_id", asc), ("n", asc)], unique=True)


F = TypeVar("F", bound=Callable[..., Any])


def guarded(method: F) -> F:
    """Turn any pymongo failure in the store's ``method`` into one StoreUnavailable
    sentence (the store's ``_unavailable``)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except PyMongoError as exc:
            raise self._unavailable(exc) from None

    return cast(F, wrapper)


def event_key(trial_id: str, seq: int) -> str:
    """An event's ``_id``: the trial id and the seq in 16 hex digits (sorts like seq)."""
    return f"{trial_id}:{seq:016x}"


def plain(value: Any) -> Any:
    """A summary value as BSON holds it (ints past int64 as floats, others as JSON text).

    An int64 read back from the server is a :class:`bson.int64.Int64` (a subclass of int):
    it is an int here, not a value to turn into text.
    """
    kind = type(value)
    if value is None or kind is float or kind is bool:
        return value
    if isinstance(value, int):
        return int(value) if INT64[0] <= value <= INT64[1] else int_as_float(value)
    if kind is str and encodable(value):
        return value
    return encode({"v": value})[5:-1] if not isinstance(value, str) else json.dumps(value)


def has_journal(uri: str) -> bool:
    """Tell whether the MongoDB database of ``uri`` holds kleio's ``trials`` collection.

    Asked with pymongo itself (listing collections writes nothing): opening the store would
    create the collections and indexes of a new journal first.
    """
    try:
        client: Any = pymongo.MongoClient(
            uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, appname="kleio"
        )
    except (PyMongoError, ValueError) as error:
        raise StoreUnavailable(
            f"cannot use the MongoDB URI {mask_uri(uri)}: {mask_uri(str(error))}"
        ) from None
    try:
        names = client[database_from_uri(uri)].list_collection_names()
    except PyMongoError:
        raise StoreUnavailable(
            f"cannot reach the MongoDB server at {hosts_of(uri)}",
            "check that it runs and that the URI names it",
        ) from None
    finally:
        client.close()
    return "trials" in names
