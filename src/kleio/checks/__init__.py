"""Checks: catch a run that is going wrong while it runs (and after, with ``kleio check``).

A **check** is a small class that receives what a trial produces, one item at a time, and
returns **findings**:

* :meth:`Check.statistic` gets each logged statistic (a :class:`Statistic`);
* :meth:`Check.line` gets each line of output (a :class:`Line`);
* :meth:`Check.tick` gets the time, now and then, also while nothing arrives (live: at
  each heartbeat of the runner; replayed: at the time of each journalled event);
* :meth:`Check.end` gets the end of the run (the final status).

Each returns ``None`` or an iterable of :class:`Finding` (build them with
:meth:`Check.finding`). The same classes run live, in the runner, and over a finished
trial's journal (``kleio check ID``). A check keeps whatever state it needs on ``self``: one
instance lives for one execution of a trial.

Checks are registered through the entry-point group ``kleio.checks`` (see
:mod:`kleio.checks.registry`); kleio's own are registered the same way. A check that raises
is disabled for the rest of that run with one warning and counted; the runner goes on.

This module imports nothing heavy: the runner imports it after the program has started.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Optional

#: Severities, worst first. ``kleio check`` exits 1 when a finding is an ``error``.
SEVERITIES = ("error", "warning", "info")

#: The exit code of ``kleio check`` when at least one finding is an error (like a linter).
EXIT_FINDINGS = 1


class Statistic(NamedTuple):
    """One logged statistic, as a check sees it.

    Attributes:
        seq: the journal sequence number of its event.
        time: when the runner received it (seconds since the epoch).
        values: the keys and values the program logged.
        position: how many statistics came before it in this execution (0 for the first), those
            a live runner did not hand to the checks included (see docs/checks.rst, "Cost").
    """

    seq: int
    time: float
    values: Mapping[str, Any]
    position: int


class Line(NamedTuple):
    """One line of the program's output (``stream`` is ``"stdout"`` or ``"stderr"``)."""

    seq: int
    time: float
    stream: str
    text: str


class Finding(NamedTuple):
    """What a check found.

    Attributes:
        name: the check's name (``nan``, ``diverged``...): also what ``stop_on`` names.
        severity: one of :data:`SEVERITIES`.
        message: one line for people.
        seq: the sequence number of the event that triggered it (None for a tick or the end).
        key: what the finding is about (a metric name...); a check reports one key once per
            execution, so a NaN in ``loss`` at every step is told once.
    """

    name: str
    severity: str
    message: str
    seq: int | None = None
    key: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The data of the finding's ``check`` journal event."""
        data: dict[str, Any] = {
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
            "trigger": self.seq,
        }
        if self.key is not None:
            data["key"] = self.key
        return data


Findings = Optional[Iterable[Finding]]  # noqa: UP007


class Context:
    """What every check of one run shares: metric modes and the primary metric.

    Modes come from the program's declarations and ``metrics:`` in ``kleio.yaml``, else from
    the name rule of :mod:`kleio.metrics` (``val_loss`` is ``min``, ``acc`` is ``max``,
    ``epoch`` is no metric).

    Args:
        declarations: a :class:`kleio.metrics.Declarations` (None: the name rule only).
    """

    def __init__(self, declarations: Any = None) -> None:
        from kleio.metrics import Declarations

        self.declarations = declarations if declarations is not None else Declarations()
        self._modes: dict[str, str | None] = {}

    @property
    def primary(self) -> str | None:
        """The declared primary metric, or None."""
        primary = self.declarations.primary
        return str(primary) if primary else None

    def mode(self, name: str) -> str | None:
        """``"min"``, ``"max"`` or None (not a metric) for a statistic's name."""
        try:
            return self._modes[name]
        except KeyError:
            mode = self._modes[name] = self.declarations.mode(name)
            return mode

    def declare(self, declarations: Any) -> None:
        """Declarations that arrived during the run: they win over the earlier ones."""
        self.declarations = declarations.over(self.declarations)
        self._modes.clear()


class Check:
    """Base class of every check. Subclasses set the class attributes and override hooks.

    Class attributes:
        name: the check's name, lower case (``nan``); unique among installed checks.
        severity: the severity of its findings unless it says otherwise.
        description: one line for ``kleio check --list`` and the docs.
        defaults: its thresholds and their default values (numbers). ``kleio.yaml`` may
            change them (``checks: {NAME: {OPTION: VALUE}}``); unknown options are refused.

    The constructor gets the shared :class:`Context` and the thresholds (``defaults``
    updated with the configured values) as ``self.options``.
    """

    name: str = ""
    severity: str = "warning"
    description: str = ""
    defaults: Mapping[str, float] = {}

    def __init__(self, context: Context, options: Mapping[str, float]) -> None:
        self.context = context
        self.options = dict(options)

    def finding(
        self,
        message: str,
        seq: int | None = None,
        *,
        key: str | None = None,
        severity: str | None = None,
    ) -> Finding:
        """A finding of this check."""
        return Finding(self.name, severity or self.severity, message, seq, key)

    def statistic(self, stat: Statistic) -> Findings:  # noqa: ARG002 - a hook
        """Called for each statistic, in journal order."""
        return None

    def line(self, line: Line) -> Findings:  # noqa: ARG002 - a hook
        """Called for each line of output, in journal order."""
        return None

    def tick(self, now: float) -> Findings:  # noqa: ARG002 - a hook
        """Called now and then with the current time (also while nothing arrives)."""
        return None

    def end(self, status: str | None) -> Findings:  # noqa: ARG002 - a hook
        """Called once at the end of the run with its final status (None if unknown)."""
        return None


__all__ = [
    "EXIT_FINDINGS",
    "SEVERITIES",
    "Check",
    "Context",
    "Finding",
    "Findings",
    "Line",
    "Statistic",
]
