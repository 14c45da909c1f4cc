"""Per-trial summaries of statistics, kept by the store as events are appended.

Reading commands rank trials by a metric's best value and show its last one; decoding every
statistic of every trial for that made ``kleio ls --sort -val_acc`` over 100,000 trials take
minutes. So the store keeps, per trial (its *own* events, not its ancestors') and per
numeric statistic name, a summary independent of any mode::

    {"count": 10, "last": 0.21, "last_seq": ...,
     "min": 0.19, "min_seq": ..., "min_step": 7, "min_step_key": "epoch",
     "max": 0.52, "max_seq": ..., "max_step": 1, "max_step_key": "epoch"}

so that the best under either mode is known whatever mode a reader declares (see
:mod:`kleio.metrics`: the best is the *first* value reaching the minimum or maximum; NaN is
never best; ``last`` is the last numeric value, NaN included). The trial's own metric
declarations (``metrics`` events) are kept beside them: ``modes`` and ``primary``.

For ``branch --timestamp KEY=VALUE`` the store also keeps *step runs*: for each key of
:data:`STEP_KEYS`, maximal runs of consecutive statistics carrying the same value
(``epoch=3`` logged in 1,000 statistics in a row is one run), so a cut is found by an indexed
query instead of decoding every statistic. Runs are only trusted while statistics arrive in
``seq`` order and hold plain values (``runs_ok``); otherwise readers scan.

The folding is order-independent for summaries (a replayed spool may deliver an older
execution's events late): ``last`` is the value of the highest ``seq``, ties of best go to
the lowest ``seq``.

This module folds statistics into summaries (:class:`Fold`); the entry itself (its fields,
a lineage's merge, what readers show) is :mod:`kleio.storage.summary_entries`, the decoding
of a batch by columns :mod:`kleio.storage.columnar`, both importable from here.

Pure Python and light: the runner's writer imports it on its first statistic.
"""

from __future__ import annotations

from itertools import compress
from math import isnan as _isnan
from operator import ne

from kleio.storage.base import decode, encodable
from kleio.storage.columnar import columns
from kleio.storage.summary_entries import (
    ENTRY_FIELDS,
    RUN_KEYS,
    STEP_KEYS,
    as_kept,
    declarations,
    merge,
    metric_entry,
    new_entry,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

__all__ = [
    "ENTRY_FIELDS",
    "RUN_KEYS",
    "STEP_KEYS",
    "Fold",
    "as_kept",
    "columns",
    "declarations",
    "fold_all",
    "merge",
    "metric_entry",
    "new_entry",
]

_PLAIN = (int, float, str)
_NUMBERS = {int, float}


class Fold:
    """Fold statistic events into summaries and step runs.

    Args:
        entries: the stored summaries of the names that may change (``{name: entry}``),
            updated in place; names seen for the first time are added.
        state: ``{"last_stat_seq": int | None, "runs_ok": bool}``, updated in place.
        runs: the latest stored run per step key (``{key: {"first_seq", "last_seq",
            "value"}}``), updated in place.
    """

    __slots__ = (
        "changed",
        "changed_runs",
        "entries",
        "mark_every",
        "marks",
        "runs",
        "state",
        "stored_runs",
    )

    def __init__(
        self,
        entries: dict[str, dict[str, Any]] | None = None,
        state: dict[str, Any] | None = None,
        runs: dict[str, dict[str, Any]] | None = None,
        mark_every: int | None = None,
    ) -> None:
        self.entries = {} if entries is None else entries
        #: Every ``mark_every`` statistics in order, ``(seq, copy of every entry)``.
        self.mark_every = mark_every
        self.marks: list[tuple[int, dict[str, dict[str, Any]]]] = []
        self.state: dict[str, Any] = (
            {"last_stat_seq": None, "runs_ok": True} if state is None else state
        )
        self.runs = {} if runs is None else runs
        self.changed: set[str] = set()
        self.changed_runs: dict[tuple[str, int], dict[str, Any]] = {}
        #: The runs handed in (already stored): changed ones are updates, others inserts.
        self.stored_runs = {(key, run["first_seq"]) for key, run in self.runs.items()}

    def add(self, seq: int, stat: dict[str, Any]) -> None:  # noqa: C901 - the hot loop, kept flat
        # The runner's writer calls this for every statistic it journals: kept flat (every
        # attribute and the step looked up once per statistic, most values leave at the
        # first test).
        entries = self.entries
        changed = self.changed
        step_key: Any = None  # None: not looked up yet; "": the statistic has none
        step: Any = None
        for name, value in stat.items():
            kind = type(value)
            if kind is not float and kind is not int:  # bool, text, lists: not a value
                continue
            if not name.isascii() and not encodable(name):
                continue  # a lone surrogate (hostile bytes): no driver can store the name
            entry = entries.get(name)
            if entry is None:
                entry = entries[name] = new_entry()
                changed.add(name)
            elif name not in changed:
                changed.add(name)
            entry["count"] += 1
            if seq > (entry["last_seq"] or -1):
                entry["last"] = value
                entry["last_seq"] = seq
            if value != value:  # NaN is never best
                continue
            low = entry["min"]
            if low is not None and low < value:
                high = entry["max"]
                if high > value or (high == value and seq > entry["max_seq"]):
                    continue  # the common case: neither a new minimum nor a new maximum
            if step_key is None:
                for step_key in STEP_KEYS:
                    if step_key in stat:
                        step = stat[step_key]
                        break
                else:
                    step_key = ""
            if low is None or value < low or (value == low and seq < entry["min_seq"]):
                entry["min"] = value
                entry["min_seq"] = seq
                entry["min_step"] = step
                entry["min_step_key"] = step_key or None
            high = entry["max"]
            if high is None or value > high or (value == high and seq < entry["max_seq"]):
                entry["max"] = value
                entry["max_seq"] = seq
                entry["max_step"] = step
                entry["max_step_key"] = step_key or None
        if "epoch" not in stat and self.state["runs_ok"]:
            previous = self.state["last_stat_seq"]
            if previous is None or seq > previous:
                self.state["last_stat_seq"] = seq
            else:
                self._runs(seq, stat)
        else:
            self._runs(seq, stat)
        if self.mark_every and self.state["runs_ok"]:
            since = (self.state.get("since_mark") or 0) + 1
            if since >= self.mark_every:
                self.marks.append((seq, {k: dict(v) for k, v in entries.items() if v["count"]}))
                since = 0
            self.state["since_mark"] = since

    def add_texts(self, stats: Sequence[tuple[int, str]]) -> None:
        """``add(seq, decode(text))`` for each statistic in order, with the same result, but
        by columns where it can: the runner's batches are statistics of the same keys in
        seq order, and one ``min`` of a column costs less than one comparison per statistic
        in Python (and :func:`columns` less than decoding each text). Cut at the marks, so
        that a mark is taken after the statistic :meth:`add` takes it after."""
        done = 0
        while done < len(stats):
            part = stats[done:]
            if self.mark_every and self.state["runs_ok"]:
                room = self.mark_every - (self.state.get("since_mark") or 0)
                part = part[: max(1, room)]
            if not self._add_columns(part):
                for seq, text in part:
                    self.add(seq, decode(text))
            done += len(part)

    def _add_columns(self, stats: Sequence[tuple[int, str]]) -> bool:  # noqa: C901 - hot
        """Fold ``stats`` as :meth:`add` would, column by column; False (nothing changed)
        when they are not in seq order after the last statistic folded, not
        :func:`columns`, or hold a value :meth:`add` treats statistic by statistic (NaN, a
        column of numbers and other values, a step run's value of another type)."""
        state = self.state
        seqs = [seq for seq, _ in stats]
        previous = state["last_stat_seq"]
        if (
            not state["runs_ok"]
            or (previous is not None and seqs[0] <= previous)
            or seqs != sorted(set(seqs))
        ):
            return False
        found = columns([text for _, text in stats])
        if found is None:
            return False
        shape, values, _ = found
        by_key = dict(zip(shape, values))
        numeric = []
        try:
            for name, column in by_key.items():
                kinds = set(map(type, column))
                if not kinds & _NUMBERS:
                    continue  # text, booleans, null: never a value
                if kinds - _NUMBERS or (float in kinds and any(map(_isnan, column))):
                    return False
                if name.isascii() or encodable(name):
                    numeric.append((name, column))
        except OverflowError:  # isnan of an integer past any float, beside floats
            return False
        runs = self._column_runs(by_key, seqs, previous)
        if runs is None:
            return False
        step_key = next((key for key in STEP_KEYS if key in by_key), "")
        steps = by_key.get(step_key)
        for name, column in numeric:
            self._merge_column(name, column, seqs, steps, step_key or None)
        for key, run in runs:
            self.runs[key] = run
            self.changed_runs[(key, run["first_seq"])] = run
        state["last_stat_seq"] = seqs[-1]
        if self.mark_every:
            since = (state.get("since_mark") or 0) + len(seqs)
            if since >= self.mark_every:
                self.marks.append(
                    (seqs[-1], {k: dict(v) for k, v in self.entries.items() if v["count"]})
                )
                since = 0
            state["since_mark"] = since
        return True

    def _merge_column(
        self,
        name: str,
        column: list[Any],
        seqs: list[int],
        steps: list[Any] | None,
        step_key: str | None,
    ) -> None:
        entry = self.entries.get(name)
        if entry is None:
            entry = self.entries[name] = new_entry()
        self.changed.add(name)
        entry["count"] += len(column)
        if seqs[-1] > (entry["last_seq"] or -1):
            entry["last"], entry["last_seq"] = column[-1], seqs[-1]
        for side, best in (("min", min), ("max", max)):
            value = best(column)  # the first of the equal best: the lowest seq
            index = column.index(value)
            value, seq = column[index], seqs[index]
            held = entry[side]
            if (
                held is None
                or (value < held if side == "min" else value > held)
                or (value == held and seq < entry[side + "_seq"])
            ):
                entry[side], entry[side + "_seq"] = value, seq
                entry[side + "_step"] = None if steps is None else steps[index]
                entry[side + "_step_key"] = step_key

    def _column_runs(
        self, by_key: dict[str, list[Any]], seqs: list[int], previous: int | None
    ) -> list[tuple[str, dict[str, Any]]] | None:
        """The runs :meth:`_runs` would make of these columns (in order), or None when
        one of its values would stop the runs or change type in a column."""
        made = []
        for key in RUN_KEYS:
            column = by_key.get(key)
            if column is None:
                continue  # statistics without the key: its last run is not continued
            kinds = set(map(type, column))
            if (
                len(kinds) != 1
                or kinds.pop() not in _PLAIN
                or any(
                    value != value or type(value) is int and not -(1 << 63) <= value < (1 << 63)
                    for value in (min(column), max(column))
                )
            ):
                return None
            run = self.runs.get(key)
            starts = [0, *compress(range(1, len(column)), map(ne, column[1:], column[:-1]))]
            for begin, end in zip(starts, [*starts[1:], len(column)]):
                if (
                    begin == 0
                    and run is not None
                    and run["last_seq"] == previous
                    and type(run["value"]) is type(column[0])
                    and run["value"] == column[0]
                ):
                    run = dict(run, last_seq=seqs[end - 1])
                else:
                    run = {
                        "first_seq": seqs[begin],
                        "last_seq": seqs[end - 1],
                        "value": column[begin],
                    }
                made.append((key, run))
        return made

    def _runs(self, seq: int, stat: dict[str, Any]) -> None:
        state = self.state
        previous = state["last_stat_seq"]
        if previous is not None and seq <= previous:
            state["runs_ok"] = False  # out of order: readers scan instead
            return
        state["last_stat_seq"] = seq
        if not state["runs_ok"]:
            return
        for key in RUN_KEYS:
            if key not in stat:
                continue
            value = stat[key]
            if (
                type(value) not in _PLAIN
                or value != value
                or (type(value) is int and not -(1 << 63) <= value < (1 << 63))
            ):
                state["runs_ok"] = False  # a value the runs cannot hold exactly
                return
            run = self.runs.get(key)
            if (
                run is not None
                and run["last_seq"] == previous
                and type(run["value"]) is type(value)
                and run["value"] == value
            ):
                run["last_seq"] = seq
            else:
                run = self.runs[key] = {"first_seq": seq, "last_seq": seq, "value": value}
            self.changed_runs[(key, run["first_seq"])] = run


def fold_all(
    events: Iterable[tuple[int, dict[str, Any]]], start: dict[str, dict[str, Any]] | None = None
) -> Fold:
    """A fold of ``(seq, statistic)`` pairs from nothing, or from the entries ``start``."""
    fold = Fold({k: dict(v) for k, v in start.items()} if start else None)
    for seq, stat in events:
        fold.add(seq, stat)
    return fold
