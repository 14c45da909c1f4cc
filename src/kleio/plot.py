"""Draw learning curves to a PNG, SVG or PDF file with matplotlib (the ``plot`` extra).

:func:`render` takes panels already made of numbers (see :mod:`kleio.ui.series`); it knows
nothing of journals, so ``kleio plot`` and tests can call it alike. matplotlib is used
through :class:`matplotlib.figure.Figure` and its Agg-based canvases only: no pyplot, no
global state, no display needed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import IO, Any, NamedTuple

from kleio.errors import UsageError

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
    from kleio.ui import MissingExtra

    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtra("kleio plot needs matplotlib, which is not installed",
                           f"install it with: {PLOT_INSTALL}") from None
    return Figure


def render(panels: Sequence[Panel], out: str | IO[bytes], fmt: str, *,
           title: str | None = None) -> None:
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
                ax.fill_between(line.xs, line.lower, line.upper, color=color, alpha=0.2,
                                linewidth=0)
        ax.set_title(panel.metric)
        ax.set_xlabel(panel.xlabel)
        ax.grid(True, alpha=0.3)
        if not any(len(line.xs) for line in panel.lines):
            ax.text(0.5, 0.5, f"no numeric values of {panel.metric}", ha="center",
                    va="center", transform=ax.transAxes, color="gray")
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
