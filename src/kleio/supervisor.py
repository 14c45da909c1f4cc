"""Watch a started program to its end: the second half of :mod:`kleio.runner`.

:func:`supervise` is called once the program is forked (its start-up overlaps with importing
this module, the writer and the channel): it starts the writer and the I/O thread, waits for
signals (the child's end, a resize, one to forward, a heartbeat's timeout), then ends the
run in the order the runner's docstring gives.
"""

from __future__ import annotations

import _socket
import os
import queue
import signal
import time

from kleio import ledger
from kleio.channel import IOThread
from kleio.process import kill_quietly
from kleio.runner import (
    FORWARDED,
    INTERRUPTS,
    ChildProcess,
    Runner,
    _copy_winsize,
    exit_code,
    final_status,
)
from kleio.spool import Spool
from kleio.storage.base import encode, execution_of
from kleio.writer import Events, Heartbeat, Status, Stop, Writer, warn

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any

    from kleio.config import Config

SI_USER, SI_QUEUE = 0, -1
DUPLICATE_WINDOW = 0.2


def supervise(runner: Runner, child: ChildProcess, pid: int, listener: _socket.socket) -> int:
    """Journal the run of the started program ``pid`` to its end; return its exit code."""
    try:
        writer = Writer(
            runner.store,
            runner.trial_id,
            runner.next_seq,
            Spool(runner.spool_dir, runner.trial_id, runner.execution),
            runner.config.flush_interval,
            runner_info=runner.runner_info,
        )
    except BaseException:  # the program must not run unwatched
        kill_quietly(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    runner.writer = writer
    writer.ledger_dir = runner.ledger_dir
    started = runner.started_at
    writer.child_pid = pid
    writer.make_monitor = lambda: _checks(runner.config, writer, runner.trial_id)
    first_run = execution_of(writer.next_seq) == 1
    if first_run:
        writer.on_first_record = lambda: _before(writer, runner.trial_id)
    writer.start()
    reader = ledger.LedgerReader(runner.ledger_dir)
    io_thread = IOThread(writer, listener, child.outputs, runner.spool_dir, reader)
    status: int | None = None
    interrupted: int | None = None
    try:
        # 'running' first: the writer journals it before the program's first line (and
        # before the checks that line makes it load).
        writer.send(
            Status(
                "running",
                started,
                {"pid_child": pid, **runner.runner_info},
                {"heartbeat_at": started, "started_at": started},
            )
        )
        declared = _configured_metrics(runner.config) if first_run else None
        if declared is not None:
            writer.send(Events("metrics", started, [encode(declared)]))
        io_thread.start()
        status, interrupted = _wait(writer, child, pid, runner)
    finally:
        # The order of the module docstring, whatever happened above.
        io_thread.child_ended()
        if io_thread.ident is not None:
            io_thread.join()
        io_thread.close()
        for master in child.outputs:
            try:
                os.close(master)
            except OSError:
                pass
        if status is None:  # _wait raised: leave no program and no writer behind
            kill_quietly(pid, signal.SIGKILL)
            writer.send(Stop())
            writer.join()
    code = exit_code(status)
    ended = time.time()
    final = final_status(
        code, interrupted=interrupted, stop_requested=writer.stop_request is not None
    )
    # ``stopped_by`` in the journal: the signal another process (a person, a scheduler)
    # sent to stop the run, as opposed to the program dying of a signal on its own.
    data: dict[str, Any] = {"exit_code": code}
    if interrupted is not None:
        data["stopped_by"] = int(interrupted)
    if writer.stop_request is not None:
        data["stop_requested"] = writer.stop_request
    writer.send(Status(final, ended, data, {"ended_at": ended, "exit_code": code}))
    writer.send(Stop())
    writer.join()
    if not writer.finish():
        warn(
            f"the journal is still unavailable; {writer.spool.path} holds this run's "
            "last events: run 'kleio sync' when the journal is back"
        )
    ledger.finish(
        runner.ledger_dir, reader, complete=writer.durable and "errors" not in writer.problems
    )
    if not writer.durable:
        warn(
            f"some of this run's records are not journalled yet; they wait in "
            f"{runner.ledger_dir}: run 'kleio sync' once the journal or the disk is back"
        )
    return code


def _wait(writer: Writer, child: ChildProcess, pid: int, runner: Runner) -> tuple[int, int | None]:
    """Wait for the child, forwarding signals and beating; return (status, interrupt)."""
    waiter = _Waiter(writer, child, pid, runner.config, runner.runner_info)
    while True:
        info = signal.sigtimedwait(runner.waited, waiter.timeout())
        if info is None:
            waiter.beat()
            continue
        status = waiter.on_signal(info)
        if status is not None:
            return status, waiter.interrupted


class _Waiter:
    """The runner's main loop between two signals: heartbeats, the lease, the stop grace,
    and what each signal means (the child's end, a resize, one to forward)."""

    def __init__(
        self,
        writer: Writer,
        child: ChildProcess,
        pid: int,
        config: Config,
        runner_info: dict[str, Any],
    ) -> None:
        self.writer, self.child, self.pid = writer, child, pid
        self.interval = config.heartbeat_interval
        self.grace = config.stop_grace
        # The lease (docs/reliability.rst, "Leases"): with no heartbeat confirmed for this
        # long, the program is paused; other hosts take over only after stale_after.
        self.lease = max(config.stale_after / 2, 1.5 * self.interval)
        # The reservation's heartbeat stamp was taken after runner_info's "since".
        since = float(runner_info.get("since") or time.time())
        writer.renewed = time.monotonic() - max(0.0, time.time() - since)
        self.killed = False
        self.interrupted: int | None = None
        self.last_forwarded: dict[tuple[int, int], float] = {}
        self.next_beat = time.monotonic() + self.interval

    def timeout(self) -> float:
        """Act on what is due now (SIGKILL after the grace, the fence); seconds to wait."""
        writer, now = self.writer, time.monotonic()
        wake = self.next_beat
        if writer.term_sent_at is not None and not self.killed:
            # Asked to stop (kleio stop, a takeover) and still running after the grace: a
            # program that ignores SIGTERM is killed.
            if now >= writer.term_sent_at + self.grace:
                warn(f"the program ignored SIGTERM for {self.grace:g} s; killing it")
                kill_quietly(self.pid, signal.SIGKILL)
                self.killed = True
            else:
                wake = min(wake, writer.term_sent_at + self.grace)
        if not writer.fenced and writer.displaced is None:
            fence_at = writer.renewed + self.lease
            if now >= fence_at:
                writer.fence(self.lease, self.child.own_group)
            else:
                wake = min(wake, fence_at)
        return max(0.0, wake - now)

    def beat(self) -> None:
        """A heartbeat, when one is due."""
        if time.monotonic() < self.next_beat:
            return
        # Never block the signal loop on a journal that is slow: a heartbeat that does not
        # fit in the queue is skipped, the next one will do.
        try:
            self.writer.queue.put_nowait(Heartbeat(time.time(), time.monotonic()))
        except queue.Full:
            pass
        self.next_beat = time.monotonic() + self.interval

    def on_signal(self, info: Any) -> int | None:
        """Act on one signal; the child's wait status once it has ended, else None."""
        signo, pid, child = info.si_signo, self.pid, self.child
        if signo == signal.SIGCHLD:
            done, wait_status = os.waitpid(pid, os.WNOHANG)
            return wait_status if done else None
        if signo == signal.SIGWINCH:
            for master in child.ptys:
                _copy_winsize(child.outputs[master][1], master)
            kill_quietly(pid, signo)
        elif signo in FORWARDED:
            self._forward(info)
        elif os.environ.get("KLEIO_DEBUG"):
            # After SIGSTOP/SIGCONT, CPython's sigtimedwait can return a struct of garbage
            # (seen on 3.11): never act on a signal we did not ask for.
            warn(f"ignored an unexpected wake-up: {info}")
        return None

    def _forward(self, info: Any) -> None:
        signo = info.si_signo
        if signo in INTERRUPTS:
            self.interrupted = signo
        # `timeout` and some schedulers signal both the runner and its process group: the
        # runner gets the same signal twice from one sender within microseconds. Forward it
        # once.
        now = time.monotonic()
        key = (signo, info.si_pid)
        duplicate = now - self.last_forwarded.get(key, -1.0) < DUPLICATE_WINDOW
        self.last_forwarded[key] = now
        # Sharing the terminal's process group, the child already got a Ctrl-C: then
        # forward only what another process sent to the runner itself.
        if not duplicate and (
            self.child.own_group or info.si_code in (SI_USER, SI_QUEUE) or info.si_pid
        ):
            kill_quietly(self.pid, signo)


def _configured_metrics(config: Config) -> dict[str, Any] | None:
    """The ``metrics:`` of ``kleio.yaml`` as a ``metrics`` event's data (journalled at the
    trial's first run, before anything the program declares, which then wins), or None."""
    setting = config.metrics
    if not setting:
        return None
    modes = {str(name): mode for name, mode in setting.items() if name != "primary"}
    primary = setting.get("primary")
    return {"metrics": modes, "primary": str(primary) if primary else None, "source": "kleio.yaml"}


def _checks(config: Config, writer: Writer, trial_id: str) -> Any:
    """The run's live checks (:mod:`kleio.checks.live`), made once the program has started:
    importing them never delays it. Checks that cannot start never stop the run."""
    try:
        from kleio.checks.live import attach

        return attach(writer, config, trial_id)
    except Exception as error:
        warn(f"the checks are off for this run: {error}")
        return None


def _before(writer: Writer, trial_id: str) -> None:
    """The warnings of :mod:`kleio.checks.before` (what would make the trial not
    reproducible), on a trial's first run, once its program logs something: told, never a
    refusal; a program that only prints (``kleio python -c 'print(1)'``) is not told."""
    try:
        from kleio.checks.before import warnings

        for message in warnings(writer.store.get_trial(trial_id=trial_id) or {}):
            warn(message)
    except Exception:  # a warning that cannot be made must not stop the run
        pass


__all__ = ["supervise"]
