"""The trials of an SQLite journal: documents, their cached columns, listing and filters."""

from __future__ import annotations

import _sqlite3 as sqlite3  # sqlite3 is this plus dbapi2's adapters (datetime): not used

from kleio.storage.base import NULLABLE_SORTS
from kleio.storage.sqlite.connection import SQLiteBase
from kleio.storage.sqlite.schema import dumps as _dumps
from kleio.storage.sqlite.schema import int64 as _int64

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from collections.abc import Sequence
    from typing import Any

#: Real columns copied verbatim from the trial document.
_DOC_COLUMNS = ("created_at", "started_at", "ended_at", "status", "heartbeat_at")


def filters(
    *,
    statuses: Sequence[str] | None,
    tags: Sequence[str] | None,
    since: float | None,
    project: str | None,
    branches: bool | None,
    table: str = "trials",
) -> tuple[list[str], list[Any]]:
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


class TrialsMixin(SQLiteBase):
    """Trial documents (the ``trials`` table)."""

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
            conn.execute(
                "UPDATE primaries SET branch = ? WHERE trial = ?", (int(row[5] is not None), key)
            )
            return True

    def _get_trial(self, *, trial_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT CAST(doc AS BLOB) FROM trials WHERE id = ?", (trial_id,))
        return self._load(rows[0][0], trial_id) if rows else None

    def _apply_fields(
        self, conn: sqlite3.Connection, trial_id: str, fields: dict[str, Any]
    ) -> None:
        # Read-modify-write is safe: the caller holds the write lock (BEGIN IMMEDIATE).
        row = conn.execute(
            "SELECT CAST(doc AS BLOB) FROM trials WHERE id = ?", (trial_id,)
        ).fetchone()
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
    ) -> list[dict[str, Any]]:
        order = "DESC" if descending else "ASC"
        where, params = filters(
            statuses=statuses, tags=tags, since=since, project=project, branches=branches
        )
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

    def _delete_trial(self, *, trial_id: str) -> int:
        with self._write() as conn:
            row = conn.execute("SELECT key FROM trial_keys WHERE id = ?", (trial_id,)).fetchone()
            removed = 0
            if row is not None:
                removed = conn.execute("DELETE FROM events WHERE trial = ?", (row[0],)).rowcount
                for table in (
                    "summaries",
                    "summary_state",
                    "step_runs",
                    "summary_marks",
                    "primaries",
                ):
                    conn.execute(f"DELETE FROM {table} WHERE trial = ?", (row[0],))
            conn.execute("DELETE FROM trials WHERE id = ?", (trial_id,))
            return int(removed)

    def _with_branches(self, *, trial_ids: Sequence[str]) -> set[str]:
        marks = ",".join("?" * len(trial_ids))
        rows = self._query(
            f"SELECT DISTINCT parent_id FROM trials INDEXED BY trials_parent"
            f" WHERE parent_id IN ({marks})",
            list(trial_ids),
        )
        return {row[0] for row in rows}
