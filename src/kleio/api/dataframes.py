"""pandas frames of trials and statistics (the ``kleio[pandas]`` extra)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kleio.api.conditions import _number

if TYPE_CHECKING:
    from kleio.api.trial import Trial


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError("this needs pandas: pip install 'kleio[pandas]'") from None
    return pandas


def to_dataframe(trials: Iterable[Trial]) -> Any:
    """One row per trial: id, status, times, tags, one column per option, and ``NAME.best``
    / ``NAME.last`` per metric (a ``pandas.DataFrame``)."""
    pandas = _pandas()
    rows = []
    for item in trials:
        row: dict[str, Any] = {
            "id": item.id,
            "status": item.status,
            "created_at": item.created_at,
            "started_at": item.started_at,
            "ended_at": item.ended_at,
            "duration": item.duration,
            "tags": ",".join(item.tags),
            "parent": item.parent,
        }
        for key, value in item.options.items():
            row[key] = _option_value(value)
        for name, entry in item.metrics.items():
            row[f"{name}.best"] = entry["best"]
            row[f"{name}.last"] = entry["last"]
        rows.append(row)
    return pandas.DataFrame(rows)


def _option_value(value: Any) -> Any:
    number = _number(value)
    if number is not None and isinstance(value, str):
        return (
            int(number)
            if number.is_integer() and "." not in value and "e" not in value.lower()
            else number
        )
    return value


def statistics_dataframe(trials: Iterable[Trial]) -> Any:
    """One row per statistic (long format): ``trial``, ``index``, then the logged keys."""
    pandas = _pandas()
    rows = []
    for item in trials:
        for index, stat in enumerate(item.iter_statistics()):
            rows.append({"trial": item.id, "index": index, **stat})
    return pandas.DataFrame(rows)
