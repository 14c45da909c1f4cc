"""The runner's I/O thread: one loop over the program's outputs, its connections, its ledger.

The outputs are teed and journalled (:mod:`kleio.channel.output`), connections read
(:mod:`kleio.channel.clients`), and the ledger files tailed (:mod:`kleio.ledger`) at most
every :data:`LEDGER_POLL`, whichever is ready first.
"""

from __future__ import annotations

import _socket
import os
import select
import threading
import time

from kleio.channel.clients import Connection, accept
from kleio.channel.output import Outputs
from kleio.ledger import LedgerReader
from kleio.writer import LedgerChunk, Writer, warn

#: How long the connections and outputs are read after the program exited (seconds).
DRAIN_AFTER_EXIT = 2.0
#: How often the ledger files are looked at while the program runs (seconds).
LEDGER_POLL = 0.05


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

    def __init__(
        self,
        writer: Writer,
        listener: _socket.socket,
        outputs: dict[int, tuple[str, int]],
        spool_dir: str,
        ledger: LedgerReader | None = None,
    ) -> None:
        super().__init__(name="kleio-io", daemon=True)
        self.writer = writer
        self.listener = listener
        self.outputs = outputs  # fd -> (kind, terminal fd)
        self.spool_dir = spool_dir
        self.ledger = ledger
        self.selector = Poller()
        self.output = Outputs(writer, outputs, self.selector.unregister)
        self.child_exited = threading.Event()
        self.exit_deadline = 0.0
        self.refused_peers = 0
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
                    if fd in self.output.open:
                        self.output.read(fd)
                else:
                    self._read_client(fd, connections)
            now = time.monotonic()
            self.output.partials(now)
            if self.ledger is not None and now >= next_poll:
                next_poll = now + LEDGER_POLL
                self._poll_ledger()
            self.output.flush_overflow()
        self._finish(connections)

    def _register(self) -> None:
        """Watch the listener, the wake pipe and the program's outputs."""
        self.listener.setblocking(False)
        self.selector.register(self.listener.fileno(), "listen")
        self.selector.register(self._wake_r, "wake")
        for fd in self.outputs:
            os.set_blocking(fd, False)
            self.selector.register(fd, "output")

    def _done(self, connections: dict[int, Connection]) -> bool:
        """The program has exited and everything is read, or the drain time is up."""
        if not self.child_exited.is_set():
            return False
        if not self.output.open and not connections:
            return True
        if self.exit_deadline == 0.0:
            self.exit_deadline = time.monotonic() + DRAIN_AFTER_EXIT
            return False
        return time.monotonic() > self.exit_deadline

    def _read_client(self, fd: int, connections: dict[int, Connection]) -> None:
        # What the program printed before it logged this is already in the pipe: journal
        # it first, so output and statistics stay in step. One read each: a grandchild
        # that never stops printing must not starve us.
        self.output.read_once()
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
        self.output.finish()
        # Everything the program wrote to the ledger, however much and however long it
        # takes: the program has ended, nothing is waiting for us any more.
        self.drain_ledger(final=True)

    def _accept(self, connections: dict[int, Connection]) -> None:
        sock, refused = accept(self.listener)
        if refused:
            self.refused_peers += 1
            if self.refused_peers == 1:
                warn("refused a connection to the channel from another user")
        if sock is None:
            return
        connections[sock.fileno()] = Connection(
            sock, self.writer, self.spool_dir, self.drain_ledger
        )
        self.selector.register(sock.fileno(), "client")

    def _poll_ledger(self) -> None:
        """Hand new ledger records to the writer, if it can take them now.

        When the journal is slow or down, records simply wait in the ledger files (on disk,
        already safe): the program never waits, and memory stays bounded.
        """
        assert self.ledger is not None
        if self.output.overflow or not self.writer.accepting():
            return  # and statistics never overtake the output printed before them
        self.output.read_once()
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
            self.output.read_once()
        for chunk in self.ledger.drain():
            self.writer.send(LedgerChunk(chunk))
