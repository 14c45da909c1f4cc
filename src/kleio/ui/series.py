"""Curves out of statistics: pick x and y, downsample, average a group of trials.

Shared by ``kleio plot`` and the dashboard; pure Python, no third-party import, so both can
use it whatever extras are installed.

A *series* is two lists of floats of the same length, ``xs`` and ``ys``, in the order the
statistics were logged over the trial's lineage (a branch's curve continues its parent's up
to the cut because the statistics it is made of are read that way).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from kleio.metrics import STEP_KEYS

#: The x axis chosen when none is asked for: the first of these keys the statistics hold
#: (the step keys of :mod:`kleio.metrics`), else the statistic's number in the lineage.
AUTO_X = STEP_KEYS

#: Points a curve is downsampled to by default: about two per pixel of a wide chart.
DEFAULT_POINTS = 2000


class Series(NamedTuple):
    xs: list[float]
    ys: list[float]


class Band(NamedTuple):
    """A group's curve: mean and standard deviation across its trials at each x."""

    xs: list[float]
    mean: list[float]
    std: list[float]
    counts: list[int]


def downsample(series: Series, points: int = DEFAULT_POINTS) -> Series:
    """At most about ``points`` points that draw like the whole curve.

    Min-max decimation: the points are cut in buckets of consecutive points and each bucket
    keeps its first, lowest, highest and last point, in their order. Spikes and the envelope
    survive (an average would erase them), and the cost is linear.
    """
    xs, ys = series
    n = len(xs)
    if n <= points or points < 8:
        return series
    buckets = max(1, points // 4)
    size = n / buckets
    out_x: list[float] = []
    out_y: list[float] = []
    get = ys.__getitem__
    for b in range(buckets):
        start, end = int(b * size), int((b + 1) * size) if b < buckets - 1 else n
        if start >= end:
            continue
        chunk = range(start, end)
        low = min(chunk, key=get)
        high = max(chunk, key=get)
        for i in sorted({start, low, high, end - 1}):
            out_x.append(xs[i])
            out_y.append(ys[i])
    return Series(out_x, out_y)


def aggregate(members: Sequence[Series]) -> Band:
    """Mean and sample standard deviation across ``members`` at every x any of them has.

    A member with several points at one x counts its last. The standard deviation is 0 where
    a single member has the x. ``count`` tells how many members each point is made of.
    """
    per_x: dict[float, list[float]] = {}
    for member in members:
        last: dict[float, float] = dict(zip(member.xs, member.ys))
        for xv, yv in last.items():
            per_x.setdefault(xv, []).append(yv)
    xs = sorted(per_x)
    mean: list[float] = []
    std: list[float] = []
    counts: list[int] = []
    for xv in xs:
        values = per_x[xv]
        m = math.fsum(values) / len(values)
        mean.append(m)
        counts.append(len(values))
        if len(values) > 1:
            std.append(math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1)))
        else:
            std.append(0.0)
    return Band(xs, mean, std, counts)


def downsample_band(band: Band, points: int = DEFAULT_POINTS) -> Band:
    """A band thinned to about ``points`` x values (every k-th, the last kept)."""
    n = len(band.xs)
    if n <= points or points < 2:
        return band
    step = n / points
    keep = sorted({min(n - 1, int(i * step)) for i in range(points)} | {n - 1})
    return Band(
        [band.xs[i] for i in keep],
        [band.mean[i] for i in keep],
        [band.std[i] for i in keep],
        [band.counts[i] for i in keep],
    )


# -- reading a trial's statistics once, then only what is new -------------------------------


class Columns:
    """The numeric statistics of one trial's lineage, column by column, kept up to date.

    :meth:`update` reads what was journalled since the last call (the ancestors' events up
    to their cut once, then the trial's own events after the last one read), so a chart of
    a running trial costs a full read once and a few rows afterwards. Each column keeps the
    statistic's number in the lineage (``index``, from 1) and the value, as compact arrays
    (16 bytes a point). ``summary`` folds the same statistics into best/last per metric
    (:class:`kleio.metrics.Summarizer`) when given declarations.
    """

    #: At most this many columns per trial: a program logging thousands of distinct keys
    #: must not make the dashboard hold them all.
    MAX_COLUMNS = 200

    def __init__(self, trial_id: str, declarations: Any = None) -> None:
        from array import array

        self._array = array
        self.trial_id = trial_id
        self.count = 0  # statistics read
        self.seq: int | None = None  # the trial's own last event read (any kind)
        self.columns: dict[str, tuple[Any, Any]] = {}
        self.keys: dict[str, None] = {}  # every key seen, numeric or not, in order
        self._ancestors_read = False
        #: Downsampled curves already answered, by the views: key -> (count, curve).
        self.drawn: dict[Any, tuple[int, Any]] = {}
        self.summarizer = None
        if declarations is not None:
            from kleio.metrics import Summarizer

            self.summarizer = Summarizer(declarations)

    def update(self, store: Any, upto: int | None = None, batch: int = 5000) -> int:
        """Read the statistics journalled since the last call; return how many were new.

        ``upto``: read the trial's own events up to this ``seq`` only (a page that shows a
        trial as of one moment, then follows it from there).
        """
        before = self.count
        if not self._ancestors_read:
            for doc, cut in store.lineage(trial_id=self.trial_id)[:-1]:
                self._read(store, doc["id"], None, cut, batch)
            self._ancestors_read = True
        self.seq = self._read(store, self.trial_id, self.seq, upto, batch, own=True)
        return self.count - before

    def _read(
        self,
        store: Any,
        trial_id: str,
        after: int | None,
        upto: int | None,
        batch: int,
        own: bool = False,
    ) -> int | None:
        last = after
        while True:
            events = store.read_events(
                trial_id=trial_id, kinds=("statistic",), after=last, upto=upto, limit=batch
            )
            for event in events:
                self.add(event.data)
            if events:
                last = events[-1].seq
            if len(events) < batch:
                break
        if own:
            # Later reads start after the last statistic read: events of other kinds after
            # it are never statistics, so nothing is skipped.
            return last
        return None

    def add(self, stat: dict[str, Any], index: int | None = None) -> None:
        """Add one statistic; ``index``: its number in the lineage (default: the next)."""
        self.count += 1
        if index is None:
            index = self.count
        columns = self.columns
        for key, value in stat.items():
            if key not in self.keys:
                self.keys[key] = None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            column = columns.get(key)
            if column is None:
                if len(columns) >= self.MAX_COLUMNS:
                    continue
                column = columns[key] = (self._array("q"), self._array("d"))
            try:
                number = float(value)
            except OverflowError:
                continue
            column[0].append(index)
            column[1].append(number)
        if self.summarizer is not None:
            self.summarizer.add(stat)

    def numeric_keys(self) -> list[str]:
        return list(self.columns)

    def choose_x(self, ys: Sequence[str] = ()) -> str | None:
        """The x key :data:`AUTO_X` picks among this trial's columns (None: the index)."""
        return next((key for key in AUTO_X if key in self.columns and key not in ys), None)

    def series(self, y: str, x: str | None) -> Series:
        """The finite values of ``y`` against ``x`` (None: the statistic's index)."""
        column = self.columns.get(y)
        if column is None:
            return Series([], [])
        indexes, values = column
        isfinite = math.isfinite
        if x is None:
            pairs = [(float(i), v) for i, v in zip(indexes, values) if isfinite(v)]
        else:
            x_column = self.columns.get(x)
            if x_column is None:
                return Series([], [])
            if x_column[0] == indexes:  # logged together every time: the common case
                pairs = [
                    (xv, v) for xv, v in zip(x_column[1], values) if isfinite(v) and isfinite(xv)
                ]
                return Series([p[0] for p in pairs], [p[1] for p in pairs])
            by_index = dict(zip(*x_column))
            get = by_index.get
            pairs = []
            for i, v in zip(indexes, values):
                xv = get(i)
                if xv is not None and isfinite(v) and isfinite(xv):
                    pairs.append((xv, v))
        return Series([p[0] for p in pairs], [p[1] for p in pairs])


def segments(store: Any, trial_id: str) -> list[tuple[str, int, int]]:
    """``(trial, first seq, last seq)`` of the statistics of each execution of the lineage.

    Two indexed reads per execution, whatever its size. ``last - first + 1`` bounds the
    number of statistics of a segment from above (the events between are statistics or
    output), which is all the preview and its threshold need: no count of a million rows.
    """
    from kleio.storage.base import execution_of, first_seq

    found: list[tuple[str, int, int]] = []
    for doc, bound in store.lineage(trial_id=trial_id):
        owner = doc["id"]
        after = -1
        while True:  # from one execution holding statistics to the next
            first = store.read_events(
                trial_id=owner, kinds=("statistic",), after=after, upto=bound, limit=1
            )
            if not first:
                break
            high = first_seq(execution_of(first[0].seq) + 1) - 1
            if bound is not None:
                high = min(high, bound)
            last = store.read_events(
                trial_id=owner,
                kinds=("statistic",),
                after=first[0].seq - 1,
                upto=high,
                limit=1,
                reverse=True,
            )
            found.append((owner, first[0].seq, last[0].seq))
            after = high
    return found


def sample(
    store: Any,
    trial_id: str,
    windows: int = 200,
    per_window: int = 10,
    spans: list[tuple[str, int, int]] | None = None,
) -> Columns:
    """A quick preview of a long trial's columns: ``windows`` runs of ``per_window``
    consecutive statistics, spread evenly over its lineage by sequence number.

    A few hundred indexed reads whatever the trial's size: a page can draw a
    million-point trial at once while its full columns are read. A statistic's number in
    the lineage (``index``) is estimated from its sequence number, and ``count`` is the
    estimate of :func:`segments`; the full read replaces both.
    """
    preview = Columns(trial_id)
    spans = segments(store, trial_id) if spans is None else spans
    total = sum(last - first + 1 for _, first, last in spans) or 1
    offset = 0
    for owner, first, last in spans:
        width = last - first + 1
        runs = max(1, round(windows * width / total))
        for run in range(runs):
            start = first + (width * run) // runs
            for event in store.read_events(
                trial_id=owner, kinds=("statistic",), after=start - 1, upto=last, limit=per_window
            ):
                preview.add(event.data, index=offset + 1 + (event.seq - first))
        offset += width
    preview.count = offset
    return preview
