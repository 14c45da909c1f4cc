"""The embedded SQLite backend: one database file, artifacts as files beside it.

Safe across processes: WAL mode lets readers (``kleio tail -f`` on another terminal) run
while the runner writes, and every write is one ``BEGIN IMMEDIATE`` transaction, so writers
queue on the busy timeout instead of failing on a lock upgrade half-way through.

Layout::

    kleio.db                 trials, events, meta, migrations
    kleio.db.blobs/ab/abcd…  content-addressed artifacts, named by sha256

All SQL of kleio lives in this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any

from kleio.errors import SchemaVersionError, StoreUnavailable
from kleio.storage import mask_uri, sqlite_path
from kleio.storage.base import (
    MUTABLE_FIELDS,
    SCHEMA_VERSION,
    SORTABLE_FIELDS,
    Event,
    NewEvent,
    Store,
    decode,
)

#: Named, ordered migrations; ``schema_version`` is the number applied. Never edit one that
#: was released: append a new one.
MIGRATIONS: list[tuple[str, tuple[str, ...]]] = [
    (
        "0001_initial",
        (
            # The whole document is kept as JSON; the columns beside it are copies of the
            # fields that listing filters and sorts on, so that is served by indexes.
            """CREATE TABLE trials (
                id TEXT PRIMARY KEY,
                doc TEXT NOT NULL,
                created_at REAL,
                started_at REAL,
                ended_at REAL,
                status TEXT,
                heartbeat_at REAL,
                parent_id TEXT,
                tags TEXT NOT NULL DEFAULT '[]'
            )""",
            "CREATE INDEX trials_status ON trials (status, created_at)",
            # (created_at, id) serves the default listing, newest first, ties by id, with no sort.
            "CREATE INDEX trials_created ON trials (created_at, id)",
            "CREATE INDEX trials_parent ON trials (parent_id)",
            # Events refer to a trial by a small integer key instead of its 64-character
            # id: rows and index entries are much smaller, and inserts twice as fast.
            "CREATE TABLE trial_keys (key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE)",
            # WITHOUT ROWID: the key is the clustering order, so reading a trial's journal
            # in seq order is one range scan and there is no second b-tree to maintain.
            """CREATE TABLE events (
                trial INTEGER NOT NULL,
                seq INTEGER NOT NULL,
                kind TEXT NOT NULL,
                time REAL NOT NULL,
                data TEXT NOT NULL,
                PRIMARY KEY (trial, seq)
            ) WITHOUT ROWID""",
            "CREATE INDEX events_kind ON events (trial, kind, seq)",
        ),
    ),
]

#: Real columns copied verbatim from the trial document.
_DOC_COLUMNS = ("created_at", "started_at", "ended_at", "status", "heartbeat_at")

#: Sort fields a trial may lack (never started, never ended, no heartbeat yet).
_NULLABLE = frozenset({"started_at", "ended_at", "heartbeat_at"})

_INSERT_EVENT = "INSERT INTO events (trial, seq, kind, time, data) VALUES (?, ?, ?, ?, ?)"
_INSERT_EVENTS_OF = (
    "INSERT OR IGNORE INTO events (trial, seq, kind, time, data) VALUES ({key}, ?, ?, ?, ?)"
)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


#: SQLite integers are signed 64-bit; a larger bound or limit means "no bound".
_INT64_MAX = (1 << 63) - 1


def _int64(value: int) -> int:
    return max(-_INT64_MAX - 1, min(value, _INT64_MAX))


def _bindable(text: str) -> bool:
    """Tell whether the sqlite3 module can pass ``text`` (it refuses lone surrogates).

    A trial id or prefix holding undecodable bytes (from argv) then matches no trial instead
    of raising UnicodeEncodeError: no stored id can hold one.
    """
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _dumps(doc: Any) -> str:
    # ASCII-only JSON: lone surrogates (undecodable output bytes) cannot be encoded to UTF-8
    # by the sqlite3 module, but their \\u escapes can.
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True)


class SQLiteStore(Store):
    """A journal in one SQLite file, shared safely by processes on one machine.

    Args:
        uri: ``sqlite:///path/to/kleio.db`` or a bare path.
        timeout: seconds a write waits for another process's transaction before giving up.

    Raises:
        StoreUnavailable: the file or its directory cannot be created, opened or written.
        SchemaVersionError: the journal was written by a newer kleio.
    """

    def __init__(self, uri: str, *, timeout: float = 10.0) -> None:
        self.uri = mask_uri(uri)
        self.path = sqlite_path(uri)
        self.blob_dir = self.path + ".blobs"
        self.timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._keys: dict[str, int] = {}
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._open(timeout)
                return
            except sqlite3.OperationalError as exc:
                # The very first opens of a new file race to switch it to WAL, which SQLite
                # may refuse at once with "locked" instead of waiting: try again.
                self.close()
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise self._unavailable("open", exc) from None
                time.sleep(0.05)
            except (OSError, sqlite3.Error) as exc:
                self.close()
                raise self._unavailable("open", exc) from None
            except SchemaVersionError:
                self.close()
                raise

    def _open(self, timeout: float) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._conn = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        # Switching to WAL is persistent and needs the write lock once; later opens
        # find it already set.
        self._conn.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL is safe against corruption; a power loss may only drop
        # the last commits, which the runner's spool covers.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._migrate()

    # -- plumbing -------------------------------------------------------------------------

    def _unavailable(self, action: str, exc: BaseException) -> StoreUnavailable:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if "not a database" in reason:
            return StoreUnavailable(
                f"{self.path} is not a kleio journal ({reason})",
                "point --db or KLEIO_DB at a journal file, or at a new path to start one",
            )
        return StoreUnavailable(
            f"cannot {action} the journal at {self.path} ({reason})",
            "check that its directory exists and is writable and the disk is not full, "
            "or choose another journal with --db or KLEIO_DB",
        )

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable(f"the journal at {self.path} is closed")
        return self._conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Run the body in one write transaction, taking the write lock up front."""
        conn = self._db
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._unavailable("write", exc) from None
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                raise self._unavailable("write", exc) from None
            raise

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._unavailable("read", exc) from None

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"journal at {self.path} was written by a newer kleio "
                f"(schema {version} > {SCHEMA_VERSION})",
                "Upgrade kleio",
            )
        return version

    def _migrate(self) -> None:
        conn = self._db
        # Cheap check without the write lock: the usual case is an up-to-date journal.
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if has_meta and self._schema_version(conn) == SCHEMA_VERSION:
            return
        # Concurrent first opens serialize here; the version is re-read under the lock.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._schema_version(conn)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)"
            )
            for name, statements in MIGRATIONS[version:SCHEMA_VERSION]:
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- trials ---------------------------------------------------------------------------

    def create_trial(self, *, doc: dict[str, Any]) -> bool:
        parent = doc.get("parent") or {}
        row = (
            doc["id"],
            _dumps(doc),
            *(doc.get(name) for name in _DOC_COLUMNS),
            parent.get("id"),
            _dumps(doc.get("tags") or []),
        )
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO trials (id, doc, created_at, started_at, ended_at,"
                " status, heartbeat_at, parent_id, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return cursor.rowcount == 1

    def get_trial(self, *, trial_id: str) -> dict[str, Any] | None:
        if not _bindable(trial_id):
            return None
        rows = self._query("SELECT doc FROM trials WHERE id = ?", (trial_id,))
        return json.loads(rows[0][0]) if rows else None

    @staticmethod
    def _check_fields(fields: dict[str, Any]) -> None:
        unknown = sorted(set(fields) - MUTABLE_FIELDS)
        if unknown:
            raise ValueError(
                f"cannot update trial field(s) {', '.join(unknown)}: "
                f"only {', '.join(sorted(MUTABLE_FIELDS))} can change"
            )

    def _apply_fields(
        self, conn: sqlite3.Connection, trial_id: str, fields: dict[str, Any]
    ) -> None:
        # Read-modify-write is safe: the caller holds the write lock (BEGIN IMMEDIATE).
        row = conn.execute("SELECT doc FROM trials WHERE id = ?", (trial_id,)).fetchone()
        if row is None:
            return
        doc = json.loads(row[0])
        doc.update(fields)
        sets = ["doc = ?"]
        params: list[Any] = [_dumps(doc)]
        for name in _DOC_COLUMNS:
            if name in fields:
                sets.append(f"{name} = ?")
                params.append(fields[name])
        if "tags" in fields:
            sets.append("tags = ?")
            params.append(_dumps(fields["tags"] or []))
        params.append(trial_id)
        conn.execute(f"UPDATE trials SET {', '.join(sets)} WHERE id = ?", params)

    def update_trial(self, *, trial_id: str, fields: dict[str, Any]) -> None:
        self._check_fields(fields)
        if fields:
            with self._write() as conn:
                self._apply_fields(conn, trial_id, fields)

    def find_trials(
        self,
        *,
        id_prefix: str | None = None,
        statuses: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        parent_id: str | None = None,
        sort: str = "-created_at",
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        field = sort[1:] if sort.startswith("-") else sort
        if field not in SORTABLE_FIELDS:
            raise ValueError(
                f"cannot sort trials by {sort!r}: use one of {', '.join(SORTABLE_FIELDS)}"
                " (prefix with - for descending)"
            )
        order = "DESC" if sort.startswith("-") else "ASC"
        if not all(_bindable(text) for text in (id_prefix or "", parent_id or "",
                                                 *(statuses or ()), *(tags or ()))):
            return []
        where: list[str] = []
        params: list[Any] = []
        if id_prefix:
            # A range on the primary key uses its index, unlike LIKE/GLOB with wildcards
            # in the id; the upper bound is the smallest string after every extension.
            last = ord(id_prefix[-1])
            if last < 0x10FFFF:
                where.append("id >= ? AND id < ?")
                params += [id_prefix, id_prefix[:-1] + chr(last + 1)]
            else:
                where.append("substr(id, 1, ?) = ?")
                params += [len(id_prefix), id_prefix]
        if statuses is not None:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params += list(statuses)
        if parent_id is not None:
            where.append("parent_id = ?")
            params.append(parent_id)
        for tag in tags or ():
            where.append("EXISTS (SELECT 1 FROM json_each(trials.tags) WHERE value = ?)")
            params.append(tag)
        sql = "SELECT doc FROM trials"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY "
        if field in _NULLABLE:
            # NULLs last in both directions: a trial that never started sorts after the
            # others. Only here: the term would keep an index from serving the sort.
            sql += f"{field} IS NULL, "
        sql += f"{field} {order}" if field == "id" else f"{field} {order}, id {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(_int64(limit))
        return [json.loads(row[0]) for row in self._query(sql, params)]

    # -- events ---------------------------------------------------------------------------

    def _read_key(self, trial_id: str) -> int | None:
        key = self._keys.get(trial_id)
        if key is None and _bindable(trial_id):
            rows = self._query("SELECT key FROM trial_keys WHERE id = ?", (trial_id,))
            if rows:
                key = self._keys[trial_id] = int(rows[0][0])
        return key

    def _write_key(self, conn: sqlite3.Connection, trial_id: str) -> int:
        # Keys are never reused or changed, so a cached key stays valid across processes.
        key = self._keys.get(trial_id)
        if key is None:
            conn.execute("INSERT OR IGNORE INTO trial_keys (id) VALUES (?)", (trial_id,))
            row = conn.execute("SELECT key FROM trial_keys WHERE id = ?", (trial_id,)).fetchone()
            key = self._keys[trial_id] = int(row[0])
        return key

    def try_append(
        self, *, trial_id: str, event: NewEvent, fields: dict[str, Any] | None = None
    ) -> bool:
        if fields:
            self._check_fields(fields)
        with self._write() as conn:
            try:
                conn.execute(_INSERT_EVENT, (self._write_key(conn, trial_id), *event))
            except sqlite3.IntegrityError:
                return False
            if fields:
                self._apply_fields(conn, trial_id, fields)
            return True

    def append_events(self, *, trial_id: str, events: Sequence[NewEvent]) -> int:
        # The runner's hot path: one executemany per batch, data stored as given.
        if not events:
            return 0
        with self._write() as conn:
            key = self._write_key(conn, trial_id)
            before = conn.total_changes
            # The key is an integer of ours, inlined so the rows go to SQLite as given,
            # without building a new tuple per event.
            conn.executemany(_INSERT_EVENTS_OF.format(key=int(key)), events)
            return conn.total_changes - before

    def read_events(
        self,
        *,
        trial_id: str,
        kinds: Sequence[str] | None = None,
        after: int | None = None,
        upto: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> list[Event]:
        key = self._read_key(trial_id)
        if key is None:
            return []
        where = "trial = ?"
        params: list[Any] = [key]
        if after is not None:
            if after >= _INT64_MAX:
                return []
            where += " AND seq > ?"
            params.append(_int64(after))
        if upto is not None:
            where += " AND seq <= ?"
            params.append(_int64(upto))
        if kinds is None:
            sql = f"SELECT seq, kind, time, data FROM events WHERE {where}"
        else:
            # One index range per kind, merged in seq order by SQLite: reading the last
            # status or the stdout of a journal full of statistics touches only the rows
            # it returns. Without INDEXED BY the planner would scan the primary key.
            kinds = list(dict.fromkeys(kinds))
            if not kinds:
                return []
            one = (
                "SELECT seq, kind, time, data FROM events INDEXED BY events_kind"
                f" WHERE {where} AND kind = ?"
            )
            sql = " UNION ALL ".join([one] * len(kinds))
            params = [value for kind in kinds for value in (*params, kind)]
        sql += " ORDER BY seq DESC" if reverse else " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(_int64(limit))
        loads = decode
        return [
            Event(trial_id, seq, kind, when, loads(data))
            for seq, kind, when, data in self._query(sql, params)
        ]

    def count_events(self, *, trial_id: str, kind: str, upto: int | None = None) -> int:
        key = self._read_key(trial_id)
        if key is None:
            return 0
        sql = "SELECT count(*) FROM events WHERE trial = ? AND kind = ?"
        params: list[Any] = [key, kind]
        if upto is not None:
            sql += " AND seq <= ?"
            params.append(_int64(upto))
        return int(self._query(sql, params)[0][0])

    def last_seq(self, *, trial_id: str) -> int | None:
        # ORDER BY ... LIMIT 1 walks the primary key backwards: one row, not the journal.
        key = self._read_key(trial_id)
        if key is None:
            return None
        rows = self._query(
            "SELECT seq FROM events WHERE trial = ? ORDER BY seq DESC LIMIT 1", (key,)
        )
        return rows[0][0] if rows else None

    # -- blobs ----------------------------------------------------------------------------

    def _blob_path(self, sha256: str) -> str:
        return os.path.join(self.blob_dir, sha256[:2], sha256)

    def put_blob(self, *, fileobj: IO[bytes]) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        tmp = os.path.join(self.blob_dir, f".tmp-{os.urandom(16).hex()}")
        try:
            os.makedirs(self.blob_dir, exist_ok=True)
            # os.open with 0o666 lets the umask decide, so a shared journal stays readable.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = fileobj.read(_CHUNK)
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                # Durable before it gets its final name: a name promises its content.
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            final = self._blob_path(sha)
            if os.path.exists(final):
                os.unlink(tmp)
            else:
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.replace(tmp, final)
        except BaseException as exc:
            # Never leave a partial file behind, whatever interrupted the copy.
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise self._unavailable("write an artifact to", exc) from None
            raise
        return sha, size

    def open_blob(self, *, sha256: str) -> IO[bytes]:
        if not _SHA256.fullmatch(sha256):
            raise KeyError(sha256)
        try:
            return open(self._blob_path(sha256), "rb")
        except FileNotFoundError:
            raise KeyError(sha256) from None

    def has_blob(self, *, sha256: str) -> bool:
        return bool(_SHA256.fullmatch(sha256)) and os.path.isfile(self._blob_path(sha256))

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(sqlite3.Error):
                conn.close()
