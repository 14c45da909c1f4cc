"""What the dashboard's JSON endpoints answer, as plain functions of a read-only journal.

The trials, their options, metrics and groups come from :mod:`kleio.api`; the views only
shape them for the page, one module a page: :mod:`kleio.ui.trials_table` (the table and its
metric columns), :mod:`kleio.ui.trial_page` (a trial's header, curves, output, artifacts and
new events) and :mod:`kleio.ui.comparison` (several trials overlaid). They are all importable
from here, the module the server uses.

This module keeps what those pages share: the :class:`ColumnCache` their statistics are read
from, column by column (:class:`~kleio.ui.series.Columns`, cached per trial so a running
trial is read incrementally). Nothing here writes: the journal is only ever read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from kleio.ui.comparison import compare
from kleio.ui.series import DEFAULT_POINTS, Columns, sample, segments
from kleio.ui.trial_page import (
    LIVE_KINDS,
    MAX_CHARTS,
    OUTPUT_TAIL,
    artifacts,
    find_artifact,
    new_events,
    output,
    trial_detail,
    trial_series,
)
from kleio.ui.trials_table import MAX_PAGE, finite, metric_columns, row, trials_page

__all__ = [
    "DEFAULT_POINTS",
    "LIVE_KINDS",
    "MAX_CHARTS",
    "MAX_PAGE",
    "OUTPUT_TAIL",
    "PREVIEW_OVER",
    "ColumnCache",
    "artifacts",
    "compare",
    "find_artifact",
    "finite",
    "metric_columns",
    "new_events",
    "output",
    "row",
    "trial_detail",
    "trial_series",
    "trials_page",
]

#: A trial with more statistics than this is first shown from a preview (:func:`sample`)
#: while its full columns are read in the background.
PREVIEW_OVER = 100_000


class ColumnCache:
    """The :class:`Columns` of recently viewed trials (a small LRU, one lock per trial).

    ``open_journal`` (a callable returning a new journal) lets a long trial be read in a
    background thread, with its own connection, while pages are served from a preview.
    """

    def __init__(self, size: int = 16, open_journal: Any = None) -> None:
        self.size = size
        self.open_journal = open_journal
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[threading.Lock, Columns]] = OrderedDict()
        self._previews: dict[str, Columns] = {}

    def get(self, store: Any, trial: Any, upto: int | None = None) -> tuple[Columns, bool]:
        """The trial's columns, updated with what was journalled since (up to ``upto``),
        and whether they are complete (False: a preview, the full read is under way)."""
        with self._lock:
            preview = self._previews.get(trial.id)
            if preview is not None:
                return preview, False
            entry = self._entries.get(trial.id)
            fresh = entry is None
            if entry is None:
                entry = (threading.Lock(), Columns(trial.id, trial.declarations))
                self._entries[trial.id] = entry
            self._entries.move_to_end(trial.id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        lock, columns = entry
        spans = segments(store, trial.id) if fresh and self.open_journal is not None else []
        if sum(last - first + 1 for _, first, last in spans) > PREVIEW_OVER:
            preview = sample(store, trial.id, spans=spans)
            with self._lock:
                self._previews[trial.id] = preview
            threading.Thread(
                target=self._load,
                args=(trial.id, lock, columns),
                name=f"kleio-ui-load-{trial.short_id}",
                daemon=True,
            ).start()
            return preview, False
        with lock:
            columns.update(store, upto=upto)
        return columns, True

    def _load(self, trial_id: str, lock: threading.Lock, columns: Columns) -> None:
        try:
            with self.open_journal() as journal, lock:
                columns.update(journal.store)
        finally:
            with self._lock:
                self._previews.pop(trial_id, None)
