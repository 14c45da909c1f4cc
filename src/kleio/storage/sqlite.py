"""The embedded SQLite backend: one database file, artifacts as files beside it.

Safe across processes: WAL mode lets readers (``kleio tail -f`` on another terminal) run
while the runner writes, and every write is one ``BEGIN IMMEDIATE`` transaction, so writers
queue on the busy timeout instead of failing on a lock upgrade half-way through.

Layout::

    kleio.db                 trials, events, meta, migrations
    kleio.db-wal, -shm       SQLite's write-ahead log and its index, while the journal is open
    kleio.db.blobs/ab/abcd…  content-addressed artifacts, named by sha256

Private by default: the files are created 0600 and the directories 0700 (the directory of the
journal only when kleio creates it), whatever the umask. A journal in a directory set up for a
group (setgid and group rwx, ``chmod 2770``) is shared with that group instead: 0660 and 2770.
Files of the user's own that grant more (an older kleio followed the umask) lose the extra
bits when the journal is opened. See "The SQLite journal's files" in
docs/reference/configuration.rst.

All SQL of kleio lives in this module.
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # sqlite3 is this plus dbapi2's adapters (datetime): not used
import os
import stat
import time

from kleio import cjson as json  # json's C codec without json's imports (re, enum)
from kleio.errors import SchemaVersionError, StoreUnavailable
from kleio.storage import mask_uri, sqlite_path
from kleio.storage.base import (
    NULLABLE_SORTS,
    Event,
    NewEvent,
    Store,
    copy_hashing,
    decode,
    encodable,
    int_as_float,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from collections.abc import Sequence
    from typing import IO, Any

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
    (
        # Per-trial summaries of statistics and step runs (kleio.storage.summary), kept in
        # the transaction that appends the events; the project copied to a column for
        # --project. Existing trials are summarized by _summarize_all after these statements.
        "0002_summaries",
        (
            # Value columns have no type: integers stay integers, NaN is stored as 'nan'.
            """CREATE TABLE summaries (
                trial INTEGER NOT NULL,
                name TEXT NOT NULL,
                mode TEXT,
                is_primary INTEGER NOT NULL DEFAULT 0,
                count INTEGER NOT NULL DEFAULT 0,
                last, last_seq INTEGER,
                min, min_seq INTEGER, min_step, min_step_key TEXT,
                max, max_seq INTEGER, max_step, max_step_key TEXT,
                PRIMARY KEY (trial, name)
            ) WITHOUT ROWID""",
            # Ranking reads one range per (metric, declared mode) in the order of its best.
            "CREATE INDEX summaries_min ON summaries (name, mode, min)",
            "CREATE INDEX summaries_max ON summaries (name, mode, max)",
            """CREATE TABLE summary_state (
                trial INTEGER PRIMARY KEY,
                last_stat_seq INTEGER,
                runs_ok INTEGER NOT NULL DEFAULT 1,
                since_mark INTEGER DEFAULT 0
            )""",
            """CREATE TABLE step_runs (
                trial INTEGER NOT NULL,
                key TEXT NOT NULL,
                first_seq INTEGER NOT NULL,
                last_seq INTEGER NOT NULL,
                value,
                PRIMARY KEY (trial, key, first_seq)
            ) WITHOUT ROWID""",
            # Every MARK_EVERY statistics in order, a trial's summaries as they stood: a
            # branch cut in the middle of a long trial summarizes its inherited part from the
            # mark before the cut and at most MARK_EVERY statistics after it.
            """CREATE TABLE summary_marks (
                trial INTEGER NOT NULL,
                seq INTEGER NOT NULL,
                entries TEXT NOT NULL,
                PRIMARY KEY (trial, seq)
            ) WITHOUT ROWID""",
            "ALTER TABLE trials ADD COLUMN project TEXT",
            "UPDATE trials SET project = json_extract(doc, '$.project')"
            " WHERE json_valid(doc)",
        ),
    ),
    (
        # Each trial's primary metric, kept by _declare beside the summaries' is_primary:
        # ``kleio best`` without --metric asks which primaries the trials declare, and three
        # counting joins over every summary took a second over 100,000 trials; one range of
        # (branch, name) answers it. ``branch`` is NULL while the trial has no document.
        "0003_primaries",
        (
            """CREATE TABLE primaries (
                trial INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                branch INTEGER
            )""",
            "CREATE INDEX primaries_name ON primaries (branch, name)",
            "INSERT OR REPLACE INTO primaries (trial, name, branch)"
            " SELECT s.trial, s.name, t.parent_id IS NOT NULL FROM summaries s"
            " JOIN trial_keys k ON k.key = s.trial JOIN trials t ON t.id = k.id"
            " WHERE s.is_primary = 1",
        ),
    ),
]

#: The schema version of an SQLite journal: the number of migrations applied. SQLite's own
#: (base.SCHEMA_VERSION, which MongoDB follows, is 2: the primaries table is SQLite's).
SCHEMA_VERSION = len(MIGRATIONS)

#: Statistics between two summary marks (see migration 0002).
MARK_EVERY = 10_000

_SUMMARY_COLUMNS = ("count", "last", "last_seq", "min", "min_seq", "min_step", "min_step_key",
                    "max", "max_seq", "max_step", "max_step_key")
_UPSERT_SUMMARY = (
    "INSERT INTO summaries (trial, name, " + ", ".join(_SUMMARY_COLUMNS) + ") VALUES (?, ?, "
    + ", ".join("?" * len(_SUMMARY_COLUMNS)) + ") ON CONFLICT (trial, name) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _SUMMARY_COLUMNS)
)

#: Real columns copied verbatim from the trial document.
_DOC_COLUMNS = ("created_at", "started_at", "ended_at", "status", "heartbeat_at")

_INSERT_EVENT = "INSERT INTO events (trial, seq, kind, time, data) VALUES (?, ?, ?, ?, ?)"
_INSERT_EVENTS_OF = (
    "INSERT OR IGNORE INTO events (trial, seq, kind, time, data) VALUES ({key}, ?, ?, ?, ?)"
)

_CHUNK = 1 << 20


#: SQLite integers are signed 64-bit; a larger bound or limit means "no bound".
_INT64_MAX = (1 << 63) - 1


def _int64(value: int) -> int:
    return max(-_INT64_MAX - 1, min(value, _INT64_MAX))


def _stored(value: Any) -> Any:
    """A summary value as an untyped column holds it (NaN as 'nan', huge ints as floats)."""
    if type(value) is float:
        return value if value == value else "nan"
    if type(value) is int:
        return value if -_INT64_MAX - 1 <= value <= _INT64_MAX else int_as_float(value)
    if value is None or type(value) is str:
        return value
    if isinstance(value, bool):
        return int(value)
    return _dumps(value)


def _loaded(value: Any) -> Any:
    return float("nan") if value == "nan" else value


def _dumps(doc: Any) -> str:
    # ASCII-only JSON: lone surrogates (undecodable output bytes) cannot be encoded to UTF-8
    # by the sqlite3 module, but their \\u escapes can.
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True)


_DAMAGED_HINT = (
    "restore it from a backup, or point --db or KLEIO_DB at another journal (kleio writes "
    "nothing into a damaged journal)"
)


class Modes:
    """The permissions of the files kleio creates for one journal (see the module doc)."""

    def __init__(self, directory: str) -> None:
        try:
            mode = os.stat(directory).st_mode
        except OSError:
            mode = 0
        # The setgid bit is the deliberate sign of a shared directory: mkdir and the umask
        # never set it, so a directory that merely happens to be group-writable stays private.
        self.shared = bool(mode & stat.S_ISGID) and mode & 0o070 == 0o070
        self.file = 0o660 if self.shared else 0o600
        self.dir = 0o2770 if self.shared else 0o700

    @staticmethod
    def _own_mode(path: str, *, is_dir: bool = False) -> int | None:
        """The permission bits of a regular file (or directory) of the user's own, else None.

        Anything else is left alone: ``--db /tmp`` must never chmod /tmp.
        """
        try:
            info = os.lstat(path)
        except OSError:
            return None
        kind = stat.S_ISDIR if is_dir else stat.S_ISREG
        if info.st_uid != os.geteuid() or not kind(info.st_mode):
            return None
        return stat.S_IMODE(info.st_mode)

    def tighten(self, path: str, *, is_dir: bool = False, like: str | None = None) -> None:
        """Bring a file of the user's own to this journal's modes, taking bits, never adding.

        ``like``: a file whose mode this one takes whole (the WAL and its index follow the
        journal file, as SQLite makes them: a read-only open must not leave them read-only).
        """
        current = self._own_mode(path, is_dir=is_dir)
        if current is None:
            return
        if like is not None:
            wanted = self._own_mode(like)
            if wanted is None:
                return
        else:
            wanted = current & (self.dir if is_dir else self.file)
        if wanted != current:
            try:
                os.chmod(path, wanted)
            except OSError:
                pass

    def make_dir(self, path: str) -> None:
        """Create ``path`` (not its parents) with this journal's directory mode."""
        try:
            os.mkdir(path, self.dir)
        except FileExistsError:
            return
        os.chmod(path, self.dir)  # the umask may have taken bits the group needs

    def make_file(self, path: str) -> int:
        """Create ``path`` exclusively with this journal's file mode; return its descriptor."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, self.file)
        os.fchmod(fd, self.file)  # whatever the umask
        return fd



class _Transaction:
    """One write transaction (:meth:`SQLiteStore._write`): ``BEGIN IMMEDIATE`` on entry,
    ``COMMIT`` after the body, ``ROLLBACK`` when it raised; a database error is the journal
    being unavailable, but a broken constraint (the caller's to handle). A class rather than
    :func:`contextlib.contextmanager`: contextlib is not imported on the start path."""

    __slots__ = ("conn", "store")

    def __init__(self, store: SQLiteStore, conn: sqlite3.Connection) -> None:
        self.store, self.conn = store, conn

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self.store._unavailable("write", exc) from None
        return self.conn

    def __exit__(self, kind: Any, exc: BaseException | None, traceback: Any) -> None:
        conn = self.conn
        if exc is None:
            try:
                conn.execute("COMMIT")
                return
            except BaseException as error:
                exc = error
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
            raise self.store._unavailable("write", exc) from None
        if exc is not None and kind is None:
            raise exc  # COMMIT failed
        # Returning None: the body's own exception goes on.

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
        #: Opened without write permission on the journal file (see _open).
        self.read_only = False
        self._immutable = False
        self._verified = False
        self.modes = Modes(os.path.dirname(self.path))
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
        self._prepare_files()
        if not os.access(self.path, os.W_OK):
            self._open_read_only(timeout)
            return
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
        # Damaged pages are then found as they are read, before a write can spread the damage.
        self._conn.execute("PRAGMA cell_size_check = ON")
        self._migrate()

    def _prepare_files(self) -> None:
        """Create the directory and the journal file private (or shared), fix older modes."""
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            parent = os.path.dirname(directory)
            os.makedirs(parent, exist_ok=True)  # parents such as ~/.local/share: as usual
            Modes(parent).make_dir(directory)
            self.modes = Modes(directory)
        if not os.path.lexists(self.path):
            # Made here, not by SQLite (which follows the umask): the WAL and its index take
            # the journal file's mode when SQLite creates them.
            try:
                os.close(self.modes.make_file(self.path))
            except FileExistsError:
                pass
            return
        if not stat.S_ISREG(os.stat(self.path).st_mode):
            # A FIFO would block, and SQLite would put its side files beside /dev/null.
            raise StoreUnavailable(
                f"{self.path} is not a kleio journal (not a regular file)",
                "point --db or KLEIO_DB at a journal file, or at a new path to start one",
            )
        self.modes.tighten(self.path)
        for side in ("-wal", "-shm"):
            self.modes.tighten(self.path + side, like=self.path)
        self.modes.tighten(self.blob_dir, is_dir=True)

    def _open_read_only(self, timeout: float) -> None:
        """Open a journal this user may read but not write, creating no file beside it.

        SQLite would create the WAL and its index owned by this user, with the journal's
        read-only mode, and leave them behind: its owner could then write no more. They exist
        while anyone has the journal open; when they do not, nobody does, and the file alone
        is the journal (``immutable``) until they appear (:meth:`_reopen_if_opened`).
        """
        side_files = all(os.path.exists(self.path + side) for side in ("-wal", "-shm"))
        from urllib.parse import quote  # only read-only opens need it

        uri = "file:" + quote(os.fsencode(self.path)) + "?mode=ro"
        if not side_files:
            uri += "&immutable=1"
        self._conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self.read_only, self._immutable = True, not side_files
        has_meta = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta or self._schema_version(self._conn) != SCHEMA_VERSION:
            raise StoreUnavailable(
                f"the journal at {self.path} is read-only to you and not up to date",
                "ask its owner to open it once with this kleio, or point --db or KLEIO_DB at "
                "a journal you can write",
            )

    def _reopen_if_opened(self) -> None:
        # An immutable view must not outlive the journal's idleness: once a writer has it
        # open (its WAL exists), read through the WAL like any reader.
        if self._immutable and os.path.exists(self.path + "-wal"):
            self.close()
            self._open_read_only(self.timeout)

    def _verify_documents(self, conn: sqlite3.Connection) -> None:
        """Refuse to write into a journal whose documents do not decode (a bit flip, a tool).

        SQLite checks its pages as it reads them (``cell_size_check``); the documents inside
        are checked here, once per store, before its first write. kleio writes them as ASCII
        JSON, so a document that is ASCII and passes SQLite's json_valid is sound; any other
        is decoded by Python's json (which also reads NaN) to decide. This reads every trial
        document once: about 0.2 s per 100 MB of documents (a trial's is 50 to 200 KB).
        """
        cursor = conn.execute(
            "SELECT CAST(id AS BLOB), CAST(doc AS BLOB), CAST(tags AS BLOB),"
            " json_valid(doc) AND json_valid(tags) FROM trials"
        )
        while rows := cursor.fetchmany(256):
            for raw_id, doc, tags, valid in rows:
                if not (valid and doc.isascii() and tags.isascii()):
                    self._load(doc, raw_id)
                    self._load(tags, raw_id)

    # -- plumbing -------------------------------------------------------------------------

    def _unavailable(self, action: str, exc: BaseException) -> StoreUnavailable:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        # SQLite may quote a whole damaged value in its message: keep the error one short line.
        reason = " ".join(reason.split())
        reason = reason if len(reason) <= 200 else reason[:200] + "…"
        if "malformed" in reason or "Could not decode to UTF-8" in reason:
            return StoreUnavailable(f"the journal at {self.path} is damaged ({reason})",
                                    _DAMAGED_HINT)
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

    def _write(self) -> _Transaction:
        """``with self._write() as conn:`` runs the body in one write transaction, taking the
        write lock up front."""
        conn = self._db
        if not self._verified:
            try:
                self._verify_documents(conn)
            except sqlite3.Error as exc:
                raise self._unavailable("read", exc) from None
            self._verified = True
        return _Transaction(self, conn)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            self._reopen_if_opened()
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._unavailable("read", exc) from None

    def _load(self, raw: bytes | str, raw_id: bytes | str | None = None) -> Any:
        """Decode a document of the journal; one that does not decode means damage."""
        try:
            return json.loads(raw)
        except ValueError:  # also UnicodeDecodeError: bytes that are not UTF-8
            name = raw_id.decode("utf-8", "replace") if isinstance(raw_id, bytes) else raw_id
            which = f"trial {name[:12]!r}" if name else "a trial"
            raise StoreUnavailable(
                f"the journal at {self.path} is damaged: the document of {which} does not "
                "decode", _DAMAGED_HINT) from None

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        if not self.read_only:
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            version = int(row[0]) if row else 0
        except (TypeError, ValueError):
            raise StoreUnavailable(
                f"the journal at {self.path} is damaged: its schema version {str(row[0])[:20]!r}"
                " is not a number", _DAMAGED_HINT) from None
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the journal at {self.path} was written by a newer kleio (schema {version} >"
                f" {SCHEMA_VERSION})", "upgrade kleio on this machine (pip install -U kleio)")
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
            if version < 2:  # summarized once every table of the summaries exists
                self._summarize_all(conn)
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- trials ---------------------------------------------------------------------------

    def _create_trial(self, *, doc: dict[str, Any]) -> bool:
        parent = doc.get("parent") or {}
        row = (
            doc["id"],
            _dumps(doc),
            *(doc.get(name) for name in _DOC_COLUMNS),
            parent.get("id"),
            _dumps(doc.get("tags") or []),
            doc.get("project") if isinstance(doc.get("project"), str) else None,
        )
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO trials (id, doc, created_at, started_at, ended_at,"
                " status, heartbeat_at, parent_id, tags, project)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            if cursor.rowcount != 1:
                return False
            # A new trial has no statistics: its (empty) summary is complete from the start.
            key = self._write_key(conn, doc["id"])
            conn.execute("INSERT OR IGNORE INTO summary_state (trial) VALUES (?)", (key,))
            # A primary declared before the document (events first) now knows its side.
            conn.execute("UPDATE primaries SET branch = ? WHERE trial = ?",
                         (int(row[5] is not None), key))
            return True

    def _get_trial(self, *, trial_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT CAST(doc AS BLOB) FROM trials WHERE id = ?", (trial_id,))
        return self._load(rows[0][0], trial_id) if rows else None

    def _apply_fields(
        self, conn: sqlite3.Connection, trial_id: str, fields: dict[str, Any]
    ) -> None:
        # Read-modify-write is safe: the caller holds the write lock (BEGIN IMMEDIATE).
        row = conn.execute(
            "SELECT CAST(doc AS BLOB) FROM trials WHERE id = ?", (trial_id,)).fetchone()
        if row is None:
            return
        doc = self._load(row[0], trial_id)
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

    def _update_trial(self, *, trial_id: str, fields: dict[str, Any]) -> None:
        with self._write() as conn:
            self._apply_fields(conn, trial_id, fields)

    def _find_trials(self, *, id_prefix: str | None, statuses: Sequence[str] | None,
                     tags: Sequence[str] | None, parent_id: str | None, field: str,
                     descending: bool, limit: int | None, since: float | None,
                     project: str | None, branches: bool | None) -> list[dict[str, Any]]:
        order = "DESC" if descending else "ASC"
        where, params = self._filters(statuses=statuses, tags=tags, since=since,
                                      project=project, branches=branches)
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
        if parent_id is not None:
            where.append("parent_id = ?")
            params.append(parent_id)
        # As bytes: a document damaged into bytes that are not UTF-8 is reported as damaged
        # (by _load), not by the sqlite3 module quoting the whole of it.
        sql = "SELECT CAST(id AS BLOB), CAST(doc AS BLOB) FROM trials"
        if branches and parent_id is None:
            sql += " INDEXED BY trials_parent"  # few branches: not a scan of every trial
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY "
        if field in NULLABLE_SORTS:
            # NULLs last in both directions: a trial that never started sorts after the
            # others. Only here: the term would keep an index from serving the sort.
            sql += f"{field} IS NULL, "
        sql += f"{field} {order}" if field == "id" else f"{field} {order}, id {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(_int64(limit))
        return [self._load(doc, raw_id) for raw_id, doc in self._query(sql, params)]

    @staticmethod
    def _filters(*, statuses: Sequence[str] | None, tags: Sequence[str] | None,
                 since: float | None, project: str | None, branches: bool | None,
                 table: str = "trials") -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if statuses is not None:
            where.append(f"{table}.status IN ({', '.join('?' * len(statuses))})")
            params += list(statuses)
        for tag in tags or ():
            where.append(f"EXISTS (SELECT 1 FROM json_each({table}.tags) WHERE value = ?)")
            params.append(tag)
        if since is not None:
            where.append(f"{table}.created_at >= ?")
            params.append(float(since))
        if project:
            where.append(f"instr({table}.project, ?) > 0")
            params.append(project)
        if branches is not None:
            where.append(f"{table}.parent_id IS {'NOT ' if branches else ''}NULL")
        return where, params

    # -- summaries ------------------------------------------------------------------------

    def _summarize_all(self, conn: sqlite3.Connection) -> None:
        """Summarize every trial of a journal written before summaries (migration 0002)."""
        ids = [row[0] for row in conn.execute("SELECT id FROM trials")]
        for trial_id in ids:
            key = self._write_key(conn, trial_id)
            self._resummarize(conn, key)

    def _resummarize(self, conn: sqlite3.Connection, key: int) -> None:
        """Rebuild one trial's summaries, declarations and runs from its events."""
        from kleio.storage.summary import Fold

        for table in ("summaries", "step_runs", "summary_marks"):
            conn.execute(f"DELETE FROM {table} WHERE trial = ?", (key,))
        fold = Fold(mark_every=MARK_EVERY)
        cursor = conn.execute("SELECT seq, data FROM events WHERE trial = ? AND kind ="
                              " 'statistic' ORDER BY seq", (key,))
        while rows := cursor.fetchmany(5000):
            for seq, data in rows:
                fold.add(seq, decode(data))
        self._write_fold(conn, key, fold, fresh=True)
        self._declare(conn, key)

    def _write_fold(self, conn: sqlite3.Connection, key: int, fold: Any, fresh: bool) -> None:
        entries = fold.entries
        conn.executemany(_UPSERT_SUMMARY, [
            (key, name, *(_stored(entries[name][c]) for c in _SUMMARY_COLUMNS))
            for name in fold.changed])
        conn.executemany(
            "INSERT OR REPLACE INTO step_runs (trial, key, first_seq, last_seq, value)"
            " VALUES (?, ?, ?, ?, ?)",
            [(key, k, first, run["last_seq"], run["value"])
             for (k, first), run in fold.changed_runs.items()])
        state = fold.state
        conn.execute("INSERT OR REPLACE INTO summary_state (trial, last_stat_seq, runs_ok,"
                     " since_mark) VALUES (?, ?, ?, ?)", (key, state["last_stat_seq"],
                                                         int(state["runs_ok"]),
                                                         state.get("since_mark")))
        for seq, entries in fold.marks:
            conn.execute("INSERT OR REPLACE INTO summary_marks (trial, seq, entries)"
                         " VALUES (?, ?, ?)", (key, seq, _dumps(
                             [[name, [_stored(e[c]) for c in _SUMMARY_COLUMNS]]
                              for name, e in entries.items()])))

    def _declare(self, conn: sqlite3.Connection, key: int) -> None:
        """Bring the trial's declared modes and primary metric in line with its events."""
        from kleio.storage.summary import declarations

        datas = [decode(row[0]) for row in conn.execute(
            "SELECT data FROM events WHERE trial = ? AND kind = 'metrics' ORDER BY seq", (key,))]
        modes, primary = declarations(datas)
        conn.execute("UPDATE summaries SET mode = NULL, is_primary = 0 WHERE trial = ?"
                     " AND (mode IS NOT NULL OR is_primary)", (key,))
        conn.execute("DELETE FROM primaries WHERE trial = ?", (key,))
        if primary:
            conn.execute(
                "INSERT INTO primaries (trial, name, branch) SELECT ?, ?, (SELECT"
                " t.parent_id IS NOT NULL FROM trial_keys k JOIN trials t ON t.id = k.id"
                " WHERE k.key = ?)", (key, primary, key))
        named = {**dict.fromkeys(modes), **({primary: None} if primary else {})}
        for name in named:
            conn.execute(
                "INSERT INTO summaries (trial, name, mode, is_primary) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (trial, name) DO UPDATE SET mode = excluded.mode,"
                " is_primary = excluded.is_primary",
                (key, name, modes.get(name), int(name == primary)))

    def _summarize(self, conn: sqlite3.Connection, key: int, stats: list[tuple[int, str]],
                   declared: bool) -> None:
        """Fold newly inserted statistics into the trial's summaries (same transaction)."""
        from kleio.storage.summary import Fold

        row = conn.execute("SELECT last_stat_seq, runs_ok, since_mark FROM summary_state"
                           " WHERE trial = ?", (key,)).fetchone()
        if row is None:  # a trial of an older kleio that was never summarized
            self._resummarize(conn, key)
            return
        if stats:
            # Every summary of the trial (tens of names): no pass over the batch to name them.
            entries: dict[str, dict[str, Any]] = {}
            for found in conn.execute("SELECT name, " + ", ".join(_SUMMARY_COLUMNS)
                                      + " FROM summaries WHERE trial = ? AND count > 0", (key,)):
                entries[found[0]] = {c: _loaded(v) for c, v in zip(_SUMMARY_COLUMNS, found[1:])}
            runs = {}
            if row[1]:
                for k, first, last, value in conn.execute(
                        "SELECT key, first_seq, last_seq, value FROM step_runs WHERE trial = ?"
                        " AND last_seq = ?", (key, row[0])):
                    runs[k] = {"first_seq": first, "last_seq": last, "value": value}
            fold = Fold(entries, {"last_stat_seq": row[0], "runs_ok": bool(row[1]),
                                  "since_mark": row[2]}, runs, mark_every=MARK_EVERY)
            fold.add_texts(stats)
            self._write_fold(conn, key, fold, fresh=False)
        if declared:
            self._declare(conn, key)

    def _read_summaries(self, *, trial_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        marks = ", ".join("?" * len(trial_ids))
        found: dict[str, dict[str, Any]] = {}
        for trial_id, last, runs_ok in self._query(
                "SELECT k.id, s.last_stat_seq, s.runs_ok FROM trial_keys k JOIN summary_state s"
                f" ON s.trial = k.key WHERE k.id IN ({marks})", list(trial_ids)):
            found[trial_id] = {"entries": {}, "modes": {}, "primary": None,
                               "last_stat_seq": last, "runs_ok": bool(runs_ok)}
        for trial_id, name, mode, primary, *values in self._query(
                "SELECT k.id, s.name, s.mode, s.is_primary, "
                + ", ".join(f"s.{c}" for c in _SUMMARY_COLUMNS)
                + " FROM trial_keys k JOIN summaries s ON s.trial = k.key"
                f" WHERE k.id IN ({marks})", list(trial_ids)):
            summary = found.get(trial_id)
            if summary is None:
                continue
            if values[0]:
                summary["entries"][name] = {c: _loaded(v) for c, v in
                                            zip(_SUMMARY_COLUMNS, values)}
            if mode is not None:
                summary["modes"][name] = mode
            if primary:
                summary["primary"] = name
        return found

    def _summary_mark(self, *, trial_id: str, upto: int
                      ) -> tuple[int, dict[str, dict[str, Any]]] | None:
        trial = self._read_key(trial_id)
        if trial is None:
            return None
        state = self._query("SELECT runs_ok FROM summary_state WHERE trial = ?", (trial,))
        if not state or not state[0][0]:  # marks hold only while statistics came in order
            return None
        rows = self._query("SELECT seq, entries FROM summary_marks WHERE trial = ? AND seq <= ?"
                           " ORDER BY seq DESC LIMIT 1", (trial, _int64(upto)))
        if not rows:
            return None
        return rows[0][0], {name: {c: _loaded(v) for c, v in zip(_SUMMARY_COLUMNS, values)}
                            for name, values in json.loads(rows[0][1])}

    def _step_runs(self, *, trial_id: str, key: str) -> list[dict[str, Any]] | None:
        trial = self._read_key(trial_id)
        if trial is None:
            return []
        state = self._query("SELECT runs_ok FROM summary_state WHERE trial = ?", (trial,))
        if not state or not state[0][0]:
            return None
        return [{"first_seq": first, "last_seq": last, "value": value}
                for first, last, value in self._query(
                    "SELECT first_seq, last_seq, value FROM step_runs WHERE trial = ? AND"
                    " key = ? ORDER BY first_seq", (trial, key))]

    def _declared_primaries(self, *, statuses: Sequence[str] | None,
                            tags: Sequence[str] | None, since: float | None,
                            project: str | None) -> tuple[set[str], bool]:
        where, params = self._filters(statuses=statuses, tags=tags, since=since,
                                      project=project, branches=False, table="t")
        if len(where) == 1:  # no filter but "not a branch": the primaries' index alone
            counts = self._query("SELECT name, count(*) FROM primaries WHERE branch = 0"
                                 " GROUP BY name")
            total = self._query("SELECT count(*) FROM trials INDEXED BY trials_parent"
                                " WHERE parent_id IS NULL")[0][0]
        else:
            counts = self._query(
                "SELECT p.name, count(*) FROM trials t JOIN trial_keys k ON k.id = t.id"
                " JOIN primaries p ON p.trial = k.key WHERE " + " AND ".join(where)
                + " GROUP BY p.name", params)
            total = self._query("SELECT count(*) FROM trials t WHERE "
                                + " AND ".join(where), params)[0][0]
        return {name for name, _ in counts}, total > sum(count for _, count in counts)

    def _rank_trials(self, *, metric: str, mode: str | None, default_mode: str | None,
                     descending: bool, statuses: Sequence[str] | None,
                     tags: Sequence[str] | None, since: float | None, project: str | None,
                     offset: int, limit: int) -> list[tuple[dict[str, Any], float]]:
        import heapq

        where, filters = self._filters(statuses=statuses, tags=tags, since=since,
                                       project=project, branches=False, table="t")
        order = "DESC" if descending else "ASC"
        wanted = offset + limit
        streams = []
        # One query per declared mode (max, min, none), each one range of the index on
        # (name, mode, min|max) in the order of the best (a CASE on the mode would sort every
        # summary of the metric), merged here.
        for declared in ("max", "min", None):
            side = mode or declared or default_mode
            if side is None:
                continue
            sql = (f"SELECT s.{side}, t.created_at, t.id FROM summaries s"
                   f" INDEXED BY summaries_{side} JOIN trial_keys k ON k.key = s.trial"
                   " JOIN trials t ON t.id = k.id WHERE s.name = ? AND s.mode IS ?"
                   f" AND s.{side} IS NOT NULL")
            sql += "".join(f" AND {w}" for w in where)
            sql += f" ORDER BY s.{side} {order}, t.created_at DESC, t.id LIMIT ?"
            params = [metric, declared, *filters, _int64(wanted)]
            streams.append([((-best if descending else best), -(created or 0), trial_id, best)
                            for best, created, trial_id in self._query(sql, params)
                            if not isinstance(best, str)])
        chosen = list(heapq.merge(*streams))[offset:wanted]
        docs: dict[str, Any] = {}
        ids = [item[2] for item in chosen]
        for low in range(0, len(ids), 500):
            part = ids[low:low + 500]
            for raw_id, doc in self._query(
                    "SELECT CAST(id AS BLOB), CAST(doc AS BLOB) FROM trials WHERE id IN"
                    f" ({', '.join('?' * len(part))})", part):
                docs[raw_id.decode("utf-8", "surrogateescape")] = (raw_id, doc)
        return [(self._load(docs[item[2]][1], docs[item[2]][0]), item[3])
                for item in chosen if item[2] in docs]

    # -- events ---------------------------------------------------------------------------

    def _read_key(self, trial_id: str) -> int | None:
        key = self._keys.get(trial_id)
        if key is None and encodable(trial_id):
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

    def _try_append(self, *, trial_id: str, event: NewEvent,
                    fields: dict[str, Any] | None) -> bool:
        with self._write() as conn:
            key = self._write_key(conn, trial_id)
            try:
                conn.execute(_INSERT_EVENT, (key, *event))
            except sqlite3.IntegrityError:
                return False
            if event[1] in ("statistic", "metrics"):
                self._summarize(conn, key, [(event[0], event[3])] if event[1] == "statistic"
                                else [], event[1] == "metrics")
            if fields:
                self._apply_fields(conn, trial_id, fields)
            return True

    def _append_events(self, *, trial_id: str, events: Sequence[NewEvent]) -> int:
        # The runner's hot path: one executemany per batch, data stored as given.
        with self._write() as conn:
            key = self._write_key(conn, trial_id)
            stats = [(e[0], e[3]) for e in events if e[1] == "statistic"]
            declared = any(e[1] == "metrics" for e in events)
            if stats:
                # Only events this call inserts are summarized (a replayed batch is skipped).
                seqs = [seq for seq, _ in stats]
                taken = {row[0] for row in conn.execute(
                    "SELECT seq FROM events WHERE trial = ? AND seq BETWEEN ? AND ?",
                    (key, _int64(min(seqs)), _int64(max(seqs))))}
                if taken:
                    stats = [item for item in stats if item[0] not in taken]
            before = conn.total_changes
            # The key is an integer of ours, inlined so the rows go to SQLite as given,
            # without building a new tuple per event.
            conn.executemany(_INSERT_EVENTS_OF.format(key=int(key)), events)
            inserted = conn.total_changes - before
            if stats or declared:
                self._summarize(conn, key, stats, declared)
            return inserted

    def _read_events(self, *, trial_id: str, kinds: Sequence[str] | None, after: int | None,
                     upto: int | None, limit: int | None, reverse: bool) -> list[Event]:
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
        rows = self._fetch_text(sql, params)
        if rows is None:
            # Event data damaged into bytes that are not UTF-8: read those as bytes, kept like
            # any undecodable text, so one damaged line does not make a trial unreadable.
            rows = [(seq, kind, when, bytes(data).decode("utf-8", "surrogateescape"))
                    for seq, kind, when, data in self._query(
                        sql.replace("time, data FROM", "time, CAST(data AS BLOB) FROM"), params)]
        return [Event(trial_id, seq, kind, when, loads(data)) for seq, kind, when, data in rows]

    def _fetch_text(self, sql: str, params: Sequence[Any]) -> list[Any] | None:
        """The rows of a query reading event text; None when some text is damaged into
        bytes that are not UTF-8 (the caller reads those differently).

        Raises:
            StoreUnavailable: the journal cannot be read.
        """
        try:
            self._reopen_if_opened()
            return self._db.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "Could not decode to UTF-8" not in str(exc):
                raise self._unavailable("read", exc) from None
            return None
        except sqlite3.Error as exc:
            raise self._unavailable("read", exc) from None

    def _read_raw(self, *, trial_id: str, kind: str, after: int | None, upto: int | None,
                  limit: int) -> list[tuple[int, str | dict[str, Any]]]:
        key = self._read_key(trial_id)
        if key is None:
            return []
        if after is not None and after >= _INT64_MAX:
            return []
        # The text as stored: the reader decides what it can pass through (decode the rest).
        # Statistics are most of a long trial's events: one range of the primary key, each
        # row read where it lies, costs half of the kind index plus a look-up per row (and
        # scanning past other events, in C, stays cheap); sparser kinds take the index.
        index = "" if kind == "statistic" else " INDEXED BY events_kind"
        sql = (f"SELECT seq, data FROM events{index}"
               " WHERE trial = ? AND kind = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?")
        params = (key, kind, _int64(-1 if after is None else after),
                  _int64(_INT64_MAX if upto is None else upto), _int64(limit))
        rows = self._fetch_text(sql, params)
        if rows is None:  # bytes that are not UTF-8: decoded one by one, as read_events does
            return super()._read_raw(trial_id=trial_id, kind=kind, after=after, upto=upto,
                                     limit=limit)
        return rows

    def _count_events(self, *, trial_id: str, kind: str, upto: int | None) -> int:
        key = self._read_key(trial_id)
        if key is None:
            return 0
        sql = "SELECT count(*) FROM events WHERE trial = ? AND kind = ?"
        params: list[Any] = [key, kind]
        if upto is not None:
            sql += " AND seq <= ?"
            params.append(_int64(upto))
        return int(self._query(sql, params)[0][0])

    def _last_seq(self, *, trial_id: str) -> int | None:
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

    def _put_blob(self, *, fileobj: IO[bytes]) -> tuple[str, int]:
        tmp = os.path.join(self.blob_dir, f".tmp-{os.urandom(16).hex()}")
        try:
            self.modes.make_dir(self.blob_dir)
            fd = self.modes.make_file(tmp)
            with os.fdopen(fd, "wb") as out:
                sha, size = copy_hashing(fileobj, out, _CHUNK)
                out.flush()
                # Durable before it gets its final name: a name promises its content.
                os.fsync(out.fileno())
            final = self._blob_path(sha)
            if os.path.exists(final):
                os.unlink(tmp)
            else:
                self.modes.make_dir(os.path.dirname(final))
                os.replace(tmp, final)
        except BaseException as exc:
            # Never leave a partial file behind, whatever interrupted the copy.
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise self._unavailable("write an artifact to", exc) from None
            raise
        return sha, size

    def _open_blob(self, *, sha256: str) -> IO[bytes]:
        try:
            return open(self._blob_path(sha256), "rb")
        except FileNotFoundError:
            raise KeyError(sha256) from None

    def _has_blob(self, *, sha256: str) -> bool:
        return os.path.isfile(self._blob_path(sha256))

    def _delete_trial(self, *, trial_id: str) -> int:
        with self._write() as conn:
            row = conn.execute("SELECT key FROM trial_keys WHERE id = ?", (trial_id,)).fetchone()
            removed = 0
            if row is not None:
                removed = conn.execute("DELETE FROM events WHERE trial = ?", (row[0],)).rowcount
                for table in ("summaries", "summary_state", "step_runs", "summary_marks",
                              "primaries"):
                    conn.execute(f"DELETE FROM {table} WHERE trial = ?", (row[0],))
            conn.execute("DELETE FROM trials WHERE id = ?", (trial_id,))
            return int(removed)

    def _delete_blob(self, *, sha256: str) -> int:
        path = self._blob_path(sha256)
        try:
            size = os.path.getsize(path)
            os.unlink(path)
        except FileNotFoundError:
            return 0
        return int(size)

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except sqlite3.Error:
                pass
