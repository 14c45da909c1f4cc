"""The filters of a listing (:meth:`kleio.api.Journal.iter_trials`): the statuses asked for,
what the store is asked (the filters given and the conditions on fields the database holds),
and the checks of the documents it did not filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kleio.api.conditions import parse_since
from kleio.errors import UsageError
from kleio.storage.base import STATUSES

if TYPE_CHECKING:
    from kleio.api.conditions import Condition


#: The statuses a held trial shows: one whose runner is dead shows as ``lost``, so a filter on
#: them is checked here, not by the database.
HELD_OR_LOST = frozenset({"lost", "running", "reserved"})


def wanted_statuses(status: Sequence[str] | None) -> set[str]:
    """The statuses asked for (``lost`` included).

    Raises:
        UsageError: one that no trial can have.
    """
    wanted = set(status or ())
    unknown = [s for s in wanted if s not in STATUSES and s != "lost"]
    if unknown:
        raise UsageError(
            f"unknown status {unknown[0]!r}", f"use one of {', '.join(STATUSES)}, lost"
        )
    return wanted


def stored_statuses(wanted: set[str]) -> list[str] | None:
    """The statuses the database holds for those wanted (None: any)."""
    if not wanted:
        return None
    # A lost trial is held (running/reserved) in the database.
    return sorted(
        {("running" if s == "lost" else s) for s in wanted}
        | ({"reserved"} if "lost" in wanted else set())
    )


def pins_status(condition: Condition, wanted: set[str]) -> bool:
    """Tell whether ``condition`` is a status the database can filter on (``status=X`` with
    no status asked for otherwise, ``X`` not a held status, which may show as lost)."""
    return (
        condition.op == "="
        and condition.name == "status"
        and not wanted
        and condition.text in STATUSES
        and condition.text not in ("running", "reserved")
    )


def store_filters(
    conditions: Sequence[Condition],
    wanted: set[str],
    tags: Sequence[str] | None,
    project: str | None,
    since: Any,
) -> dict[str, Any]:
    """The filters asked of the store: those given, and the conditions on fields the
    database holds (which are checked here as well)."""
    statuses = stored_statuses(wanted)
    threshold = parse_since(since) if since is not None else None
    for condition in conditions:
        if pins_status(condition, wanted):
            statuses = [condition.text]
        elif (
            condition.op in (">", ">=")
            and condition.name == "created"
            and condition.number is not None
        ):
            threshold = max(threshold or condition.number, condition.number)
        elif condition.op in ("=", "==") and condition.name in ("tag", "tags"):
            tags = [*(tags or ()), condition.text]
    return {"statuses": statuses, "tags": tags, "since": threshold, "project": project or None}


def passes(
    doc: dict[str, Any],
    since: float | None,
    project: str | None,
    tags: Sequence[str] | None,
) -> bool:
    """Tell whether a trial document passes the filters (``tags`` None: not checked)."""
    if since is not None and (doc.get("created_at") or 0) < since:
        return False
    if project and project not in str(doc.get("project") or ""):
        return False
    return not (tags and not set(tags) <= set(doc.get("tags") or ()))


def as_texts(value: Any, what: str) -> list[str] | None:
    """A filter taking several texts: one text is a list of one (``tags="sweep"``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (bytes, dict)) or not isinstance(value, Iterable):
        raise TypeError(f"{what} takes a string or a list of strings, not {type(value).__name__}")
    return list(value)


def checked_limit(limit: Any) -> int | None:
    """``limit`` checked as ``kleio ls --limit`` checks it: a whole number, 0 or more."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise UsageError(
            f"limit is not a whole number: {str(limit)[:40]!r}", "give 0 or more, or None for all"
        )
    if limit < 0:
        raise UsageError(f"limit must be 0 or more, not {limit}", "give 0 or more, or None for all")
    return limit
