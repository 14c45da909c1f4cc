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

All SQL of kleio lives in this package, by concern: :mod:`.schema` (migrations, stored
values), :mod:`.files` (permissions), :mod:`.connection` (opening, transactions, keys),
:mod:`.trials`, :mod:`.events`, :mod:`.summaries` (and ranking), :mod:`.blobs`.
"""

from __future__ import annotations

from kleio.storage.sqlite.blobs import BlobsMixin
from kleio.storage.sqlite.events import EventsMixin
from kleio.storage.sqlite.files import Modes
from kleio.storage.sqlite.schema import MIGRATIONS, SCHEMA_VERSION

#: Statistics between two summary marks (see migration 0002); read here when a fold starts.
MARK_EVERY = 10_000


class SQLiteStore(EventsMixin, BlobsMixin):
    """A journal in one SQLite file, shared safely by processes on one machine.

    Args:
        uri: ``sqlite:///path/to/kleio.db`` or a bare path.
        timeout: seconds a write waits for another process's transaction before giving up.

    Raises:
        StoreUnavailable: the file or its directory cannot be created, opened or written.
        SchemaVersionError: the journal was written by a newer kleio.
    """


__all__ = ["MARK_EVERY", "MIGRATIONS", "SCHEMA_VERSION", "Modes", "SQLiteStore"]
