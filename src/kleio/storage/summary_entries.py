"""The summary entry of one metric (see :mod:`kleio.storage.summary`): its fields, the step
keys, the entries of a lineage merged, the trial's declarations, the summary readers show.

Pure Python and light, as :mod:`kleio.storage.summary` is: the runner's writer imports it
on its first statistic, the read API to show a trial.
"""

from __future__ import annotations

from kleio.storage.records import int_as_float

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

#: Statistic keys that say where in a run a value was logged (same as kleio.metrics).
STEP_KEYS = ("step", "global_step", "epoch", "iteration", "iter")

#: Keys whose runs the store keeps: an epoch spans many statistics, so its runs are few; a
#: step or an iteration is new in every statistic, and its runs would double the journal's
#: writes (a cut on those keys scans the statistics instead).
RUN_KEYS = ("epoch",)

#: The fields of one summary entry, in the order backends store them.
ENTRY_FIELDS = (
    "count",
    "last",
    "last_seq",
    "min",
    "min_seq",
    "min_step",
    "min_step_key",
    "max",
    "max_seq",
    "max_step",
    "max_step_key",
)


#: The fields of an entry holding a statistic's value (the others are counts and seqs).
VALUE_FIELDS = ("last", "min", "min_step", "max", "max_step")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def as_kept(summary: dict[str, Any]) -> dict[str, Any]:
    """``summary`` (``entries``, ``modes``...) as every store returns it, however it was made
    (kept as statistics came, or folded from the events on read), changed in place.

    Entries and modes in the order of their names (code points: SQLite's primary key order,
    never the order a server happens to return); a value an integer outside int64 as a float
    (an infinity past the largest float), as both backends keep it, an int64 a plain int
    (pymongo reads a stored one as :class:`bson.int64.Int64`).
    """
    entries = summary["entries"]
    for entry in entries.values():
        for field in VALUE_FIELDS:
            value = entry.get(field)
            if isinstance(value, int) and value is not True and value is not False:
                if not _INT64_MIN <= value <= _INT64_MAX:
                    entry[field] = int_as_float(value)
                elif type(value) is not int:
                    entry[field] = int(value)
    summary["entries"] = {name: entries[name] for name in sorted(entries)}
    summary["modes"] = dict(sorted(summary["modes"].items()))
    return summary


def new_entry() -> dict[str, Any]:
    entry: dict[str, Any] = dict.fromkeys(ENTRY_FIELDS)
    entry["count"] = 0
    return entry


def declarations(datas: Iterable[Any]) -> tuple[dict[str, str], str | None]:
    """``(modes, primary)`` of a trial's ``metrics`` events, oldest first (later win)."""
    from kleio.metrics import from_events

    found = from_events(datas)
    return found.modes, found.primary


def merge(earlier: dict[str, Any] | None, later: dict[str, Any]) -> dict[str, Any]:
    """The entry of a lineage: ``earlier`` (an ancestor's part) then ``later`` (its own).

    Sequence numbers are per trial, so the merged entry's ``*_seq`` are meaningless.
    """
    if earlier is None:
        return dict(later)
    out = dict(earlier)
    out["count"] = (earlier["count"] or 0) + (later["count"] or 0)
    if later["last_seq"] is not None:
        out["last"], out["last_seq"] = later["last"], later["last_seq"]
    for side in ("min", "max"):
        value = later[side]
        if value is None:
            continue
        best = out[side]
        if best is None or (value < best if side == "min" else value > best):
            for suffix in ("", "_seq", "_step", "_step_key"):
                out[side + suffix] = later[side + suffix]
    return out


def metric_entry(entry: dict[str, Any], mode: str) -> dict[str, Any]:
    """The summary :mod:`kleio.metrics` documents, for ``mode`` (``min`` or ``max``)."""
    return {
        "mode": mode,
        "last": entry["last"],
        "best": entry[mode],
        "best_step": entry[mode + "_step"],
        "step_key": entry[mode + "_step_key"],
        "count": entry["count"],
    }
