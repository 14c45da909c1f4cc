"""Starting processes on the run path without :mod:`subprocess`.

Importing :mod:`subprocess` (with :mod:`selectors` and :mod:`locale`) costs as much work as
a tenth of a bare interpreter start, on every ``kleio run``, for two processes: one ``git
status`` and the program itself. Both are started here with the primitives :mod:`subprocess`
uses underneath:

* :func:`run` runs a short command to its end and captures its output
  (:func:`os.posix_spawnp`: no ``fork`` of a large process), with a timeout;
* :func:`spawn` starts the program with its outputs, signal mask, process group and a
  function run in the child before ``exec`` (``fork``, then ``exec``); an ``exec`` that fails
  raises :class:`OSError` in the parent, as :class:`subprocess.Popen` does.

Everything else in kleio (``kleio diff``, ``kleio checkout``, the debugger) keeps
:mod:`subprocess`.
"""

from __future__ import annotations

import _signal as signal  # signal.py wraps it in enums: milliseconds of imports per run
import os
import select
import time

#: Signals Python ignores at start-up and a program started by it must get back as they
#: were: with SIGPIPE ignored, ``yes | head -1`` in the program would never end.
RESTORED = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ", "SIGXFZ") if hasattr(signal, name)
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Callable


class Finished:
    """A command run to its end: ``returncode``, ``stdout`` and ``stderr`` (bytes), like
    :class:`subprocess.CompletedProcess`."""

    __slots__ = ("args", "returncode", "stderr", "stdout")

    def __init__(self, args: list[str], returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.args, self.returncode, self.stdout, self.stderr = args, returncode, stdout, stderr


def run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    timeout: float = 30.0,
) -> Finished:
    """Run ``argv`` (found on PATH) to its end; capture what it prints.

    Raises:
        OSError: it cannot be started.
        TimeoutError: it took longer than ``timeout`` seconds (it is killed).
    """
    return begin(argv, env=env, input=input).wait(timeout)


class Running:
    """A command started by :func:`begin`, its outputs not read yet."""

    __slots__ = ("_fds", "_input", "argv", "pid", "started")

    def __init__(self, argv: list[str], pid: int, fds: tuple[int, int, int], input: bytes) -> None:
        self.argv, self.pid, self._fds, self._input = argv, pid, fds, input
        self.started = time.monotonic()

    def kill(self) -> None:
        """Kill it and what it started (its process group), close its pipes, reap it."""
        _kill_group(self.pid)
        for fd in self._fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass

    def wait(self, timeout: float = 30.0) -> Finished:
        """Read its outputs to their end and reap it; ``timeout`` counts from its start.

        Raises:
            TimeoutError: it took longer than ``timeout`` seconds (it is killed).
        """
        out_r, err_r, in_w = self._fds
        left = timeout - (time.monotonic() - self.started)
        try:
            stdout, stderr = _communicate(out_r, err_r, in_w, self._input, left)
        except BaseException:  # _communicate closed the pipes
            _kill_group(self.pid)
            os.waitpid(self.pid, 0)
            raise
        _, status = os.waitpid(self.pid, 0)
        return Finished(self.argv, os.waitstatus_to_exitcode(status), stdout, stderr)


def begin(
    argv: list[str], *, env: dict[str, str] | None = None, input: bytes | None = None
) -> Running:
    """Start ``argv`` (found on PATH) with its outputs piped; :meth:`Running.wait` ends it.

    Raises:
        OSError: it cannot be started.
    """
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe() if input is not None else (-1, -1)
    actions: list[tuple[int | str, ...]] = [
        (os.POSIX_SPAWN_DUP2, out_w, 1),
        (os.POSIX_SPAWN_DUP2, err_w, 2),
    ]
    if input is not None:
        actions.append((os.POSIX_SPAWN_DUP2, in_r, 0))
    else:
        actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
    try:
        pid = os.posix_spawnp(
            argv[0],
            argv,
            os.environ if env is None else env,
            file_actions=actions,
            setsigdef=RESTORED,
            setpgroup=0,
        )
    except BaseException:
        for fd in (out_r, err_r, in_w):
            if fd >= 0:
                os.close(fd)
        raise
    finally:
        for fd in (out_w, err_w, in_r):
            if fd >= 0:
                os.close(fd)
    return Running(argv, pid, (out_r, err_r, in_w), input or b"")


def _communicate(
    out_r: int, err_r: int, in_w: int, data: bytes, timeout: float
) -> tuple[bytes, bytes]:
    """Write ``data`` to ``in_w`` and read both outputs to their end, within ``timeout``."""
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN)
    view = memoryview(data)
    in_w = _watch_input(poller, in_w, view)
    deadline = time.monotonic() + timeout
    open_fds = set(chunks) | ({in_w} if in_w >= 0 else set())
    try:
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer within {timeout:g} s")
            for fd, _ in poller.poll(left * 1000):
                if fd == in_w:
                    view = _write_some(in_w, view)
                    ended = not view
                else:
                    block = os.read(fd, 1 << 16)
                    chunks[fd].append(block)
                    ended = not block
                if ended:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    if fd == in_w:
                        os.close(in_w)
                        in_w = -1
    finally:
        for fd in (out_r, err_r, in_w):
            if fd >= 0:
                os.close(fd)
    return b"".join(chunks[out_r]), b"".join(chunks[err_r])


def _watch_input(poller: select.poll, in_w: int, view: memoryview) -> int:
    """Poll ``in_w`` for writing when there is something to write; else close it (the
    command reads an empty input). Returns the descriptor still open, or -1."""
    if in_w < 0:
        return in_w
    if not view:
        os.close(in_w)
        return -1
    os.set_blocking(in_w, False)
    poller.register(in_w, select.POLLOUT)
    return in_w


def _write_some(in_w: int, view: memoryview) -> memoryview:
    """Write what the pipe takes of ``view``; what is left (nothing once the reader left)."""
    try:
        return view[os.write(in_w, view[: 1 << 16]) :]
    except BrokenPipeError:
        return view[:0]


def _kill_group(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads (:func:`begin` makes one per command): what
    it started (a hook, a helper) must not outlive it."""
    try:
        os.killpg(pid, 9)
    except (ProcessLookupError, PermissionError):
        kill_quietly(pid, 9)


def kill_quietly(pid: int, signo: int) -> None:
    """Send ``signo`` to ``pid``, which may have ended already."""
    try:
        os.kill(pid, signo)
    except (ProcessLookupError, PermissionError):
        pass


def spawn(
    argv: list[str],
    *,
    cwd: str,
    env: dict[str, str],
    stdout: int,
    stderr: int,
    before_exec: Callable[[], None],
) -> int:
    """Start ``argv`` (found on the PATH of ``env``) in ``cwd``; return its pid.

    In the child, ``stdout`` and ``stderr`` become its descriptors 1 and 2, every other
    descriptor but 0 is closed, then ``before_exec()`` runs. A failure to start it (a missing
    directory, a file that is not executable) raises :class:`OSError` here, in the parent.
    """
    return start(
        argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr, before_exec=before_exec
    ).confirm()


class Started:
    """A program forked by :func:`start`, whose ``exec`` may not have happened yet."""

    __slots__ = ("_report", "argv", "pid")

    def __init__(self, argv: list[str], pid: int, report: int) -> None:
        self.argv, self.pid, self._report = argv, pid, report

    def confirm(self) -> int:
        """Wait until the program replaced the child (``exec``); return its pid.

        Raises:
            OSError: the ``exec`` (or what the child did before it) failed; the child is
                reaped.
        """
        report_r, self._report = self._report, -1
        if report_r < 0:
            return self.pid
        try:
            report = b""
            while True:
                block = os.read(report_r, 4096)
                if not block:
                    break
                report += block
        finally:
            os.close(report_r)
        if report:
            os.waitpid(self.pid, 0)
            number, _, text = report.partition(b"\0")
            errno = int(number or 0)
            raise OSError(
                errno, os.strerror(errno) if errno else text.decode(errors="replace"), self.argv[0]
            )
        return self.pid


def start(
    argv: list[str],
    *,
    cwd: str,
    env: dict[str, str],
    stdout: int,
    stderr: int,
    before_exec: Callable[[], None],
) -> Started:
    """Fork the child of :func:`spawn` and return at once: the parent goes on with its own
    work while the child closes descriptors and calls ``exec``; :meth:`Started.confirm`
    tells whether the ``exec`` worked."""
    report_r, report_w = os.pipe()  # close-on-exec: the child's exec closes it
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which exec()s or _exit()s
        try:
            # Python's SIGINT handler would turn a Ctrl-C before the exec into an exception
            # here, taken for a failed exec: the default action instead, as after the exec
            # (an ignored SIGINT stays ignored). The signals are still blocked here.
            if callable(signal.getsignal(signal.SIGINT)):
                signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.close(report_r)
            os.dup2(stdout, 1)
            os.dup2(stderr, 2)
            # Every descriptor but 0, 1, 2 and the report pipe (close_range where it exists).
            os.closerange(3, report_w)  # nothing when the pipe is 3 or lower
            os.closerange(max(3, report_w + 1), _max_fd())
            os.chdir(cwd)
            for signo in RESTORED:
                signal.signal(signo, signal.SIG_DFL)
            before_exec()
            os.execvpe(argv[0], argv, env)
        except OSError as error:
            os.write(report_w, str(error.errno or 0).encode() + b"\0" + str(error).encode())
        except BaseException as error:
            os.write(report_w, b"0\0" + repr(error).encode())
        finally:
            os._exit(255)
    os.close(report_w)
    return Started(argv, pid, report_r)


def _max_fd() -> int:
    try:
        return max(os.sysconf("SC_OPEN_MAX"), 1024)
    except (OSError, ValueError):
        return 65536
