"""The trials table of the dashboard: one page of trials and the metric columns it shows.

A trial is shown as ``kleio ls --json``'s object (:func:`row`), its numbers made JSON-safe
(:func:`finite`); the trial page and the comparison reuse both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

#: Rows a page of the trials table may ask for.
MAX_PAGE = 500


def finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such a number becomes None (``null``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def row(trial: Any) -> dict[str, Any]:
    """One trial of the table: ``kleio ls --json``'s object, numbers made JSON-safe."""
    data = trial.to_json()
    data["metrics"] = {
        name: {key: finite(value) for key, value in entry.items()}
        for name, entry in data["metrics"].items()
    }
    return data


def _matches(trial: Any, needle: str) -> bool:
    """The search box: a case-insensitive substring of id, command, project, tags, options."""
    hay = " ".join(
        [trial.id, " ".join(trial.command), str(trial.project or ""), " ".join(trial.tags)]
        + [f"{k}={v}" for k, v in trial.options.items()]
    )
    return needle in hay.lower()


def trials_page(
    journal: Any,
    *,
    sort: str = "-created",
    where: Sequence[str] = (),
    status: Sequence[str] = (),
    tags: Sequence[str] = (),
    search: str = "",
    offset: int = 0,
    limit: int = 50,
) -> dict[str, Any]:
    """One page of the trials table, and whether more follow (no count of all: that would
    read every trial of a 100,000-trial journal for one number)."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    needle = search.strip().lower()
    wanted = offset + limit + 1
    found = journal.iter_trials(
        where=list(where),
        status=list(status) or None,
        tags=list(tags) or None,
        sort=sort,
        limit=None if needle else wanted,
    )
    page: list[Any] = []
    seen = 0
    for trial in found:
        if needle and not _matches(trial, needle):
            continue
        seen += 1
        if seen > offset:
            page.append(trial)
        if seen >= wanted:
            break
    more = len(page) > limit
    shown = page[:limit]
    rows = [row(trial) for trial in shown]
    options: dict[str, None] = {}
    for item in rows:
        options.update(dict.fromkeys(item["options"]))
    metrics, primary = metric_columns(shown)
    return {
        "rows": rows,
        "offset": offset,
        "limit": limit,
        "more": more,
        "options": list(options),
        "metrics": metrics,
        "primary": primary,
        "sort": sort,
    }


def metric_columns(trials: Sequence[Any]) -> tuple[list[str], str | None]:
    """The metric columns of a table of ``trials``, in the order that matters: the primary
    metric the most trials declare, the other primaries, the declared metrics, then the other
    numeric statistics, each group by name; and that primary metric (None: none declared)."""
    primaries: dict[str, int] = {}
    declared: set[str] = set()
    found: set[str] = set()
    for trial in trials:
        found.update(trial.metrics)
        declared.update(trial.declarations.modes)
        if trial.primary:
            primaries[trial.primary] = primaries.get(trial.primary, 0) + 1
    ranked = sorted(primaries, key=lambda name: (-primaries[name], name))
    rank = {name: (0, index) for index, name in enumerate(ranked)}
    order = sorted(
        found, key=lambda name: (*rank.get(name, (1 if name in declared else 2, 0)), name)
    )
    return order, (ranked[0] if ranked else None)
