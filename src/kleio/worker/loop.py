"""The worker's loop: reserve the oldest runnable trial, run it, and again, until told to stop.

See :mod:`kleio.worker` for the rules (exactly once whatever the number of workers; signals;
skipped trials).
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
from kleio.reservation import hostname
from kleio.storage.base import Store
from kleio.trial import short_id
from kleio.worker.candidates import find_candidates
from kleio.worker.results import INTERRUPTS, TrialRun, WorkerResult, run_status

if TYPE_CHECKING:
    from kleio.config import Config

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


#: The default :data:`Execute`: one execution of a reserved trial with the Runner.
run_with_runner: Execute = execute


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

    def __init__(
        self,
        store: Store,
        config: Config,
        options: WorkerOptions,
        *,
        execute: Execute | None = None,
        handle_signals: bool = True,
        cwd: str | None = None,
        log: TextIO | None = None,
    ) -> None:
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
                self._say(
                    f"nothing to run; waiting up to {options.idle_timeout:g} s for new trials"
                )
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
                self.store,
                tags=self.options.tags,
                host=self.host,
                stale_after=self.stale_after,
                allow_broken=self.options.allow_broken,
                broken_before=started,
                exclude=self.excluded | busy,
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
                    reserved = reserve_trial(
                        self.store,
                        self.config,
                        doc["id"],
                        allow_broken=self.options.allow_broken,
                        host=self.host,
                    )
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
            self._skip(
                doc,
                "its command line held secrets that were not journalled; "
                "run it with 'kleio run' and its full command line",
            )
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
            self._say(
                f"{verb} {short_id(made.parent['id'])} -> {short_id(made.doc['id'])} "
                f"({made.reason})"
            )
        return prepared

    def _skip(self, doc: dict[str, Any], why: str) -> None:
        self._say(f"warning: skipping trial {short_id(doc['id'])}: {why}")
        self.skipped.append(doc["id"])

    def _execute(
        self, doc: dict[str, Any], reserved: Reserved, argv: list[str], cwd: str
    ) -> TrialRun:
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
        try:
            last = self.store.last_status(trial_id=doc["id"])
        except Exception:  # the journal is down: the Runner spooled; judge by the code
            last = None
        status, stopped_by = run_status(last.data if last is not None else None, code)
        self._say(f"trial {short} {status} (exit code {code}, {seconds:.1f} s)")
        return TrialRun(doc["id"], status, code, seconds, stopped_by)


def _project_of(cwd: str) -> str:
    from kleio.git import find_root, project_of

    return project_of(find_root(cwd), cwd)
