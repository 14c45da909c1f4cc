"""The program's connections to its runner: statistics, artifacts and queries on the socket.

Only processes of the user may connect: the socket's directory is private and checked, and
every peer's uid is checked (:func:`accept`).
"""

from __future__ import annotations

import _socket
import os
import time

from kleio.client import Decoder
from kleio.private import new_private_file, peer_is_same_user, private_dir
from kleio.writer import Artifact, Query, Writer

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any, Callable


def accept(listener: _socket.socket) -> tuple[_socket.socket | None, bool]:
    """``(the next connection or None, whether one was refused)``.

    A connection from another local user (its directory is checked, but a descriptor can be
    passed along) is closed unread and unanswered.
    """
    try:
        fd, _addr = listener._accept()  # type: ignore[attr-defined]
    except OSError:
        return None, False
    sock = _socket.socket(fileno=fd)
    if not peer_is_same_user(sock):
        sock.close()
        return None, True
    sock.setblocking(True)
    return sock, False


class Connection:
    """One client connection: what :class:`kleio.client.Decoder` reads of it, handed on."""

    def __init__(
        self,
        sock: _socket.socket,
        writer: Writer,
        spool_dir: str,
        before_query: Callable[[], None] = lambda: None,
    ) -> None:
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
        self.writer.problem(
            "artifacts_dropped",
            f"cannot keep artifact {header.get('filename')!r} ({error}); it is dropped and counted",
        )

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
