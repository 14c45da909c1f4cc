"""Workers: pull reservable trials from the journal and run them, one after the other.

``kleio save CMD`` registers trials; any number of workers, on any machines sharing the
journal, then run them. A worker repeatedly

1. asks the store for candidates, oldest first, filtered by tags in the query: trials whose
   status is reservable (``new``, ``interrupted``, ``suspended``, ``failover``, and ``broken``
   with ``allow_broken``), and held trials whose runner is dead (see
   :func:`kleio.reservation.holder_alive`);
2. tries to reserve them in order (:func:`kleio.reservation.reserve`, the compare-and-append
   of DESIGN §3): a trial another worker took meanwhile raises ``TrialBusy`` or
   ``NotReservable`` and the next candidate is tried, so every trial runs exactly once
   whatever the number of workers;
3. runs the reserved trial with the :class:`~kleio.runner.Runner`, with its recorded argv in
   its recorded directory, and goes back to 1.

It stops after ``max_trials`` runs, when nothing was reservable for ``idle_timeout`` seconds
(0: as soon as nothing is left), or when it is interrupted. SIGINT, SIGTERM and SIGHUP are
blocked in the worker's thread: during a run the Runner receives them and forwards them to
the trial (which ends ``interrupted``, resumable by any worker); between runs they are
noticed at the next check. Either way the worker then stops.

A worker never runs a trial twice in one session (a trial that keeps interrupting itself
does not loop), skips trials whose command line held secrets (they were not journalled) with
a warning, and, with ``allow_broken``, re-runs only trials that were already broken when it
started. Saved trials are run with the code and environment snapshots taken at save time:
no change detection applies, the worker runs whatever the checkout it starts in holds.

This package is the Python API under ``kleio worker``; it parses no arguments. One module a
concern: :mod:`kleio.worker.candidates` (the store query of step 1),
:mod:`kleio.worker.loop` (the worker and its options) and :mod:`kleio.worker.results` (what
it ran, how each run ended, the summary line).
"""

from __future__ import annotations

from kleio.worker.candidates import BATCH, find_candidates
from kleio.worker.loop import Execute, Worker, WorkerOptions, run_with_runner
from kleio.worker.results import INTERRUPTS, TrialRun, WorkerResult, run_status, summary

__all__ = [
    "BATCH",
    "INTERRUPTS",
    "Execute",
    "TrialRun",
    "Worker",
    "WorkerOptions",
    "WorkerResult",
    "find_candidates",
    "run_status",
    "run_with_runner",
    "summary",
]
