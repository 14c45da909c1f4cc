"""The SQLite journal's connection: opening (files, WAL, read-only views, migrations), one
write transaction at a time, reads that report a damaged or unreachable journal as such,
and the integer keys events use for their trial.
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # sqlite3 is this plus dbapi2's adapters (datetime): not used
import abc
import os
import stat
import time

from kleio import cjson as json  # json's C codec without json's imports (re, enum)
from kleio.errors import SchemaVersionError, StoreUnavailable
from kleio.storage import mask_uri, sqlite_path
from kleio.storage.base import Store, encodable
from kleio.storage.sqlite.files import Modes
from kleio.storage.sqlite.schema import DAMAGED_HINT, MIGRATIONS, SCHEMA_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from collections.abc import Sequence
    from typing import Any


class _Transaction:
    """One write transaction (:meth:`SQLiteBase._write`): ``BEGIN IMMEDIATE`` on entry,
    ``COMMIT`` after the body, ``ROLLBACK`` when it raised; a database error is the journal
    being unavailable, but a broken constraint (the caller's to handle). A class rather than
    :func:`contextlib.contextmanager`: contextlib is not imported on the start path."""

    __slots__ = ("conn", "store")

    def __init__(self, store: SQLiteBase, conn: sqlite3.Connection) -> None:
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


def unreadable(path: str) -> StoreUnavailable:
    """The error of a journal file that exists but that this user may not read."""
    import shlex  # only this error needs it

    try:
        mode = f" (mode {stat.S_IMODE(os.stat(path).st_mode):03o})"
    except OSError:
        mode = ""
    return StoreUnavailable(
        f"the journal at {path} exists but is not readable by you{mode}",
        f"fix its permissions (chmod u+rw {shlex.quote(path)}, or ask its owner), or point --db or "
        "KLEIO_DB at another journal",
    )


class SQLiteBase(Store):
    """What every part of :class:`kleio.storage.sqlite.SQLiteStore` stands on (see there)."""

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
        if not os.access(self.path, os.R_OK):
            # SQLite would only say "unable to open database file": the fix is the file's.
            raise unreadable(self.path)
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
        self._conn = sqlite3.connect(
            uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
        )
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
            return StoreUnavailable(
                f"the journal at {self.path} is damaged ({reason})", DAMAGED_HINT
            )
        denied = isinstance(exc, PermissionError) or "unable to open" in reason
        # Readable when opened, and no longer (a chmod meanwhile), or a race with one?
        if denied and os.path.isfile(self.path) and not os.access(self.path, os.R_OK):
            return unreadable(self.path)
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
                f"the journal at {self.path} is damaged: the document of {which} does not decode",
                DAMAGED_HINT,
            ) from None

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        if not self.read_only:
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            version = int(row[0]) if row else 0
        except (TypeError, ValueError):
            raise StoreUnavailable(
                f"the journal at {self.path} is damaged: its schema version {str(row[0])[:20]!r}"
                " is not a number",
                DAMAGED_HINT,
            ) from None
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the journal at {self.path} was written by a newer kleio (schema {version} >"
                f" {SCHEMA_VERSION})",
                "upgrade kleio on this machine (pip install -U kleio)",
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

    # -- keys of trials, text of events -----------------------------------------------------

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

    def _fetch_text(self, sql: str, params: Sequence[Any]) -> list[Any] | None:
        """The rows of a query reading event text; None when some text is damaged into
        bytes that are not UTF-8, or a text the query builds (texts joined) would pass
        SQLite's limit on the size of one (the caller reads those differently, row by row).

        Raises:
            StoreUnavailable: the journal cannot be read.
        """
        try:
            self._reopen_if_opened()
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            if "Could not decode to UTF-8" in str(exc) or "too big" in str(exc):
                return None
            raise self._unavailable("read", exc) from None

    @abc.abstractmethod
    def _summarize_all(self, conn: sqlite3.Connection) -> None:
        """Summarize every trial of a journal from before summaries (the migrations)."""

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except sqlite3.Error:
                pass
