"""The I/O side of a runner: tee and journal the program's output, read its clients.

One thread copies the child's stdout/stderr to the terminal as they come and cuts them into
journal lines, tails the ledger files every process of the program appends its statistics
and artifacts to (:mod:`kleio.ledger`), and answers the queries that come over the
Unix-domain socket (wire format in :mod:`kleio.client`). Only processes of the user
may connect: the socket's directory is private and checked, and every peer's uid is checked.
"""

from __future__ import annotations

import _socket
import collections
import os
import queue
import select
import threading
import time

from kleio.client import Decoder
from kleio.ledger import LedgerReader
from kleio.private import new_private_file, peer_is_same_user, private_dir
from kleio.storage.base import encode
from kleio.writer import Artifact, Events, LedgerChunk, Query, Writer, warn

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any, Callable

MAX_LINE = 1 << 16
DRAIN_AFTER_EXIT = 2.0
#: How often the ledger files are looked at while the program runs (seconds).
LEDGER_POLL = 0.05
#: Output lines that may wait in the I/O thread while the writer is stuck.
MAX_OVERFLOW = 200_000
#: At most one ``partial`` record per output and interval (seconds): the latest state of a
#: line not ended yet (a progress bar redrawn with ``\r``) reaches ``tail -f`` and the
#: dashboard without journalling every redraw.
PARTIAL_EVERY = 0.5


class LineCutter:
    """Cut a byte stream into journal lines.

    Carriage-return progress updates are coalesced: only the text after the last ``\\r`` of a
    line is kept. Undecodable bytes survive as lone surrogates (``surrogateescape``).
    """

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> list[str]:
        data = self.pending + data
        parts = data.split(b"\n")
        self.pending = parts.pop()
        # A progress bar that never prints a newline must not grow the buffer forever.
        cut = self.pending.rfind(b"\r", 0, len(self.pending) - 1)
        if cut >= 0:
            self.pending = self.pending[cut + 1:]
        lines = [self._decode(part) for part in parts]
        while len(self.pending) > MAX_LINE:
            lines.append(self._decode(self.pending[:MAX_LINE]))
            self.pending = self.pending[MAX_LINE:]
        return lines

    def flush(self) -> list[str]:
        rest, self.pending = self.pending, b""
        return [self._decode(rest)] if rest else []

    def partial(self) -> str:
        """What a terminal shows of the line not ended yet (a progress bar's latest state)."""
        return self._decode(self.pending) if self.pending else ""

    @staticmethod
    def _decode(raw: bytes) -> str:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if b"\r" in raw:
            raw = raw.rsplit(b"\r", 1)[1]
        return raw.decode("utf-8", "surrogateescape")


class Connection:
    """One client connection: what :class:`kleio.client.Decoder` reads of it, handed on."""

    def __init__(self, sock: _socket.socket, writer: Writer, spool_dir: str,
                 before_query: Callable[[], None] = lambda: None) -> None:
        self.sock = sock
        self.writer = writer
        self.spool_dir = spool_dir
        # Read-your-writes: what the program logged before it asked must be journalled
        # before the answer is read from the journal.
        self.before_query = before_query
        self.decoder = Decoder()
        #: The artifact being received: its header, spool file and path.
        self.artifact: dict[str, Any] | None = None

    def feed(self, data: bytes) -> None:
        for kind, value in self.decoder.feed(data):
            if kind == "statistic":
                self.writer.events("statistic", time.time(), value)
            elif kind == "data":
                self._write_artifact(value)
            elif kind == "metrics":
                self.writer.events("metrics", time.time(), [value])
            elif kind == "artifact":
                self._start_artifact(value)
            elif kind == "end":
                self._end_artifact()
            elif kind == "query":
                self.before_query()
                self.writer.send(Query(self.sock, value))

    def _start_artifact(self, header: dict[str, Any]) -> None:
        file: Any = None
        path = ""
        try:
            private_dir(self.spool_dir, "spool directory")
            # The pid in the name lets `kleio sync` remove what a killed runner left.
            fd, path = new_private_file(self.spool_dir, f"artifact-{os.getpid()}-")
            file = os.fdopen(fd, "wb")
        except Exception as error:
            self._refused(header, error)
        self.artifact = {"header": header, "file": file, "path": path}

    def _refused(self, header: dict[str, Any], error: BaseException) -> None:
        # The bytes are read and dropped, and the connection lives on: the program's next
        # calls must not meet a broken pipe because one artifact did not fit.
        self.writer.problem("artifacts_dropped", f"cannot keep artifact "
                            f"{header.get('filename')!r} ({error}); it is dropped and counted")

    def _write_artifact(self, data: bytes) -> None:
        art = self.artifact
        assert art is not None
        if art["file"] is None:
            return
        try:
            art["file"].write(data)
        except OSError as error:
            self._refused(art["header"], error)
            self._discard(art)

    @staticmethod
    def _discard(art: dict[str, Any]) -> None:
        if art["file"] is not None:
            try:
                art["file"].close()
            except OSError:
                pass
            art["file"] = None
        try:
            os.remove(art["path"])
        except OSError:
            pass

    def _end_artifact(self) -> None:
        art = self.artifact
        assert art is not None
        if art["file"] is not None:
            try:
                art["file"].close()
            except OSError as error:
                self._refused(art["header"], error)
                self._discard(art)
        if art["file"] is not None:
            self.writer.send(Artifact(art["path"], art["header"], time.time()))
        self.artifact = None

    def close(self) -> None:
        if self.artifact is not None:  # the program died mid-artifact: drop the partial file
            self._discard(self.artifact)
            self.artifact = None
        self.sock.close()


class Poller:
    """Descriptors to wait on, each with a tag: :mod:`selectors` without its import cost.

    ``select(timeout)`` returns ``[(fd, tag), ...]`` for the descriptors ready to read (or
    closed at the other end: reading then tells).
    """

    def __init__(self) -> None:
        self._poll = select.poll()
        self._tags: dict[int, str] = {}

    def register(self, fd: int, tag: str) -> None:
        self._poll.register(fd, select.POLLIN)
        self._tags[fd] = tag

    def unregister(self, fd: int) -> None:
        if self._tags.pop(fd, None) is not None:
            self._poll.unregister(fd)

    def select(self, timeout: float) -> list[tuple[int, str]]:
        try:
            ready = self._poll.poll(max(0, int(timeout * 1000)))
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for safety
            return []
        return [(fd, self._tags[fd]) for fd, _ in ready if fd in self._tags]


class IOThread(threading.Thread):
    """Tee the child's output and read the channel until everything is closed."""

    def __init__(self, writer: Writer, listener: _socket.socket,
                 outputs: dict[int, tuple[str, int]], spool_dir: str,
                 ledger: LedgerReader | None = None) -> None:
        super().__init__(name="kleio-io", daemon=True)
        self.writer = writer
        self.listener = listener
        self.outputs = outputs  # fd -> (kind, terminal fd)
        self.spool_dir = spool_dir
        self.ledger = ledger
        self.selector = Poller()
        self.child_exited = threading.Event()
        self.exit_deadline = 0.0
        self.refused_peers = 0
        self.overflow: collections.deque[Events] = collections.deque()
        self.overflow_lines = 0
        #: per output: the partial line journalled last, and when the next one may be.
        self.partial_sent: dict[int, str] = {}
        self.partial_due: dict[int, float] = {}
        self.partial_since: dict[int, float] = {}


        # Written to when the child exits, so the select loop wakes at once. The pipe is
        # the runner's: it is closed by close(), after this thread has ended, never by the
        # thread itself (child_ended() may write to it at any moment until then).
        self._wake_r, self._wake_w = os.pipe()

    def child_ended(self) -> None:
        self.child_exited.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def close(self) -> None:
        """Release the wake pipe; only once the thread has ended."""
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as error:  # never leave the runner without its tee silently
            warn(f"the output and ledger reader stopped after an error: {error!r}")
            raise

    def _loop(self) -> None:
        connections: dict[int, Connection] = {}
        self._register()
        timeout = LEDGER_POLL if self.ledger is not None else 0.5
        next_poll = time.monotonic()
        while not self._done(connections):
            for fd, tag in self.selector.select(timeout):
                if tag == "wake":
                    os.read(self._wake_r, 64)
                elif tag == "listen":
                    self._accept(connections)
                elif tag == "output":
                    if fd in self.open_outputs:
                        self._read_output(fd)
                else:
                    self._read_client(fd, connections)
            now = time.monotonic()
            self._partials(now)
            if self.ledger is not None and now >= next_poll:
                next_poll = now + LEDGER_POLL
                self._poll_ledger()
            self._flush_overflow()
        self._finish(connections)

    def _register(self) -> None:
        """Watch the listener, the wake pipe and the program's outputs."""
        self.listener.setblocking(False)
        self.selector.register(self.listener.fileno(), "listen")
        self.selector.register(self._wake_r, "wake")
        self.cutters = {fd: LineCutter() for fd in self.outputs}
        for fd in self.outputs:
            os.set_blocking(fd, False)
            self.selector.register(fd, "output")
        self.open_outputs = set(self.outputs)

    def _done(self, connections: dict[int, Connection]) -> bool:
        """The program has exited and everything is read, or the drain time is up."""
        if not self.child_exited.is_set():
            return False
        if not self.open_outputs and not connections:
            return True
        if self.exit_deadline == 0.0:
            self.exit_deadline = time.monotonic() + DRAIN_AFTER_EXIT
            return False
        return time.monotonic() > self.exit_deadline

    def _read_client(self, fd: int, connections: dict[int, Connection]) -> None:
        # What the program printed before it logged this is already in the pipe: journal
        # it first, so output and statistics stay in step. One read each: a grandchild
        # that never stops printing must not starve us.
        self._read_outputs_once()
        conn = connections[fd]
        try:
            data = conn.sock.recv(1 << 20)
        except OSError:
            data = b""
        if data:
            try:
                conn.feed(data)
            except Exception as error:  # never let one client stop the tee
                warn(f"dropped a client connection after an error: {error}")
                data = b""
        if not data:
            self.selector.unregister(fd)
            del connections[fd]
            try:
                conn.close()
            except OSError:
                pass

    def _finish(self, connections: dict[int, Connection]) -> None:
        for conn in connections.values():
            conn.close()
        for fd in self.open_outputs:
            self._journal(fd, self.cutters[fd].flush())
        self._flush_overflow(wait=True)
        # Everything the program wrote to the ledger, however much and however long it
        # takes: the program has ended, nothing is waiting for us any more.
        self.drain_ledger(final=True)

    def _accept(self, connections: dict[int, Connection]) -> None:
        try:
            fd, _addr = self.listener._accept()  # type: ignore[attr-defined]
        except OSError:
            return
        sock = _socket.socket(fileno=fd)
        if not peer_is_same_user(sock):
            # Another local user reached the socket (its directory is checked, but a
            # descriptor can be passed along): never read from or answer them.
            self.refused_peers += 1
            if self.refused_peers == 1:
                warn("refused a connection to the channel from another user")
            sock.close()
            return
        sock.setblocking(True)
        connections[sock.fileno()] = Connection(sock, self.writer, self.spool_dir,
                                                self.drain_ledger)
        self.selector.register(sock.fileno(), "client")

    def _read_outputs_once(self) -> None:
        for fd in list(self.open_outputs):
            self._read_output(fd)

    def _poll_ledger(self) -> None:
        """Hand new ledger records to the writer, if it can take them now.

        When the journal is slow or down, records simply wait in the ledger files (on disk,
        already safe): the program never waits, and memory stays bounded.
        """
        assert self.ledger is not None
        if self.overflow or not self.writer.accepting():
            return  # and statistics never overtake the output printed before them
        self._read_outputs_once()
        for chunk in self.ledger.poll():
            self.writer.send(LedgerChunk(chunk))

    def drain_ledger(self, final: bool = False) -> None:
        """Hand every record in the ledger to the writer (before a query, and at the end).

        Before a query, pending output goes first (output and statistics stay in step); at
        the end the outputs are already read to their end and unregistered.
        """
        if self.ledger is None:
            return
        if not final:
            self._read_outputs_once()
        for chunk in self.ledger.drain():
            self.writer.send(LedgerChunk(chunk))

    def _read_output(self, fd: int) -> bool:
        """Tee and journal what is waiting on one output; False when nothing was read."""
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return False
        except OSError:  # EIO: the pty's other end is closed
            data = b""
        if not data:
            self.selector.unregister(fd)
            self.open_outputs.discard(fd)
            self._journal(fd, self.cutters[fd].flush())
            return False
        _write_all(self.outputs[fd][1], data)
        self._journal(fd, self.cutters[fd].feed(data))
        return True

    def _partials(self, now: float) -> None:
        """Journal the latest state of each unfinished line, at most every PARTIAL_EVERY.

        Readers show a ``partial`` record only until the line it belongs to ends (``kleio
        cat`` never shows one that a full line followed).
        """
        for fd in self.open_outputs:
            text = self.cutters[fd].partial()
            if not text:
                continue
            # A line printed in pieces (print() writes its arguments one by one) ends
            # within microseconds: only a line left unfinished for a while is a progress bar.
            since = self.partial_since.setdefault(fd, now)
            if now - since < PARTIAL_EVERY or text == self.partial_sent.get(fd) \
                    or now < self.partial_due.get(fd, 0.0):
                continue
            self.partial_sent[fd] = text
            self.partial_due[fd] = now + PARTIAL_EVERY
            self._journal(fd, [text], partial=True)

    def _journal(self, fd: int, lines: list[str], partial: bool = False) -> None:
        """Hand output lines to the writer without ever waiting for it.

        When the writer is stuck (a journal locked by another process waits out its busy
        timeout) its queue fills; lines then wait here, so the tee goes on and the program's
        ``print`` never blocks. At most :data:`MAX_OVERFLOW` lines wait; more are dropped and
        counted in the final status.
        """
        if not lines:
            return
        if partial:
            datas = [encode({"line": line, "partial": True}) for line in lines]
        else:
            self.partial_sent.pop(fd, None)  # the line ended: a new one may follow
            self.partial_since.pop(fd, None)
            datas = [encode({"line": line}) for line in lines]
        item = Events(self.outputs[fd][0], time.time(), datas)
        if not self.overflow:
            try:
                self.writer.queue.put_nowait(item)
                return
            except queue.Full:
                pass
        if self.overflow_lines + len(lines) > MAX_OVERFLOW:
            self.writer.problem("output_lines_dropped", "the journal is too slow: output lines "
                                "are dropped (the terminal still shows them) and counted",
                                len(lines))
            return
        self.overflow.append(item)
        self.overflow_lines += len(lines)

    def _flush_overflow(self, wait: bool = False) -> None:
        while self.overflow:
            try:
                if wait:
                    self.writer.queue.put(self.overflow[0])
                else:
                    self.writer.queue.put_nowait(self.overflow[0])
            except queue.Full:
                return
            self.overflow_lines -= len(self.overflow.popleft().datas)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        except OSError:
            return  # the terminal went away: keep journalling anyway
        view = view[written:]

