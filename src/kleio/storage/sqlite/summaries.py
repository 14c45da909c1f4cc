"""The summaries of an SQLite journal (see :mod:`kleio.storage.summary`): kept in the
transaction that appends the statistics, read to rank trials by a metric."""

from __future__ import annotations

import _sqlite3 as sqlite3  # sqlite3 is this plus dbapi2's adapters (datetime): not used

import kleio.storage.sqlite as package  # MARK_EVERY, read where it is set (tests lower it)
from kleio import cjson as json  # json's C codec without json's imports (re, enum)
from kleio.storage.base import decode
from kleio.storage.sqlite.connection import SQLiteBase
from kleio.storage.sqlite.schema import dumps as _dumps
from kleio.storage.sqlite.schema import int64 as _int64
from kleio.storage.sqlite.schema import loaded as _loaded
from kleio.storage.sqlite.schema import stored as _stored
from kleio.storage.sqlite.trials import filters as _filters
from kleio.storage.summary_entries import ENTRY_FIELDS

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from collections.abc import Sequence
    from typing import Any

_SUMMARY_COLUMNS = ENTRY_FIELDS  # the table's columns, in the entry's order
_UPSERT_SUMMARY = (
    "INSERT INTO summaries (trial, name, "
    + ", ".join(_SUMMARY_COLUMNS)
    + ") VALUES (?, ?, "
    + ", ".join("?" * len(_SUMMARY_COLUMNS))
    + ") ON CONFLICT (trial, name) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _SUMMARY_COLUMNS)
)


class SummariesMixin(SQLiteBase):
    """Summaries, declarations, marks, step runs and ranking (migrations 0002, 0003)."""

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
        fold = Fold(mark_every=package.MARK_EVERY)
        cursor = conn.execute(
            "SELECT seq, data FROM events WHERE trial = ? AND kind = 'statistic' ORDER BY seq",
            (key,),
        )
        while rows := cursor.fetchmany(5000):
            for seq, data in rows:
                fold.add(seq, decode(data))
        self._write_fold(conn, key, fold)
        self._declare(conn, key)

    def _write_fold(self, conn: sqlite3.Connection, key: int, fold: Any) -> None:
        entries = fold.entries
        conn.executemany(
            _UPSERT_SUMMARY,
            [
                (key, name, *(_stored(entries[name][c]) for c in _SUMMARY_COLUMNS))
                for name in fold.changed
            ],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO step_runs (trial, key, first_seq, last_seq, value)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (key, k, first, run["last_seq"], run["value"])
                for (k, first), run in fold.changed_runs.items()
            ],
        )
        state = fold.state
        conn.execute(
            "INSERT OR REPLACE INTO summary_state (trial, last_stat_seq, runs_ok,"
            " since_mark) VALUES (?, ?, ?, ?)",
            (key, state["last_stat_seq"], int(state["runs_ok"]), state.get("since_mark")),
        )
        for seq, entries in fold.marks:
            conn.execute(
                "INSERT OR REPLACE INTO summary_marks (trial, seq, entries) VALUES (?, ?, ?)",
                (
                    key,
                    seq,
                    _dumps(
                        [
                            [name, [_stored(e[c]) for c in _SUMMARY_COLUMNS]]
                            for name, e in entries.items()
                        ]
                    ),
                ),
            )

    def _declare(self, conn: sqlite3.Connection, key: int) -> None:
        """Bring the trial's declared modes and primary metric in line with its events."""
        from kleio.storage.summary import declarations

        datas = [
            decode(row[0])
            for row in conn.execute(
                "SELECT data FROM events WHERE trial = ? AND kind = 'metrics' ORDER BY seq", (key,)
            )
        ]
        modes, primary = declarations(datas)
        conn.execute(
            "UPDATE summaries SET mode = NULL, is_primary = 0 WHERE trial = ?"
            " AND (mode IS NOT NULL OR is_primary)",
            (key,),
        )
        conn.execute("DELETE FROM primaries WHERE trial = ?", (key,))
        if primary:
            conn.execute(
                "INSERT INTO primaries (trial, name, branch) SELECT ?, ?, (SELECT"
                " t.parent_id IS NOT NULL FROM trial_keys k JOIN trials t ON t.id = k.id"
                " WHERE k.key = ?)",
                (key, primary, key),
            )
        named = {**dict.fromkeys(modes), **({primary: None} if primary else {})}
        for name in named:
            conn.execute(
                "INSERT INTO summaries (trial, name, mode, is_primary) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (trial, name) DO UPDATE SET mode = excluded.mode,"
                " is_primary = excluded.is_primary",
                (key, name, modes.get(name), int(name == primary)),
            )

    def _summarize(
        self, conn: sqlite3.Connection, key: int, stats: list[tuple[int, str]], declared: bool
    ) -> None:
        """Fold newly inserted statistics into the trial's summaries (same transaction)."""
        from kleio.storage.summary import Fold

        row = conn.execute(
            "SELECT last_stat_seq, runs_ok, since_mark FROM summary_state WHERE trial = ?", (key,)
        ).fetchone()
        if row is None:  # a trial of an older kleio that was never summarized
            self._resummarize(conn, key)
            return
        if stats:
            # Every summary of the trial (tens of names): no pass over the batch to name them.
            entries: dict[str, dict[str, Any]] = {}
            for found in conn.execute(
                "SELECT name, "
                + ", ".join(_SUMMARY_COLUMNS)
                + " FROM summaries WHERE trial = ? AND count > 0",
                (key,),
            ):
                entries[found[0]] = {c: _loaded(v) for c, v in zip(_SUMMARY_COLUMNS, found[1:])}
            runs = {}
            if row[1]:
                for k, first, last, value in conn.execute(
                    "SELECT key, first_seq, last_seq, value FROM step_runs WHERE trial = ?"
                    " AND last_seq = ?",
                    (key, row[0]),
                ):
                    runs[k] = {"first_seq": first, "last_seq": last, "value": value}
            fold = Fold(
                entries,
                {"last_stat_seq": row[0], "runs_ok": bool(row[1]), "since_mark": row[2]},
                runs,
                mark_every=package.MARK_EVERY,
            )
            fold.add_texts(stats)
            self._write_fold(conn, key, fold)
        if declared:
            self._declare(conn, key)

    def _read_summaries(self, *, trial_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        marks = ", ".join("?" * len(trial_ids))
        found: dict[str, dict[str, Any]] = {}
        for trial_id, last, runs_ok in self._query(
            "SELECT k.id, s.last_stat_seq, s.runs_ok FROM trial_keys k JOIN summary_state s"
            f" ON s.trial = k.key WHERE k.id IN ({marks})",
            list(trial_ids),
        ):
            found[trial_id] = {
                "entries": {},
                "modes": {},
                "primary": None,
                "last_stat_seq": last,
                "runs_ok": bool(runs_ok),
            }
        for trial_id, name, mode, primary, *values in self._query(
            "SELECT k.id, s.name, s.mode, s.is_primary, "
            + ", ".join(f"s.{c}" for c in _SUMMARY_COLUMNS)
            + " FROM trial_keys k JOIN summaries s ON s.trial = k.key"
            f" WHERE k.id IN ({marks})",
            list(trial_ids),
        ):
            summary = found.get(trial_id)
            if summary is None:
                continue
            if values[0]:
                summary["entries"][name] = {c: _loaded(v) for c, v in zip(_SUMMARY_COLUMNS, values)}
            if mode is not None:
                summary["modes"][name] = mode
            if primary:
                summary["primary"] = name
        return found

    def _summary_mark(
        self, *, trial_id: str, upto: int
    ) -> tuple[int, dict[str, dict[str, Any]]] | None:
        trial = self._read_key(trial_id)
        if trial is None:
            return None
        state = self._query("SELECT runs_ok FROM summary_state WHERE trial = ?", (trial,))
        if not state or not state[0][0]:  # marks hold only while statistics came in order
            return None
        rows = self._query(
            "SELECT seq, entries FROM summary_marks WHERE trial = ? AND seq <= ?"
            " ORDER BY seq DESC LIMIT 1",
            (trial, _int64(upto)),
        )
        if not rows:
            return None
        return rows[0][0], {
            name: {c: _loaded(v) for c, v in zip(_SUMMARY_COLUMNS, values)}
            for name, values in json.loads(rows[0][1])
        }

    def _step_runs(self, *, trial_id: str, key: str) -> list[dict[str, Any]] | None:
        trial = self._read_key(trial_id)
        if trial is None:
            return []
        state = self._query("SELECT runs_ok FROM summary_state WHERE trial = ?", (trial,))
        if not state or not state[0][0]:
            return None
        return [
            {"first_seq": first, "last_seq": last, "value": value}
            for first, last, value in self._query(
                "SELECT first_seq, last_seq, value FROM step_runs WHERE trial = ? AND"
                " key = ? ORDER BY first_seq",
                (trial, key),
            )
        ]

    def _declared_primaries(
        self,
        *,
        statuses: Sequence[str] | None,
        tags: Sequence[str] | None,
        since: float | None,
        project: str | None,
    ) -> tuple[set[str], bool]:
        where, params = _filters(
            statuses=statuses, tags=tags, since=since, project=project, branches=False, table="t"
        )
        if len(where) == 1:  # no filter but "not a branch": the primaries' index alone
            counts = self._query(
                "SELECT name, count(*) FROM primaries WHERE branch = 0 GROUP BY name"
            )
            total = self._query(
                "SELECT count(*) FROM trials INDEXED BY trials_parent WHERE parent_id IS NULL"
            )[0][0]
        else:
            counts = self._query(
                "SELECT p.name, count(*) FROM trials t JOIN trial_keys k ON k.id = t.id"
                " JOIN primaries p ON p.trial = k.key WHERE "
                + " AND ".join(where)
                + " GROUP BY p.name",
                params,
            )
            total = self._query(
                "SELECT count(*) FROM trials t WHERE " + " AND ".join(where), params
            )[0][0]
        return {name for name, _ in counts}, total > sum(count for _, count in counts)

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
        import heapq

        where, filters = _filters(
            statuses=statuses, tags=tags, since=since, project=project, branches=False, table="t"
        )
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
            sql = (
                f"SELECT s.{side}, t.created_at, t.id FROM summaries s"
                f" INDEXED BY summaries_{side} JOIN trial_keys k ON k.key = s.trial"
                " JOIN trials t ON t.id = k.id WHERE s.name = ? AND s.mode IS ?"
                f" AND s.{side} IS NOT NULL"
            )
            sql += "".join(f" AND {w}" for w in where)
            sql += f" ORDER BY s.{side} {order}, t.created_at DESC, t.id LIMIT ?"
            params = [metric, declared, *filters, _int64(wanted)]
            streams.append(
                [
                    ((-best if descending else best), -(created or 0), trial_id, best)
                    for best, created, trial_id in self._query(sql, params)
                    if not isinstance(best, str)
                ]
            )
        chosen = list(heapq.merge(*streams))[offset:wanted]
        docs: dict[str, Any] = {}
        ids = [item[2] for item in chosen]
        for low in range(0, len(ids), 500):
            part = ids[low : low + 500]
            for raw_id, doc in self._query(
                "SELECT CAST(id AS BLOB), CAST(doc AS BLOB) FROM trials WHERE id IN"
                f" ({', '.join('?' * len(part))})",
                part,
            ):
                docs[raw_id.decode("utf-8", "surrogateescape")] = (raw_id, doc)
        return [
            (self._load(docs[item[2]][1], docs[item[2]][0]), item[3])
            for item in chosen
            if item[2] in docs
        ]
