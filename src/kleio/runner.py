"""The runner: run a command as a child, tee and journal its output, serve its client.

This module starts the program; :mod:`kleio.supervisor` watches it. The split is for speed:
the program is forked before the supervisor's modules (threads, the writer, the channel)
are imported, so that importing them overlaps with the program's own start-up.

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

import _signal as signal  # signal.py wraps it in enums: milliseconds of imports per run
import _socket
import os
import sys
import time

from kleio import ledger
from kleio.private import channel_path
from kleio.process import kill_quietly
from kleio.storage.base import Store, encode

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any, NoReturn

    from kleio.config import Config
    from kleio.process import Started

FORWARDED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
WAITED = set(FORWARDED) | {signal.SIGCHLD, signal.SIGWINCH}


def waited_signals() -> frozenset[int]:
    """:data:`WAITED` but the signals kleio was started with ignored (``nohup``, ``cmd &`` in
    a script): blocked, Linux would queue them for ``sigtimedwait`` instead of discarding
    them, and a run whose program never got the signal would end 'interrupted'. The program
    inherits them ignored, as it would without kleio."""
    return frozenset(
        signo
        for signo in WAITED
        if signo in (signal.SIGCHLD, signal.SIGWINCH) or signal.getsignal(signo) != signal.SIG_IGN
    )


def exit_code(status: int) -> int:
    """The shell's exit code of a wait status: ``128 + N`` for a death by signal N."""
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

    def start(self) -> Started:
        """Fork the program (:func:`kleio.process.start`); ``confirm()`` the result to
        know that it started."""
        from kleio.process import start

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
            return start(
                self.argv, cwd=self.cwd, env=self.env, stdout=out, stderr=err, before_exec=setup
            )
        finally:
            os.close(out)
            os.close(err)


def _prctl() -> Any:
    """``prctl(2)`` of the C library, to call in the child between fork and exec.

    Through :mod:`_ctypes`, the C half of :mod:`ctypes`: importing :mod:`ctypes` itself
    costs about as much as a tenth of a bare interpreter start, on every run.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import _ctypes

        class _Int(_ctypes._SimpleCData):  # ctypes.c_int
            _type_ = "i"

        class _Function(_ctypes.CFuncPtr):  # what ctypes.CDLL makes of a function
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = _Int

        class _Library:
            _handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]

        return _Function(("prctl", _Library()))  # type: ignore[arg-type]
    except (ImportError, OSError, AttributeError, TypeError):
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

    def __init__(
        self,
        *,
        store: Store,
        trial_id: str,
        execution: int,
        next_seq: int,
        argv: list[str],
        cwd: str,
        config: Config,
        runner_info: dict[str, Any],
    ) -> None:
        self.store = store
        self.trial_id = trial_id
        self.argv = argv
        self.cwd = cwd
        self.config = config
        self.runner_info = runner_info
        self.spool_dir = config.spool_dir
        self.execution = execution
        self.next_seq = next_seq
        self.ledger_dir = ""
        #: When the program was forked, and the writer journalling it (once it is).
        self.started_at = 0.0
        self.writer: Any = None
        #: The signals the run waits for (:func:`waited_signals`).
        self.waited = waited_signals()

    def run(self) -> int:
        """Run the child to its end; return the exit code kleio must exit with."""
        try:
            path = channel_path(self.trial_id)
            self.ledger_dir = ledger.create_execution_dir(
                self.spool_dir, self.trial_id, self.execution, self.store.uri
            )
        except Exception as error:
            # The trial was reserved: give it back (resumable) before telling why.
            self._abandon("interrupted", None, str(error))
            raise
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
        env[ledger.MAX_STATISTIC_ENV] = str(self.config.max_statistic_size)
        # Python block-buffers a pipe: its output would reach the journal (and `tail -f`)
        # late and out of step with its statistics. Line by line, unless the user chose.
        env.setdefault("PYTHONUNBUFFERED", "1")
        child = ChildProcess(self.argv, self.cwd, env)
        # Block the signals we wait for *before* spawning, so none is lost; the child
        # unblocks them in its pre-exec hook.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, self.waited)
        try:
            return self._start(child, listener)
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
                trial_id=self.trial_id, events=[(self.next_seq, "status", now, encode(data))]
            )
            self.store.update_trial(trial_id=self.trial_id, fields=fields)
        except Exception as failure:
            from kleio.writer import warn

            warn(f"could not journal that the run did not start: {failure}")

    def _start(self, child: ChildProcess, listener: _socket.socket) -> int:
        try:
            started = child.start()
            self.started_at = time.time()
        except OSError as error:  # fork failed (no memory, too many processes)
            self._cannot_execute(error)
        # While the program starts, import what watches it; then wait for its exec.
        try:
            from kleio.supervisor import supervise
        except BaseException:
            kill_quietly(started.pid, signal.SIGKILL)
            os.waitpid(started.pid, 0)
            raise
        try:
            started.confirm()
        except OSError as error:
            # ENOEXEC (a script without '#!'), EACCES...: the trial must not stay reserved.
            self._cannot_execute(error)
        return supervise(self, child, started.pid, listener)

    def _cannot_execute(self, error: OSError) -> NoReturn:
        self._abandon("broken", 126, str(error))
        ledger.finish(self.ledger_dir, None, complete=True)
        from kleio.errors import CannotExecute

        raise CannotExecute(
            f"cannot execute {self.argv[0]}: {error.strerror or error}",
            exec_hint(error, self.argv, self.cwd),
        ) from None


def exec_hint(error: OSError, argv: list[str], cwd: str) -> str:
    """What to do when the program could not be executed, by the reason the system gave."""
    import errno

    if error.errno == errno.E2BIG:
        return (
            "its arguments and environment are longer than the system accepts: pass long "
            "values in a file, or unset large environment variables"
        )
    if error.errno == errno.ENOENT:  # the file exists (checked before): its interpreter not
        interpreter = _interpreter_of(os.path.join(cwd, argv[0]) if os.sep in argv[0] else argv[0])
        if interpreter:
            return (
                f"its '#!' line names {interpreter}, which does not exist here: install it, "
                "or fix the line (e.g. '#!/usr/bin/env python3')"
            )
    if error.errno == errno.EACCES:
        return (
            f"make it executable ('chmod +x {argv[0]}'), or run it through its "
            "interpreter (e.g. 'kleio bash script.sh')"
        )
    return (
        "give a script a '#!' line, or run it through its interpreter (e.g. 'kleio bash script.sh')"
    )


def _interpreter_of(program: str) -> str | None:
    """The interpreter a script's ``#!`` line names (None: no such line, or unreadable)."""
    from kleio.trial import which

    path = program if os.sep in program else which(program)
    try:
        with open(path or program, "rb") as handle:
            first = handle.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    return words[0] if words else None


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


def run_reserved(
    *,
    store: Store,
    config: Config,
    trial_id: str,
    reservation: Any,
    runner_info: dict[str, Any],
    argv: list[str],
    cwd: str,
) -> int:
    """Run one execution of a trial reserved by :func:`kleio.reservation.reserve`.

    First, what earlier runs of the trial left on this host (a runner killed, the journal
    down at its end) is journalled: it belongs before this run's events.
    """
    try:
        ledger.recover_trial(store, config.spool_dir, trial_id)
    except Exception as error:
        from kleio.writer import warn

        warn(
            f"could not journal what an earlier run of this trial left on this host "
            f"({error}); 'kleio sync' will try again"
        )
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


__all__ = ["ChildProcess", "Runner", "exit_code", "final_status", "kill_quietly", "run_reserved"]
