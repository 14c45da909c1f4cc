"""A journal the dashboard can only read: a store that refuses every write method.

:class:`ReadOnlyJournal` is :class:`kleio.api.Journal` whose store is wrapped in
:class:`ReadOnlyStore`: whatever a bug in the dashboard asked for, no write reaches the
journal. :func:`check_exists` refuses a journal that does not exist instead of creating it
(an SQLite file, or a MongoDB database holding no kleio collection).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from kleio.api import Journal
from kleio.errors import StoreUnavailable

#: The store methods a reader needs; every other attribute (the writes) is refused.
READ_METHODS = frozenset(
    {
        "get_trial",
        "find_trials",
        "read_events",
        "count_events",
        "last_seq",
        "open_blob",
        "has_blob",
        "lineage",
        "iter_lineage_events",
        "iter_lineage_raw",
        "iter_lineage_joined",
        "tail_lineage_events",
        "last_status",
        "resolve_id",
        "close",
        "uri",
        "read_summaries",
        "summarize_events",
        "step_runs",
        "next_seq_of",
        "declared_primaries",
        "rank_trials",
        "get_trials",
        "with_branches",
        "lineages",
        "read_events_of",
        "summarize_events_of",
        "find_artifact",
    }
)
#: The store methods that write: refused (a test checks every public method is one or the
#: other, so that a new method is classified when it is added).
WRITE_METHODS = frozenset(
    {
        "create_trial",
        "update_trial",
        "try_append",
        "append_events",
        "put_blob",
        "delete_trial",
        "delete_blob",
    }
)


class ReadOnlyStore:
    """Forward the read methods of a store; raise PermissionError for anything else."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name in READ_METHODS:
            return getattr(self._store, name)
        raise PermissionError(f"the dashboard only reads the journal: {name} is refused")

    def __enter__(self) -> ReadOnlyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self._store.close()


class ReadOnlyJournal(Journal):
    """A :class:`kleio.api.Journal` reading through a :class:`ReadOnlyStore`.

    Args:
        uri: the journal (default: the configured one).
        opener: opens the underlying store (default: :func:`kleio.storage.open_store` on
            ``uri``); tests hand in a MongoDB store on a mock client this way.
    """

    def __init__(
        self,
        uri: str | None = None,
        *,
        opener: Callable[[], Any] | None = None,
        metrics: Sequence[str] = (),
    ) -> None:
        super().__init__(uri, metrics=metrics)
        self._opener = opener

    @property
    def store(self) -> Any:
        if self._store is None:
            if self._opener is not None:
                self._store = ReadOnlyStore(self._opener())  # type: ignore[assignment]
            else:
                check_exists(self.uri)
                from kleio.storage import open_store

                self._store = ReadOnlyStore(open_store(self.uri))  # type: ignore[assignment]
        return self._store


def check_exists(uri: str) -> None:
    """Raise StoreUnavailable unless ``uri`` names a journal kleio has written to.

    Opening a store creates a new SQLite file, or a MongoDB database's collections and
    indexes: a dashboard pointed at a mistyped address must say so instead.
    """
    from kleio.storage import mask_uri, scheme_of, sqlite_path

    scheme = scheme_of(uri)
    if scheme == "sqlite":
        path = sqlite_path(uri)
        if not os.path.isfile(path) or os.path.getsize(path) == 0:  # (empty: SQLite's new)
            raise StoreUnavailable(
                f"there is no journal at {path}"
                + (" (the file is empty)" if os.path.isfile(path) else ""),
                "point --db or KLEIO_DB at an existing journal, or run a trial first "
                "(e.g. 'kleio python train.py')",
            )
        return
    if scheme not in ("mongodb", "mongodb+srv"):
        return
    from kleio.storage.mongodb import has_journal  # pymongo stays in its backend

    if not has_journal(uri):
        raise StoreUnavailable(
            f"there is no kleio journal in {mask_uri(uri)} (the database holds no trials)",
            "check the database name in the URI, or run a trial first",
        )
