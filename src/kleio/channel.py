"""The I/O side of a runner: tee and journal the program's output, read its clients.

One thread copies the child's stdout/stderr to the terminal as they come and cuts them into
journal lines, and reads statistics, artifacts and queries from the Unix-domain socket every
process of the program connects to (wire format in :mod:`kleio.client.logger`).
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import tempfile
import threading
import time
from typing import Any

from kleio.storage.base import encode
from kleio.writer import Writer, warn

MAX_LINE = 1 << 16
DRAIN_AFTER_EXIT = 2.0


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

    @staticmethod
    def _decode(raw: bytes) -> str:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if b"\r" in raw:
            raw = raw.rsplit(b"\r", 1)[1]
        return raw.decode("utf-8", "surrogateescape")


class Connection:
    """One client connection: a small state machine over the wire format."""

    def __init__(self, sock: socket.socket, writer: Writer, spool_dir: str) -> None:
        self.sock = sock
        self.writer = writer
        self.spool_dir = spool_dir
        self.buffer = b""
        self.artifact: dict[str, Any] | None = None

    def feed(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if self.artifact is None and buffer[:1] == b"S" and b"\nA" not in buffer \
                and b"\nQ" not in buffer:
            # Fast path, the common case: only statistics. Split them in one go.
            last = buffer.rfind(b"\n")
            if last >= 0:
                lines = buffer[:last].decode("ascii", "replace").split("\n")
                self.writer.events("statistic", time.time(), [line[1:] for line in lines])
            self.buffer = buffer[last + 1:]
            return
        pos = 0
        end = len(buffer)
        stats: list[str] = []
        while pos < end:
            if self.artifact is not None:
                pos = self._artifact_bytes(buffer, pos)
                if self.artifact is not None:
                    break
                continue
            newline = buffer.find(b"\n", pos)
            if newline < 0:
                break
            tag = buffer[pos:pos + 1]
            if tag == b"S":
                stats.append(buffer[pos + 1:newline].decode("ascii", "replace"))
            else:
                if stats:
                    self.writer.events("statistic", time.time(), stats)
                    stats = []
                body = buffer[pos + 1:newline]
                if tag == b"A":
                    self._start_artifact(json.loads(body))
                elif tag == b"Q":
                    self.writer.call("query", self.sock, json.loads(body))
            pos = newline + 1
        if stats:
            self.writer.events("statistic", time.time(), stats)
        self.buffer = buffer[pos:]

    def _start_artifact(self, header: dict[str, Any]) -> None:
        os.makedirs(self.spool_dir, exist_ok=True)
        # The pid in the name lets `kleio sync` remove what a killed runner left.
        fd, path = tempfile.mkstemp(prefix=f"artifact-{os.getpid()}-", dir=self.spool_dir)
        self.artifact = {"header": header, "file": os.fdopen(fd, "wb"), "path": path,
                         "left": None}

    def _artifact_bytes(self, buffer: bytes, pos: int) -> int:
        art = self.artifact
        assert art is not None
        while pos < len(buffer):
            if art["left"] is None:
                if len(buffer) - pos < 8:
                    return pos
                art["left"] = int.from_bytes(buffer[pos:pos + 8], "big")
                pos += 8
                if art["left"] == 0:
                    art["file"].close()
                    self.writer.call("artifact", art["path"], art["header"], time.time())
                    self.artifact = None
                    return pos
            take = min(art["left"], len(buffer) - pos)
            art["file"].write(buffer[pos:pos + take])
            art["left"] -= take
            pos += take
            if art["left"] == 0:
                art["left"] = None
        return pos

    def close(self) -> None:
        if self.artifact is not None:  # the program died mid-artifact: drop the partial file
            self.artifact["file"].close()
            os.remove(self.artifact["path"])
            self.artifact = None
        self.sock.close()


class IOThread(threading.Thread):
    """Tee the child's output and read the channel until everything is closed."""

    def __init__(self, writer: Writer, listener: socket.socket,
                 outputs: dict[int, tuple[str, int]], spool_dir: str) -> None:
        super().__init__(name="kleio-io", daemon=True)
        self.writer = writer
        self.listener = listener
        self.outputs = outputs  # fd -> (kind, terminal fd)
        self.spool_dir = spool_dir
        self.selector = selectors.DefaultSelector()
        self.child_exited = threading.Event()
        self.exit_deadline = 0.0
        # Written to when the child exits, so the select loop wakes at once.
        self._wake_r, self._wake_w = os.pipe()

    def child_ended(self) -> None:
        self.child_exited.set()
        os.write(self._wake_w, b"x")

    def run(self) -> None:
        sel = self.selector
        listener = self.listener
        listener.setblocking(False)
        sel.register(listener, selectors.EVENT_READ, "listen")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self.cutters = {fd: LineCutter() for fd in self.outputs}
        for fd in self.outputs:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ, "output")
        connections: dict[int, Connection] = {}
        self.open_outputs = set(self.outputs)
        while True:
            if self.child_exited.is_set():
                if not self.open_outputs and not connections:
                    break
                if self.exit_deadline == 0.0:
                    self.exit_deadline = time.monotonic() + DRAIN_AFTER_EXIT
                elif time.monotonic() > self.exit_deadline:
                    break
            for key, _ in sel.select(timeout=0.5):
                tag = key.data
                if tag == "wake":
                    os.read(self._wake_r, 64)
                elif tag == "listen":
                    try:
                        sock, _addr = listener.accept()
                    except OSError:
                        continue
                    sock.setblocking(True)
                    connections[sock.fileno()] = Connection(sock, self.writer, self.spool_dir)
                    sel.register(sock, selectors.EVENT_READ, "client")
                elif tag == "output":
                    if key.fd in self.open_outputs:
                        self._read_output(key.fd)
                else:
                    # What the program printed before it logged this is already in the
                    # pipe: journal it first, so output and statistics stay in step. One
                    # read each: a grandchild that never stops printing must not starve us.
                    for fd in list(self.open_outputs):
                        self._read_output(fd)
                    conn = connections[key.fd]
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
                        sel.unregister(conn.sock)
                        del connections[key.fd]
                        try:
                            conn.close()
                        except OSError:
                            pass
        for conn in connections.values():
            conn.close()
        for fd in self.open_outputs:
            self._journal(fd, self.cutters[fd].flush())
        sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


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

    def _journal(self, fd: int, lines: list[str]) -> None:
        if lines:
            self.writer.events(self.outputs[fd][0], time.time(),
                               [encode({"line": line}) for line in lines])


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


def channel_path(trial_id: str) -> str:
    """A short socket path (Unix sockets are limited to ~107 bytes)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    directory = os.path.join(base, f"kleio-{os.getuid()}")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, f"{trial_id[:12]}-{os.getpid()}.sock")
    if len(path.encode()) > 100:
        directory = os.path.join(tempfile.gettempdir(), f"kleio-{os.getuid()}")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        path = os.path.join(directory, f"{trial_id[:12]}-{os.getpid()}.sock")
    return path
