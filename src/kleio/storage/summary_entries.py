"""The summary entry of one metric (see :mod:`kleio.storage.summary`): its fields, the step
keys, the entries of a lineage merged, the trial's declarations, the summary readers show.

Pure Python and light, as :mod:`kleio.storage.summary` is: the runner's writer imports it
on its first statistic, the read API to show a trial.
"""

from __future__ import annotations

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
