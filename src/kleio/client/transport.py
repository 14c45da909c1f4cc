"""How a process's records reach its runner: its own ledger file, else the socket.

Every process of a program (a ``fork``\\ ed child, a data-loader worker, a ``torchrun`` rank)
opens a ledger file of its own in ``KLEIO_LEDGER`` on its first call, and its own connection
to ``KLEIO_CHANNEL`` on its first query; a fork leaves the child neither its parent's file nor
its parent's connection nor a lock another thread held. A ledger that cannot be written (a
full disk) is given up with one warning, and records go over the socket instead. Without
kleio a record is printed instead.

:class:`Transport` is the base of :class:`kleio.client.logger.KleioLogger`, which adds the
calls a program makes (and, on its hot path, the one ``write`` of a statistic). Imported with
the logger: standard library only, nothing slow.
"""

from __future__ import annotations

import _thread
import os

from kleio.client.stderr import warn

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:  # annotations only: ``typing`` costs milliseconds at a program's start
    from typing import Any

_getpid = os.getpid
_write = os.write

#: Largest encoded statistic, in bytes, unless the runner says otherwise (max_statistic_size).
DEFAULT_MAX_STATISTIC = 1 << 20


class Transport:
    """One process's ledger file and connection to its runner, opened on first use."""

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            # A fork while another thread holds the lock would leave the child's copy locked
            # for ever: every child starts with a fresh lock, its own ledger file and its own
            # connection.
            os.register_at_fork(after_in_child=self._after_fork)

    def _reset(self) -> None:
        # Re-entrant: a signal handler that logs, run while this thread holds the lock in
        # the slow path, must not wait for itself.
        self._lock = _thread.RLock()
        self._pid: int | None = None  # the process the ledger file and socket belong to
        self._fd: int | None = None
        self._base = ""
        self._blobs = 0
        self._sock: Any = None
        try:
            self._max = int(os.environ.get("KLEIO_MAX_STATISTIC_SIZE") or DEFAULT_MAX_STATISTIC)
        except ValueError:
            self._max = DEFAULT_MAX_STATISTIC

    def _after_fork(self) -> None:
        fd = self._fd
        self._reset()
        if fd is not None:  # the parent's file: never write to it from here
            try:
                os.close(fd)
            except OSError:
                pass

    def _drop(self) -> None:
        """Forget a connection whose last message may be partial: the runner discards it."""
        sock = self._sock
        self._sock = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    @property
    def active(self) -> bool:
        """True when running under ``kleio`` (calls are journalled, not printed)."""
        return bool(os.environ.get("KLEIO_CHANNEL"))

    def _start(self) -> None:
        """First call in this process: open its own ledger file (or use the socket)."""
        pid = _getpid()
        self._pid, self._fd, self._sock = pid, None, None
        directory = os.environ.get("KLEIO_LEDGER")
        if not directory:
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        for _ in range(8):
            base = f"{pid}-{os.urandom(4).hex()}"
            try:
                self._fd = os.open(os.path.join(directory, base + ".log"), flags, 0o600)
                self._base = base
                return
            except FileExistsError:
                continue
            except OSError as error:
                self._ledger_lost(error)
                return

    def _ledger_lost(self, error: BaseException) -> None:
        warn(
            f"cannot write the ledger in {os.environ.get('KLEIO_LEDGER')} ({error}); "
            "this process sends its records to the runner instead"
        )
        # The descriptor stays open: another thread may be writing with it right now, and a
        # number closed here could be reused by a file that write would then land in.
        self._fd = None

    def _append(self, data: bytes) -> bool:
        """Append one record to this process's ledger file; False if it has none (any more)."""
        fd = self._fd
        if fd is None:
            return False
        try:
            written: Any = _write(fd, data)
        except OSError as error:
            written = error
        if written == len(data):
            return True
        self._write_failed(written)
        return False

    def _write_failed(self, written: Any) -> None:
        """Give the ledger up after a write returned ``written`` (a count, or an OSError)."""
        fd = self._fd
        if isinstance(written, int) and fd is not None:
            # A short write (a full disk): cut the torn record off so the file stays whole.
            try:
                os.ftruncate(fd, os.fstat(fd).st_size - written)
            except OSError:
                pass
            written = OSError("short write: the disk may be full")
        self._ledger_lost(written)

    def _connection(self) -> Any:
        pid = _getpid()
        if self._pid != pid:
            self._start()
        if self._sock is not None:
            return self._sock
        from kleio.client.connection import connect

        sock = connect(os.environ["KLEIO_CHANNEL"])
        self._sock = sock
        return sock

    def _record(self, data: bytes, printed: str) -> None:
        """Append one record to the ledger, else send it to the runner; print it without kleio.

        ``printed`` is what a program not run by kleio prints (it is only read then).
        """
        with self._lock:
            if self._pid == _getpid():
                if self._append(data):
                    return
            elif not self.active:
                print(f"kleio: {printed}", flush=True)
                return
            else:
                self._start()
                if self._append(data):
                    return
            try:
                self._connection().sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                # The runner dropped this connection (after an error of its own): once more
                # on a new one; if the runner is gone, that says so in one sentence.
                self._drop()
                try:
                    self._connection().sendall(data)
                except BaseException:
                    self._drop()
                    raise
            except BaseException:
                # Interrupted mid-send (a signal handler raising, say): start over on a new
                # connection so no later message is read as the rest of this one.
                self._drop()
                raise

    def _query(self, request: dict[str, Any]) -> tuple[Any, bytes | None]:
        """Ask the runner over this process's connection: its reply and its bytes, if any."""
        from kleio.client.connection import ask

        with self._lock:
            try:
                return ask(self._connection(), request)
            except BaseException:
                self._drop()
                raise
