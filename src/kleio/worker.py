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

This module is the Python API under ``kleio worker``; it parses no arguments.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from kleio.errors import CannotExecute, CommandNotFound, NotReservable, TrialBusy, TrialNotFound
from kleio.launch import Prepared, Reserved, execute, failover_message, reserve_trial
from kleio.reservation import HELD, RESERVABLE, holder_alive, hostname
from kleio.storage.base import Store
from kleio.trial import short_id

if TYPE_CHECKING:
    from kleio.config import Config

INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

#: How many candidates one store query returns (beyond those this worker already excludes).
BATCH = 16

#: ``execute(store, config, doc, reserved, argv, cwd) -> exit code``.
Execute = Callable[[Store, Any, dict[str, Any], Reserved, list[str], str], int]


@dataclass
class WorkerOptions:
    """What a worker runs and when it stops.

    Args:
        tags: run only trials carrying every one of these tags.
        max_trials: stop after running this many trials (None: no limit).
        idle_timeout: stop after this many seconds with nothing to run (0: at once).
        allow_broken: also re-run trials that were broken when the worker started.
        poll_interval: seconds between two looks at the journal while idle.
        allow_changes: kinds of change (``code``, ``env``) between a trial's snapshot and
            the worker's checkout that branch the trial instead of skipping it.
    """

    tags: list[str] = field(default_factory=list)
    max_trials: int | None = None
    idle_timeout: float = 0.0
    allow_broken: bool = False
    poll_interval: float = 0.5
    allow_changes: set[str] = field(default_factory=set)


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


#: The default :data:`Execute`: one execution of a reserved trial with the Runner.
run_with_runner: Execute = execute


def find_candidates(
    store: Store,
    *,
    tags: list[str],
    host: str,
    stale_after: float,
    allow_broken: bool = False,
    broken_before: float = 0.0,
    exclude: set[str] | frozenset[str] = frozenset(),
    limit: int = BATCH,
) -> list[dict[str, Any]]:
    """Return up to ``limit`` trials a worker may try to reserve, oldest first.

    Filters, sort and limit are pushed into the store's query. Held trials (``reserved``,
    ``running``) are few (at most one per live runner) and are kept only when their runner
    is dead. ``exclude`` holds ids this worker will not run; broken trials are kept only if
    they broke before ``broken_before``.
    """
    statuses = list(RESERVABLE) + (["broken"] if allow_broken else [])
    tag_filter = list(tags) or None
    # Ask for enough rows that excluded ones cannot hide the next runnable trial.
    docs = store.find_trials(statuses=statuses, tags=tag_filter, sort="created_at",
                             limit=limit + len(exclude))
    docs += [
        doc
        for doc in store.find_trials(statuses=list(HELD), tags=tag_filter, sort="created_at")
        if not holder_alive(doc.get("runner"), doc.get("heartbeat_at"), host=host,
                            stale_after=stale_after)
    ]
    kept = [
        doc
        for doc in docs
        if doc["id"] not in exclude
        and (doc.get("status") != "broken" or (doc.get("status_at") or 0.0) < broken_before)
    ]
    kept.sort(key=lambda doc: (doc.get("created_at") or 0.0, doc["id"]))
    return kept[:limit]


class Worker:
    """Run reservable trials until told to stop. See the module docstring.

    Args:
        store: the journal (used by this worker's thread only).
        config: the effective configuration (host name, stale threshold, runner settings).
        options: what to run and when to stop.
        execute: runs one reserved trial and returns its exit code (the Runner by default;
            tests substitute it to run workers as threads).
        handle_signals: block SIGINT/SIGTERM/SIGHUP and stop on them (main thread only).
        cwd: the checkout trials are run in when it holds their project (default: the
            current directory); otherwise a trial runs in its recorded root.
        log: where the worker's own one-line messages go.
    """

    def __init__(self, store: Store, config: Config, options: WorkerOptions, *,
                 execute: Execute | None = None, handle_signals: bool = True,
                 cwd: str | None = None, log: TextIO | None = None) -> None:
        self.store = store
        self.config = config
        self.options = options
        self.execute = execute or run_with_runner
        self.handle_signals = handle_signals
        self.cwd = os.path.abspath(cwd or os.getcwd())
        self.log = log
        self.host = hostname(config.hostname)
        self.stale_after = config.stale_after
        self.excluded: set[str] = set()
        #: ids of the trials skipped (changed, secrets, missing program), in order.
        self.skipped: list[str] = []
        self._stop = threading.Event()
        self._signal: int | None = None
        self._project = _project_of(self.cwd)

    # -- control ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to stop before its next trial (thread-safe)."""
        self._stop.set()

    def _say(self, message: str) -> None:
        out = self.log or sys.stderr
        try:
            out.write(f"kleio worker: {message}\n")
            out.flush()
        except (OSError, ValueError):
            pass

    def _interrupted(self, wait: float = 0.0) -> bool:
        """Tell whether the worker must stop, waiting up to ``wait`` seconds for a reason."""
        if self._stop.is_set():
            return True
        if self.handle_signals:
            info = signal.sigtimedwait(INTERRUPTS, wait)
            if info is not None:
                self._signal = info.si_signo
                self._stop.set()
                return True
            return False
        return self._stop.wait(wait) if wait > 0 else False

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> WorkerResult:
        """Run trials until a stop condition; return what was run and why it stopped."""
        old_mask = None
        if self.handle_signals:
            old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
        try:
            return self._loop()
        finally:
            if old_mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    def _loop(self) -> WorkerResult:
        result = WorkerResult(skipped=self.skipped)
        started = time.time()
        idle_since = time.monotonic()
        waiting = False
        options = self.options
        while True:
            if self._interrupted():
                result.stopped, result.signal = "interrupted", self._signal
                return result
            if options.max_trials is not None and len(result.runs) >= options.max_trials:
                result.stopped = "max-trials"
                return result
            ran = self._run_next(started)
            if ran is not None:
                result.runs.append(ran)
                idle_since = time.monotonic()
                waiting = False
                if ran.stopped_by is not None:  # the worker was asked to stop mid-trial
                    result.stopped = "interrupted"
                    result.signal = self._signal or ran.stopped_by
                    return result
                continue
            remaining = options.idle_timeout - (time.monotonic() - idle_since)
            if remaining <= 0:
                result.stopped = "idle"
                return result
            if not waiting:
                waiting = True
                self._say(f"nothing to run; waiting up to {options.idle_timeout:g} s for new "
                          "trials")
            if self._interrupted(min(options.poll_interval, remaining)):
                result.stopped, result.signal = "interrupted", self._signal
                return result

    def _run_next(self, started: float) -> TrialRun | None:
        """Reserve and run the oldest runnable trial; None when there is none."""
        # Trials found busy in this look are not asked for again until the next one, so a
        # journal whose cached status lags its events cannot make the worker spin.
        busy: set[str] = set()
        while True:
            candidates = find_candidates(
                self.store, tags=self.options.tags, host=self.host,
                stale_after=self.stale_after, allow_broken=self.options.allow_broken,
                broken_before=started, exclude=self.excluded | busy,
            )
            if not candidates:
                return None
            for doc in candidates:
                original = doc["id"]
                prepared = self._prepare(doc)
                if prepared is None:
                    self.excluded.add(original)
                    continue
                doc, argv, cwd = prepared.doc, prepared.argv, prepared.cwd
                if doc["id"] != original:
                    # Branched for a change: the parent is not looked at again this session
                    # (its branch is run below, or was already by another worker).
                    self.excluded.add(original)
                try:
                    reserved = reserve_trial(self.store, self.config, doc["id"],
                                             allow_broken=self.options.allow_broken,
                                             host=self.host)
                except TrialBusy:
                    # Another worker was faster (or the holder is alive after all).
                    busy.add(doc["id"])
                    continue
                except (NotReservable, TrialNotFound):
                    # Another worker ran it to its end meanwhile.
                    self.excluded.add(doc["id"])
                    continue
                self.excluded.add(doc["id"])
                return self._execute(doc, reserved, argv, cwd)
            # Every candidate was taken by others meanwhile: look again.

    def _prepare(self, doc: dict[str, Any]) -> Prepared | None:
        """The trial to run (the branch, for an allowed change), or None to skip it.

        Like ``kleio run``, a worker never runs a trial with other code or another
        environment than its snapshot: such a trial is skipped (with the list of changes),
        or branched when the worker allows that kind of change (the branch is run instead).
        """
        from kleio.errors import ChangeRefused, UsageError
        from kleio.launch import gate, prepare_recorded
        from kleio.trial import check_executable, execution_dir

        short = short_id(doc["id"])
        if doc.get("redacted"):
            self._skip(doc, "its command line held secrets that were not journalled; "
                            "run it with 'kleio run' and its full command line")
            return None
        base = self.cwd if self._project == doc.get("project") else (doc.get("root") or self.cwd)
        try:
            check_executable(list(doc.get("argv") or []), execution_dir(doc, base))
            prepared = prepare_recorded(self.store, self.config, doc, base)
            gate(self.store, prepared, allowed=self.options.allow_changes)
        except (CommandNotFound, CannotExecute, UsageError) as error:
            self._skip(doc, str(error))
            return None
        except ChangeRefused as error:
            self._say(f"what changed since trial {short} was created:")
            for kind in ("code", "env"):
                for line in error.changes.get(kind, []):
                    self._say(f"  {kind}: {line}")
            hint = f"run 'kleio worker {error.flag}' to branch such trials and run the branches"
            self._skip(doc, f"{error.message}; {hint}")
            return None
        for made in prepared.branched:
            verb = "branched" if made.new else "resuming existing branch"
            self._say(f"{verb} {short_id(made.parent['id'])} -> {short_id(made.doc['id'])} "
                      f"({made.reason})")
        return prepared

    def _skip(self, doc: dict[str, Any], why: str) -> None:
        self._say(f"warning: skipping trial {short_id(doc['id'])}: {why}")
        self.skipped.append(doc["id"])

    def _execute(self, doc: dict[str, Any], reserved: Reserved, argv: list[str],
                 cwd: str) -> TrialRun:
        short = short_id(doc["id"])
        if reserved.failover_of:
            self._say(failover_message(doc["id"], reserved.failover_of))
        self._say(f"running trial {short}: {' '.join(argv)}")
        began = time.monotonic()
        try:
            code = self.execute(self.store, self.config, doc, reserved, argv, cwd)
        except CannotExecute as error:
            # Journalled broken (126) by the runner; the other trials still run.
            self._say(f"warning: trial {short}: {error}")
            code = 126
        seconds = time.monotonic() - began
        status, stopped_by = self._final_status(doc["id"], code)
        self._say(f"trial {short} {status} (exit code {code}, {seconds:.1f} s)")
        return TrialRun(doc["id"], status, code, seconds, stopped_by)

    def _final_status(self, trial_id: str, code: int) -> tuple[str, int | None]:
        try:
            last = self.store.last_status(trial_id=trial_id)
        except Exception:  # the journal is down: the Runner spooled; judge by the code
            last = None
        if last is not None and last.data.get("status") in ("completed", "broken",
                                                           "interrupted"):
            return str(last.data["status"]), last.data.get("stopped_by")
        signo = _signal_of(code)
        if signo is not None:
            return "interrupted", signo
        return ("completed" if code == 0 else "broken"), None


def _signal_of(code: int) -> int | None:
    return code - 128 if code - 128 in INTERRUPTS else None


def _project_of(cwd: str) -> str:
    from kleio.git import find_root, project_of

    return project_of(find_root(cwd), cwd)


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


__all__ = ["TrialRun", "Worker", "WorkerOptions", "WorkerResult", "find_candidates",
           "run_with_runner", "summary"]
