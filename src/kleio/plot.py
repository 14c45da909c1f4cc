"""Draw learning curves to a PNG, SVG or PDF file with matplotlib (the ``plot`` extra).

:func:`panels_for` turns trials of :mod:`kleio.api` into panels of numbers (one per metric,
one line per trial or a mean ± std band per group, lineage included); :func:`render` draws
panels and knows nothing of journals, so tests can call it alike. matplotlib is used
through :class:`matplotlib.figure.Figure` and its Agg-based canvases only: no pyplot, no
global state, no display needed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import IO, Any, NamedTuple

from kleio.errors import MissingExtra, UsageError

#: File extension -> matplotlib format.
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}

PLOT_INSTALL = "pip install 'kleio[plot]'"


class Line(NamedTuple):
    """One curve: a trial, or a group's mean with its ±std band (``lower``, ``upper``)."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    lower: Sequence[float] | None = None
    upper: Sequence[float] | None = None


class Panel(NamedTuple):
    """One metric: its curves against one x axis."""

    metric: str
    xlabel: str
    lines: Sequence[Line]


def format_of(path: str) -> str:
    """The image format named by ``path``'s extension.

    Raises:
        UsageError: the extension is none of :data:`FORMATS`.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise UsageError(
            f"cannot tell the image format of {path!r} from its extension",
            f"end the file name with one of {', '.join(FORMATS)}",
        )
    return FORMATS[ext]


def _figure_class() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtra(
            "kleio plot needs matplotlib, which is not installed",
            f"install it with: {PLOT_INSTALL}",
        ) from None
    return Figure


def render(
    panels: Sequence[Panel], out: str | IO[bytes], fmt: str, *, title: str | None = None
) -> None:
    """Draw ``panels`` (one axes each, two columns at most) and save them to ``out``.

    Raises:
        MissingExtra: matplotlib is not installed.
    """
    figure_class = _figure_class()
    count = max(1, len(panels))
    cols = 1 if count == 1 else 2
    rows = math.ceil(count / cols)
    many = max((len(p.lines) for p in panels), default=0) > 8
    width = 7.0 * cols + (2.5 if many else 0.0)
    fig = figure_class(figsize=(width, 4.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for index, panel in enumerate(panels):
        ax = axes[index // cols][index % cols]
        for number, line in enumerate(panel.lines):
            color = f"C{number % 10}"
            ax.plot(line.xs, line.ys, label=line.label, color=color, linewidth=1.4)
            if line.lower is not None and line.upper is not None:
                ax.fill_between(
                    line.xs, line.lower, line.upper, color=color, alpha=0.2, linewidth=0
                )
        ax.set_title(panel.metric)
        ax.set_xlabel(panel.xlabel)
        ax.grid(True, alpha=0.3)
        if not any(len(line.xs) for line in panel.lines):
            ax.text(
                0.5,
                0.5,
                f"no numeric values of {panel.metric}",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="gray",
            )
        elif many:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.legend(fontsize="small")
    for index in range(len(panels), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    if title:
        fig.suptitle(title)
    # No creation date in SVG and PDF: the same journal draws the same file.
    metadata: dict[str, Any] = {"Date": None} if fmt in ("svg", "pdf") else {}
    if fmt == "svg":
        import matplotlib

        matplotlib.rcParams["svg.hashsalt"] = "kleio"
    fig.savefig(out, format=fmt, dpi=110, metadata=metadata)


# -- from trials to panels ------------------------------------------------------------------


def panels_for(
    journal: Any,
    trials: Sequence[Any],
    ys: Sequence[str],
    x: str | None,
    group_except: Sequence[str] = (),
    points: int = 4000,
) -> list[Panel]:
    """One panel per name of ``ys`` for these trials (:class:`kleio.api.Trial`).

    Each trial's statistics are read once over its lineage (a branch's curve continues its
    parent's up to the cut). Legends name a trial by its short id and the options that
    differ among the trials; with ``group_except``, trials whose options differ only in
    those are one line, their mean, with a ±std band.

    Raises:
        UsageError: a name of ``ys`` or ``x`` that no trial logged.
    """
    from kleio.api import groups
    from kleio.ui.series import Columns, aggregate, downsample, downsample_band

    columns = {}
    for trial in trials:
        columns[trial.id] = Columns(trial.id)
        columns[trial.id].update(journal.store)
    _check_names(trials, list(ys), columns, "given with --y")
    if x is not None:
        _check_names(trials, [x], columns, "given with --x")
    x_key = x or next((c.choose_x(ys) for c in columns.values() if c.choose_x(ys)), None)
    xlabel = x_key or "statistic number"
    option_names: dict[str, None] = {}
    for trial in trials:
        option_names.update(dict.fromkeys(trial.options))
    differing = [
        name for name in option_names if len({repr(t.options.get(name)) for t in trials}) > 1
    ]
    panels = []
    for y in ys:
        lines = []
        if group_except:
            for group in groups(trials, except_=list(group_except)):
                shown = [k for k in differing if k in group.options]
                label = " ".join(f"{k}={group.options[k]}" for k in shown) or "all"
                if group.n == 1:
                    label = f"{group.trials[0].short_id} {label}".strip()
                label += f" (n={group.n})"
                band = downsample_band(
                    aggregate([columns[t.id].series(y, x_key) for t in group.trials]), points
                )
                lines.append(
                    Line(
                        label,
                        band.xs,
                        band.mean,
                        [m - s for m, s in zip(band.mean, band.std)],
                        [m + s for m, s in zip(band.mean, band.std)],
                    )
                )
        else:
            for trial in trials:
                label = trial.short_id + "".join(
                    f" {k}={trial.options.get(k)}" for k in differing if k in trial.options
                )
                curve = downsample(columns[trial.id].series(y, x_key), points)
                lines.append(Line(label, curve.xs, curve.ys))
        panels.append(Panel(y, xlabel, lines))
    return panels


def _check_names(
    trials: Sequence[Any], names: list[str], columns: dict[str, Any], what: str
) -> None:
    for name in names:
        if not any(name in columns[t.id].keys for t in trials):
            logged = sorted({k for t in trials for k in columns[t.id].keys})
            raise UsageError(
                f"no trial among {', '.join(t.short_id for t in trials)} logged a statistic "
                f"{name!r} ({what})",
                f"use one of: {', '.join(logged[:20]) or '(none logged yet)'}",
            )
