"""The SQLite journal's schema: its migrations, numbered, and how values are stored.

See :mod:`kleio.storage.sqlite` for the journal's layout.
"""

from __future__ import annotations

from kleio import cjson as json  # json's C codec without json's imports (re, enum)
from kleio.storage.base import int_as_float

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any

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
            "UPDATE trials SET project = json_extract(doc, '$.project') WHERE json_valid(doc)",
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

#: SQLite integers are signed 64-bit; a larger bound or limit means "no bound".
INT64_MAX = (1 << 63) - 1


def int64(value: int) -> int:
    return max(-INT64_MAX - 1, min(value, INT64_MAX))


def stored(value: Any) -> Any:
    """A summary value as an untyped column holds it (NaN as 'nan', huge ints as floats)."""
    if type(value) is float:
        return value if value == value else "nan"
    if type(value) is int:
        return value if -INT64_MAX - 1 <= value <= INT64_MAX else int_as_float(value)
    if value is None or type(value) is str:
        return value
    if isinstance(value, bool):
        return int(value)
    return dumps(value)


def loaded(value: Any) -> Any:
    return float("nan") if value == "nan" else value


def dumps(doc: Any) -> str:
    # ASCII-only JSON: lone surrogates (undecodable output bytes) cannot be encoded to UTF-8
    # by the sqlite3 module, but their \\u escapes can.
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True)


DAMAGED_HINT = (
    "restore it from a backup, or point --db or KLEIO_DB at another journal (kleio writes "
    "nothing into a damaged journal)"
)
