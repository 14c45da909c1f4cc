"""The events of an SQLite journal: appended in one transaction with their summaries, read
in ranges of the primary key (trial, seq) or of the kind index."""

from __future__ import annotations

import _sqlite3 as sqlite3  # sqlite3 is this plus dbapi2's adapters (datetime): not used

from kleio.storage.base import Event, JoinedTexts, decode
from kleio.storage.sqlite.schema import INT64_MAX as _INT64_MAX
from kleio.storage.sqlite.schema import int64 as _int64
from kleio.storage.sqlite.summaries import SummariesMixin
from kleio.storage.sqlite.trials import TrialsMixin

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from collections.abc import Sequence
    from typing import Any

    from kleio.storage.base import NewEvent

_INSERT_EVENT = "INSERT INTO events (trial, seq, kind, time, data) VALUES (?, ?, ?, ?, ?)"
_INSERT_EVENTS_OF = (
    "INSERT OR IGNORE INTO events (trial, seq, kind, time, data) VALUES ({key}, ?, ?, ?, ?)"
)


# A batch of texts joined by SQLite (one string instead of one per row), in the order of
# seq: an aggregate's own ORDER BY where SQLite has it (3.44), else the order of the
# subquery's rows, which SQLite feeds to the aggregate as its ORDER BY sorts them (a test
# checks the order on the SQLite at hand).
_JOINED = (
    "SELECT count(*), max(seq), group_concat(data, char(10){order})"
    " FROM (SELECT seq, data FROM events{{index}}"
    " WHERE trial = ? AND kind = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?)"
).format(
    order=" ORDER BY seq" if tuple(map(int, sqlite3.sqlite_version.split("."))) >= (3, 44) else ""
)


class EventsMixin(TrialsMixin, SummariesMixin):
    """Appending and reading events (the ``events`` table)."""

    def _try_append(self, *, trial_id: str, event: NewEvent, fields: dict[str, Any] | None) -> bool:
        with self._write() as conn:
            key = self._write_key(conn, trial_id)
            try:
                conn.execute(_INSERT_EVENT, (key, *event))
            except sqlite3.IntegrityError:
                return False
            if event[1] in ("statistic", "metrics"):
                self._summarize(
                    conn,
                    key,
                    [(event[0], event[3])] if event[1] == "statistic" else [],
                    event[1] == "metrics",
                )
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
                taken = {
                    row[0]
                    for row in conn.execute(
                        "SELECT seq FROM events WHERE trial = ? AND seq BETWEEN ? AND ?",
                        (key, _int64(min(seqs)), _int64(max(seqs))),
                    )
                }
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
            rows = [
                (seq, kind, when, bytes(data).decode("utf-8", "surrogateescape"))
                for seq, kind, when, data in self._query(
                    sql.replace("time, data FROM", "time, CAST(data AS BLOB) FROM"), params
                )
            ]
        return [Event(trial_id, seq, kind, when, loads(data)) for seq, kind, when, data in rows]

    def _range(
        self, *, trial_id: str, kind: str, after: int | None, upto: int | None, limit: int
    ) -> tuple[str, tuple[int, str, int, int, int]] | None:
        """``(index clause, parameters)`` of the events of ``kind`` of a trial in
        ``(after, upto]``, at most ``limit``, for :meth:`_read_raw` and :meth:`_read_joined`;
        None when there are none to read (no such trial, or past the last seq).

        Statistics are most of a long trial's events: one range of the primary key, each row
        read where it lies, costs half of the kind index plus a look-up per row (and scanning
        past other events, in C, stays cheap); sparser kinds take the index."""
        key = self._read_key(trial_id)
        if key is None or (after is not None and after >= _INT64_MAX):
            return None
        params = (
            key,
            kind,
            _int64(-1 if after is None else after),
            _int64(_INT64_MAX if upto is None else upto),
            _int64(limit),
        )
        return ("" if kind == "statistic" else " INDEXED BY events_kind"), params

    def _read_raw(
        self, *, trial_id: str, kind: str, after: int | None, upto: int | None, limit: int
    ) -> list[tuple[int, str | dict[str, Any]]]:
        found = self._range(trial_id=trial_id, kind=kind, after=after, upto=upto, limit=limit)
        if found is None:
            return []
        index, params = found
        # The text as stored: the reader decides what it can pass through (decode the rest).
        sql = (
            f"SELECT seq, data FROM events{index}"
            " WHERE trial = ? AND kind = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
        )
        rows = self._fetch_text(sql, params)
        if rows is None:  # bytes that are not UTF-8: decoded one by one, as read_events does
            return super()._read_raw(
                trial_id=trial_id, kind=kind, after=after, upto=upto, limit=limit
            )
        return rows

    def _read_joined(
        self, *, trial_id: str, kind: str, after: int | None, upto: int | None, limit: int
    ) -> tuple[int, JoinedTexts] | None:
        found = self._range(trial_id=trial_id, kind=kind, after=after, upto=upto, limit=limit)
        if found is None:
            return 0, JoinedTexts("", 0)
        index, params = found
        rows = self._fetch_text(_JOINED.format(index=index), params)
        if rows is None:  # bytes that are not UTF-8, or past SQLite's limit: row by row
            return None
        count, last, text = rows[0]
        if not count:
            return 0, JoinedTexts("", 0)
        if text.count("\n") != count - 1:
            return None  # a text holding a newline: the joined text cannot be cut back
        return last, JoinedTexts(text + "\n", count)

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
