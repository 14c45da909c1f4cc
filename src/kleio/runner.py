"""The runner: run a command as a child, tee and journal its output, serve its client.

Three threads, one job each (the other two live in :mod:`kleio.channel` and
:mod:`kleio.writer`):

* the **main thread** spawns the child and waits for signals with ``sigtimedwait``: SIGCHLD
  ends the run, a signal sent by another process is forwarded, a timeout is a heartbeat;
* the **I/O thread** copies the child's stdout/stderr to the terminal as they come and cuts
  them into lines, tails the ledger files the program's processes append their statistics
  and artifacts to (:mod:`kleio.ledger`), and reads the clients' queries from the channel;
* the **writer thread** owns the store: it numbers events, writes them in batches, answers
  queries, and spools to a local file whenever the store fails, replaying it when it returns.

A storage failure never changes the child's exit code: the writer catches everything.

Shutdown order matters (a race here once crashed 2 % of short runs): the child is reaped,
then the I/O thread ends and is joined, then its wake pipe is closed, then the writer journals
the final status and is joined; only then may anyone close the store. Whatever fails on the
way, the ``finally`` clauses keep that order.
"""

from __future__ import annotations

import _socket
import os
import queue
import signal
import sys
import time

from kleio import ledger
from kleio.channel import IOThread, LineCutter, channel_path
from kleio.spool import Spool
from kleio.storage.base import Store, encode, execution_of
from kleio.writer import Heartbeat, Status, Stop, Writer, kill_quietly, warn

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2)
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
WAITED = set(FORWARDED) | {signal.SIGCHLD, signal.SIGWINCH}
SI_USER, SI_QUEUE = 0, -1
DUPLICATE_WINDOW = 0.2


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class ChildProcess:
    """Spawn the command with the right stdio, signal mask and parent-death signal."""

    def __init__(self, argv: list[str], cwd: str, env: dict[str, str]) -> None:
        self.argv, self.cwd, self.env = argv, cwd, env
        self.outputs: dict[int, tuple[str, int]] = {}
        self.ptys: list[int] = []
        # Without a terminal on stdin there is no job control to keep: the child gets its own
        # process group, so a signal sent to the runner's group (``timeout``, ``kill -PGID``)
        # reaches it once, through the runner, never twice.
        self.own_group = not os.isatty(0)

    def _stdio(self, fd: int, kind: str) -> int:
        if os.isatty(fd):
            master, slave = os.openpty()
            _copy_winsize(fd, master)
            self.ptys.append(master)
        else:
            master, slave = os.pipe()
        self.outputs[master] = (kind, fd)
        return slave

    def spawn(self) -> int:
        from kleio.process import spawn

        out = self._stdio(1, "stdout")
        err = self._stdio(2, "stderr")
        prctl = _prctl()
        parent = os.getpid()
        own_group = self.own_group

        def setup() -> None:
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            if own_group:
                os.setpgid(0, 0)
            if prctl is not None:
                prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: never run on unwatched
                if os.getppid() != parent:
                    os._exit(137)

        try:
            return spawn(self.argv, cwd=self.cwd, env=self.env, stdout=out, stderr=err,
                         before_exec=setup)
        finally:
            os.close(out)
            os.close(err)


def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _copy_winsize(src: int, dst: int) -> None:
    try:
        import fcntl
        import termios

        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


class Runner:
    """Run one execution of a reserved trial. See the module docstring."""

    def __init__(self, *, store: Store, trial_id: str, execution: int, next_seq: int,
                 argv: list[str], cwd: str, config: Any, runner_info: dict[str, Any]) -> None:
        self.store = store
        self.trial_id = trial_id
        self.argv = argv
        self.cwd = cwd
        self.config = config
        self.runner_info = runner_info
        spool_dir = str(config["spool_dir"])
        self.spool_dir = spool_dir
        self.execution = execution
        self.spool = Spool(spool_dir, trial_id, execution)
        self.writer = Writer(store, trial_id, next_seq, self.spool,
                             float(config["flush_interval"]), runner_info=runner_info)
        self.ledger_dir = ""

    def run(self) -> int:
        """Run the child to its end; return the exit code kleio must exit with."""
        try:
            path = channel_path(self.trial_id)
            self.ledger_dir = ledger.create_execution_dir(self.spool_dir, self.trial_id,
                                                          self.execution, self.store.uri)
        except Exception as error:
            # The trial was reserved: give it back (resumable) before telling why.
            self._abandon("interrupted", None, str(error))
            raise
        self.writer.ledger_dir = self.ledger_dir
        # _socket: the module socket.py wraps, whose import costs milliseconds of enums.
        listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        if os.path.exists(path):
            os.remove(path)
        listener.bind(path)
        os.chmod(path, 0o600)
        listener.listen(64)
        env = dict(os.environ)
        env["KLEIO_TRIAL_ID"] = self.trial_id
        env["KLEIO_CHANNEL"] = path
        env[ledger.LEDGER_ENV] = self.ledger_dir
        env[ledger.MAX_STATISTIC_ENV] = str(int(self.config["max_statistic_size"]))
        # Python block-buffers a pipe: its output would reach the journal (and `tail -f`)
        # late and out of step with its statistics. Line by line, unless the user chose.
        env.setdefault("PYTHONUNBUFFERED", "1")
        child = ChildProcess(self.argv, self.cwd, env)
        # Block the signals we wait for *before* spawning, so none is lost; the child
        # unblocks them in its pre-exec hook.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)
        try:
            return self._supervise(child, listener, path)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            listener.close()
            try:
                os.remove(path)
            except OSError:
                pass

    def _abandon(self, status: str, code: int | None, error: str) -> None:
        """End an execution that never started its program."""
        now = time.time()
        data: dict[str, Any] = {"status": status, "error": error}
        fields: dict[str, Any] = {"status": status, "status_at": now}
        if code is not None:
            data["exit_code"] = code
            fields.update(ended_at=now, exit_code=code)
        try:
            self.store.append_events(
                trial_id=self.trial_id,
                events=[(self.writer.next_seq, "status", now, encode(data))])
            self.store.update_trial(trial_id=self.trial_id, fields=fields)
        except Exception as failure:
            warn(f"could not journal that the run did not start: {failure}")

    def _supervise(self, child: ChildProcess, listener: _socket.socket, path: str) -> int:
        writer = self.writer
        try:
            pid = child.spawn()
        except OSError as error:
            # ENOEXEC (a script without '#!'), EACCES...: the trial must not stay reserved.
            self._abandon("broken", 126, str(error))
            ledger.finish(self.ledger_dir, None, complete=True)
            from kleio.errors import CannotExecute

            raise CannotExecute(
                f"cannot execute {self.argv[0]}: {error.strerror or error}",
                "give a script a '#!' line, or run it through its interpreter "
                "(e.g. 'kleio bash script.sh')",
            ) from None
        started = time.time()
        writer.child_pid = pid
        first_run = execution_of(writer.next_seq) == 1
        writer.make_monitor = lambda: _checks(self.config, writer, self.trial_id, first_run)
        writer.start()
        reader = ledger.LedgerReader(self.ledger_dir)
        io_thread = IOThread(writer, listener, child.outputs, self.spool_dir, reader)
        status: int | None = None
        interrupted: int | None = None
        try:
            # 'running' first: the writer journals it before the program's first line (and
            # before the checks that line makes it load).
            writer.send(Status("running", started, {"pid_child": pid, **self.runner_info},
                               {"heartbeat_at": started, "started_at": started}))
            io_thread.start()
            status, interrupted = self._wait(child, pid)
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
        code = _exit_code(status)
        ended = time.time()
        final = final_status(code, interrupted=interrupted,
                             stop_requested=writer.stop_request is not None)
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
            warn(f"the journal is still unavailable; {writer.spool.path} holds this run's "
                  "last events: run 'kleio sync' when the journal is back")
        ledger.finish(self.ledger_dir, reader,
                      complete=writer.durable and "errors" not in writer.problems)
        if not writer.durable:
            warn(f"some of this run's records are not journalled yet; they wait in "
                 f"{self.ledger_dir}: run 'kleio sync' once the journal or the disk is back")
        return code

    def _wait(self, child: ChildProcess, pid: int) -> tuple[int, int | None]:
        """Wait for the child, forwarding signals and beating; return (status, interrupt)."""
        waiter = _Waiter(self.writer, child, pid, self.config, self.runner_info)
        while True:
            info = signal.sigtimedwait(WAITED, waiter.timeout())
            if info is None:
                waiter.beat()
                continue
            status = waiter.on_signal(info)
            if status is not None:
                return status, waiter.interrupted


class _Waiter:
    """The runner's main loop between two signals: heartbeats, the lease, the stop grace,
    and what each signal means (the child's end, a resize, one to forward)."""

    def __init__(self, writer: Writer, child: ChildProcess, pid: int, config: Any,
                 runner_info: dict[str, Any]) -> None:
        self.writer, self.child, self.pid = writer, child, pid
        self.interval = float(config["heartbeat_interval"])
        self.grace = float(config["stop_grace"])
        # The lease (docs/reliability.rst, "Leases"): with no heartbeat confirmed for this
        # long, the program is paused; other hosts take over only after stale_after.
        self.lease = max(float(config["stale_after"]) / 2, 1.5 * self.interval)
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
        if not duplicate and (self.child.own_group or info.si_code in (SI_USER, SI_QUEUE)
                              or info.si_pid):
            kill_quietly(self.pid, signo)


def _checks(config: Any, writer: Writer, trial_id: str, first_run: bool) -> Any:
    """The run's live checks (:mod:`kleio.checks.live`), made once the program has started:
    importing them never delays it. Checks that cannot start never stop the run.

    On a trial's first run, the warnings of :mod:`kleio.checks.before` are told too (what
    would make it not reproducible): once per trial, never a refusal.
    """
    try:
        from kleio.checks.live import attach

        monitor = attach(writer, config, trial_id)
    except Exception as error:
        warn(f"the checks are off for this run: {error}")
        return None
    if first_run:
        try:
            from kleio.checks.before import warnings

            for message in warnings(writer.store.get_trial(trial_id=trial_id) or {}):
                warn(message)
        except Exception:  # a warning that cannot be made must not stop the run
            pass
    return monitor


def final_status(code: int, *, interrupted: int | None, stop_requested: bool) -> str:
    """The status a run ends with, from its exit code and how it was stopped."""
    # A program that exits cleanly after being asked to stop has not finished its work:
    # it stays resumable.
    if stop_requested:
        return "suspended"  # stopped by `kleio stop`: resumable, like an interruption
    if interrupted is not None or code - 128 in INTERRUPTS:
        return "interrupted"
    if code == 0:
        return "completed"
    return "broken"


def run_reserved(*, store: Store, config: Any, trial_id: str, reservation: Any,
                 runner_info: dict[str, Any], argv: list[str], cwd: str) -> int:
    """Run one execution of a trial reserved by :func:`kleio.reservation.reserve`.

    First, what earlier runs of the trial left on this host (a runner killed, the journal
    down at its end) is journalled: it belongs before this run's events.
    """
    try:
        ledger.recover_trial(store, str(config["spool_dir"]), trial_id)
    except Exception as error:
        warn(f"could not journal what an earlier run of this trial left on this host "
             f"({error}); 'kleio sync' will try again")
    return Runner(
        store=store,
        trial_id=trial_id,
        execution=reservation.execution,
        next_seq=reservation.next_seq,
        argv=argv,
        cwd=cwd,
        config=config,
        runner_info=runner_info,
    ).run()


__all__ = ["ChildProcess", "LineCutter", "Runner", "Writer", "channel_path", "final_status",
           "run_reserved"]
