"""The module-level shortcuts of :mod:`kleio.api`: each opens the journal and closes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kleio.api.journal import Journal
from kleio.api.trial import Trial


def open_journal(uri: str | None = None, *, metrics: Sequence[str] = ()) -> Journal:
    """Open the journal at ``uri`` (default: the configured one) for reading."""
    return Journal(uri, metrics=metrics)


def trials(db: str | None = None, *, metrics: Sequence[str] = (), **filters: Any) -> list[Trial]:
    """The trials of a journal matching ``filters`` (see the module docstring).

    Their lazily read values (metrics, statistics) are read now, so they stay usable after the
    journal is closed (later calls reopen it).
    """
    with Journal(db, metrics=metrics) as journal:
        found = journal.trials(**filters)
        for trial in found:
            trial.metrics  # noqa: B018 - read while connected
            trial.started_at  # noqa: B018
        return found


def trial(trial_id: str, db: str | None = None, *, metrics: Sequence[str] = ()) -> Trial:
    """The trial whose id starts with ``trial_id``."""
    with Journal(db, metrics=metrics) as journal:
        found = journal.trial(trial_id)
        found.metrics  # noqa: B018
        found.started_at  # noqa: B018
        return found


def statistics(trial_id: str, db: str | None = None) -> list[dict[str, Any]]:
    """The statistics of a trial's lineage, oldest first (rows as logged)."""
    with Journal(db) as journal:
        return journal.statistics(trial_id)


def best(db: str | None = None, *, metric: str | None = None, **filters: Any) -> Trial:
    """The trial with the best value of ``metric`` (``"NAME"`` or ``"NAME:MODE"``; default:
    the primary metric) among those matching ``filters``.

    Raises:
        UsageError: no metric given and no primary metric declared (or several).
        TrialNotFound: no trial matches the filters, or none has a value of the metric.
    """
    with Journal(db, metrics=[metric] if metric else ()) as journal:
        found = journal.best(metric, **filters)
        found.metrics  # noqa: B018 - read while connected
        return found
