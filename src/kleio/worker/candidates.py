"""Which trials a worker may try to reserve: one store query, oldest first."""

from __future__ import annotations

from typing import Any

from kleio.reservation import HELD, RESERVABLE, holder_alive
from kleio.storage.base import Store

#: How many candidates one store query returns (beyond those this worker already excludes).
BATCH = 16


def find_candidates(
    store: Store,
    *,
    tags: list[str],
    host: str,
    stale_after: float,
    allow_broken: bool = False,
    broken_before: float = 0.0,
    exclude: set[str] | frozenset[str] = frozenset(),
    limit: int = BATCH,
) -> list[dict[str, Any]]:
    """Return up to ``limit`` trials a worker may try to reserve, oldest first.

    Filters, sort and limit are pushed into the store's query. Held trials (``reserved``,
    ``running``) are few (at most one per live runner) and are kept only when their runner
    is dead. ``exclude`` holds ids this worker will not run; broken trials are kept only if
    they broke before ``broken_before``.
    """
    statuses = list(RESERVABLE) + (["broken"] if allow_broken else [])
    tag_filter = list(tags) or None
    # Ask for enough rows that excluded ones cannot hide the next runnable trial.
    docs = store.find_trials(
        statuses=statuses, tags=tag_filter, sort="created_at", limit=limit + len(exclude)
    )
    docs += [
        doc
        for doc in store.find_trials(statuses=list(HELD), tags=tag_filter, sort="created_at")
        if not holder_alive(
            doc.get("runner"), doc.get("heartbeat_at"), host=host, stale_after=stale_after
        )
    ]
    kept = [
        doc
        for doc in docs
        if doc["id"] not in exclude
        and (doc.get("status") != "broken" or (doc.get("status_at") or 0.0) < broken_before)
    ]
    kept.sort(key=lambda doc: (doc.get("created_at") or 0.0, doc["id"]))
    return kept[:limit]
