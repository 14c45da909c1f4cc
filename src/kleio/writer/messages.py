"""What the other threads of a runner ask its writer: one class per request.

The writer's queue carries these; :class:`~kleio.writer.thread.Writer` dispatches them by type.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    import _socket
    from typing import Any

    from kleio.ledger import Chunk


class Events:
    """Events of one kind, numbered in order by the writer (output lines, statistics)."""

    __slots__ = ("datas", "kind", "when")

    def __init__(self, kind: str, when: float, datas: list[str]) -> None:
        self.kind, self.when, self.datas = kind, when, datas


class LedgerChunk:
    """Records read from a ledger file (:class:`kleio.ledger.Chunk`)."""

    __slots__ = ("chunk",)

    def __init__(self, chunk: Chunk) -> None:
        self.chunk = chunk


class Heartbeat:
    """Renew the lease: ``when`` is the time stamp, ``taken`` its monotonic time."""

    __slots__ = ("taken", "when")

    def __init__(self, when: float, taken: float | None = None) -> None:
        self.when, self.taken = when, taken


class Status:
    """A status event, and the trial's cached fields to set with it."""

    __slots__ = ("data", "fields", "status", "when")

    def __init__(
        self, status: str, when: float, data: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        self.status, self.when, self.data, self.fields = status, when, data, fields


class Artifact:
    """An artifact whose bytes a client sent over the socket (staged in ``path``)."""

    __slots__ = ("header", "path", "when")

    def __init__(self, path: str, header: dict[str, Any], when: float) -> None:
        self.path, self.header, self.when = path, header, when


class Query:
    """A client's question, answered on its connection."""

    __slots__ = ("conn", "request")

    def __init__(self, conn: _socket.socket, request: dict[str, Any]) -> None:
        self.conn, self.request = conn, request


class Stop:
    """Flush everything and end the thread."""

    __slots__ = ()


if TYPE_CHECKING:
    from typing import Union

    #: Everything the writer's queue carries.
    Message = Union[Events, LedgerChunk, Heartbeat, Status, Artifact, Query, Stop]
