"""What a worker did: the outcome of each trial it ran, and why it stopped."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

#: The signals that interrupt a worker (and, forwarded, the trial it runs).
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class TrialRun:
    """The outcome of one trial run by a worker."""

    trial_id: str
    status: str
    exit_code: int
    seconds: float
    stopped_by: int | None = None


@dataclass
class WorkerResult:
    """What a worker did and why it stopped.

    ``stopped`` is ``"max-trials"``, ``"idle"`` or ``"interrupted"``; ``signal`` is the
    signal that interrupted it when known.
    """

    runs: list[TrialRun] = field(default_factory=list)
    stopped: str = "idle"
    signal: int | None = None
    skipped: list[str] = field(default_factory=list)


def run_status(last: dict[str, Any] | None, code: int) -> tuple[str, int | None]:
    """``(status, stopping signal)`` of a trial run: its journalled final status, else the
    exit code's reading (the journal was down and the Runner spooled the status).

    ``last`` is the data of the trial's last status event, or None when it cannot be read.
    """
    if last is not None and last.get("status") in ("completed", "broken", "interrupted"):
        return str(last["status"]), last.get("stopped_by")
    signo = _signal_of(code)
    if signo is not None:
        return "interrupted", signo
    return ("completed" if code == 0 else "broken"), None


def _signal_of(code: int) -> int | None:
    return code - 128 if code - 128 in INTERRUPTS else None


def summary(result: WorkerResult) -> str:
    """One line saying what a worker did and why it stopped."""
    counts: dict[str, int] = {}
    for run in result.runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    ran = f"ran {len(result.runs)} trial{'s' if len(result.runs) != 1 else ''}"
    if detail:
        ran += f" ({detail})"
    if result.skipped:
        ran += f"; skipped {len(result.skipped)} (listed above)"
    reason = {
        "max-trials": "reached --max-trials",
        "idle": "nothing left to run",
        "interrupted": "interrupted",
    }[result.stopped]
    return f"{ran}; stopped: {reason}"
