"""The in-program client of kleio, and its wire protocol: the bytes between a program's
logger and its runner.

:mod:`kleio.client.logger` (the API a program imports) writes them; :mod:`kleio.channel` (the
socket) and :mod:`kleio.ledger` (the ledger files) read them. Both sides take the format from
here and nowhere else. It lives in the package itself, not a module of its own, because a
program importing the logger loads this package anyway: one more module would cost every
program's start-up a file lookup and load.

Records, one per line, a tag byte then compact ASCII JSON (``\\uXXXX`` escapes, so a record
never holds a newline or a non-ASCII byte):

* ``S<json>\\n`` a statistic (ledger or socket), journalled as a ``statistic`` event;
* ``M<json>\\n`` a metric declaration ``{"metrics": {name: "min"|"max"}, "primary": name}``
  (ledger or socket), journalled as a ``metrics`` event;
* ``B<json>\\n`` an artifact whose bytes are in the ledger's ``.blob`` file named by its
  ``blob`` key (ledger only);
* ``A<json header>\\n`` then frames ``<8-byte big-endian length><bytes>``, ended by a zero
  length: an artifact and its bytes (socket only);
* ``Q<json request>\\n`` a query (socket only); the runner answers one JSON line, then, when
  the answer has a ``size``, that many raw bytes.

Stdlib only, and cheap to import: the client is imported at the start of every program. No
``json`` (it imports ``re`` and ``enum``: :mod:`kleio.cjson` parses, on first use), no
``typing``, and nothing heavy.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import IO, Any

STATISTIC = b"S"
METRICS = b"M"
BLOB = b"B"
ARTIFACT = b"A"
QUERY = b"Q"
#: The event kind a record of the ledger or the socket is journalled as.
EVENT_KINDS = {STATISTIC: "statistic", METRICS: "metrics"}
#: The size of an artifact frame's length, and the frame that ends an artifact.
LENGTH_SIZE = 8
END_OF_ARTIFACT = b"\0" * LENGTH_SIZE


def _to_json(value: Any) -> Any:
    """Convert NumPy/PyTorch scalars and 0-d arrays; anything else is not JSON-like."""
    module = type(value).__module__.split(".", 1)[0]
    if module in ("numpy", "torch", "jax", "jaxlib"):
        ndim = getattr(value, "ndim", 0)
        if ndim == 0 and hasattr(value, "item"):
            return value.item()
        if module == "numpy" and hasattr(value, "tolist"):
            return value.tolist()
    raise TypeError(type(value).__name__)


# The C encoder of the standard library, built once (json.dumps rebuilds it on every call)
# and taken from ``_json`` itself: the ``json`` package would import ``re`` and ``enum``,
# tens of milliseconds of a program's start-up on a slow machine.
try:
    from _json import encode_basestring_ascii as _ascii
    from _json import make_encoder as _c_make_encoder

    _c_encode = _c_make_encoder(None, _to_json, _ascii, None, ":", ",", False, False, True)

    def encode(value: Any) -> str:
        """The compact ASCII JSON of ``value``, fast: no check for circular values.

        Raises:
            TypeError: a value is not JSON-like; RecursionError, ValueError: a value refers
                to itself, or is nested too deep.
        """
        return "".join(_c_encode(value, 0))

    def encode_checked(value: Any) -> str:
        """Like :func:`encode`, with the check for circular values (ValueError)."""
        checked = _c_make_encoder({}, _to_json, _ascii, None, ":", ",", False, False, True)
        return "".join(checked(value, 0))

except ImportError:  # pragma: no cover - an interpreter without the C accelerator
    import json

    encode = encode_checked = json.JSONEncoder(  # type: ignore[assignment]
        separators=(",", ":"), default=_to_json
    ).encode


def loads(text: str | bytes) -> Any:
    """Parse the JSON of a record (:mod:`kleio.cjson`, imported on first use only)."""
    from kleio.cjson import loads as parse

    return parse(text)


def record(tag: bytes, text: str) -> bytes:
    """One record: ``tag``, the JSON text from :func:`encode`, a newline."""
    return tag + text.encode("ascii") + b"\n"


def artifact_stream(header: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The messages that send one artifact over the socket: its header, frames, the end.

    ``header`` is the JSON text of ``{"filename": ..., "metadata": ...}``; empty chunks
    make no frame (a zero length ends the artifact).
    """
    yield record(ARTIFACT, header)
    for chunk in chunks:
        if chunk:
            yield len(chunk).to_bytes(LENGTH_SIZE, "big") + bytes(chunk)
    yield END_OF_ARTIFACT


def reply(answer: Any) -> bytes:
    """The runner's answer to a query: one JSON line (the raw bytes of ``size`` follow)."""
    from kleio.cjson import dumps

    return dumps(answer).encode("ascii") + b"\n"


def read_reply(reader: IO[bytes]) -> tuple[Any, bytes | None]:
    """Read the runner's answer to a query: ``(answer, the raw bytes of its size or None)``."""
    answer = loads(reader.readline())
    payload = None
    if isinstance(answer, dict) and answer.get("size") is not None:
        payload = reader.read(answer["size"])
    return answer, payload


class Decoder:
    """Cut the byte stream of one connection into messages, as they arrive (the runner's side).

    :meth:`feed` yields, in order:

    * ``("statistic", [json text, ...])``: consecutive statistics, as one batch;
    * ``("metrics", json text)``;
    * ``("artifact", header)``: an artifact starts; then ``("data", bytes)`` pieces of its
      content and ``("end", b"")`` once it is complete;
    * ``("query", request)``.

    A record with an unknown tag (``B``, which only ledger files hold, or anything else) is
    skipped. A header or request that is not JSON raises ValueError: the connection is
    then beyond repair (its next bytes cannot be told apart), and is dropped.
    """

    __slots__ = ("_buffer", "_left", "in_artifact")

    def __init__(self) -> None:
        self._buffer = b""
        #: True between an artifact's header and its end frame.
        self.in_artifact = False
        self._left: int | None = None  # bytes left in the current frame; None: a length next

    def feed(self, data: bytes) -> Iterator[tuple[str, Any]]:
        """Yield the messages ``data`` completes (what is left waits for the next call)."""
        buffer = self._buffer + data if self._buffer else data
        self._buffer = b""
        if (
            not self.in_artifact
            and buffer[:1] == STATISTIC
            and buffer.count(b"\nS") == buffer.count(b"\n") - buffer.endswith(b"\n")
        ):
            # Fast path, the common case: every record is a statistic. Split them in one go.
            last = buffer.rfind(b"\n")
            self._buffer = buffer[last + 1 :]
            if last >= 0:
                lines = buffer[:last].decode("ascii", "replace").split("\n")
                yield "statistic", [line[1:] for line in lines]
            return
        yield from self._decode(buffer)

    def _decode(self, buffer: bytes) -> Iterator[tuple[str, Any]]:
        """The messages of ``buffer``, record by record; keeps what is left for later."""
        pos = 0
        end = len(buffer)
        stats: list[str] = []
        try:
            while pos < end:
                if self.in_artifact:
                    pos, message = self._artifact_frame(buffer, pos)
                    if message is None:
                        break  # the rest of a length: wait for more bytes
                    if message:
                        yield message
                    continue
                newline = buffer.find(b"\n", pos)
                if newline < 0:
                    break
                tag = buffer[pos : pos + 1]
                body = buffer[pos + 1 : newline]
                pos = newline + 1
                if tag == STATISTIC:
                    stats.append(body.decode("ascii", "replace"))
                    continue
                if stats:
                    yield "statistic", stats
                    stats = []
                found = self._record(tag, body)
                if found is not None:
                    yield found
            if stats:
                yield "statistic", stats
        finally:
            self._buffer = buffer[pos:]

    def _artifact_frame(
        self, buffer: bytes, pos: int
    ) -> tuple[int, tuple[str, Any] | tuple[()] | None]:
        """Read artifact bytes at ``pos``: ``(new position, message)``, the message being
        ``("data", bytes)``, ``("end", b"")``, ``()`` (nothing yet) or None (a frame length
        is cut: wait for more bytes)."""
        left = self._left
        end = len(buffer)
        if left is None:
            if end - pos < LENGTH_SIZE:
                return pos, None
            left = int.from_bytes(buffer[pos : pos + LENGTH_SIZE], "big")
            pos += LENGTH_SIZE
            if left == 0:
                self.in_artifact = False
                return pos, ("end", b"")
        take = min(left, end - pos)
        piece = buffer[pos : pos + take]
        self._left = left - take or None
        return pos + take, (("data", piece) if piece else ())

    def _record(self, tag: bytes, body: bytes) -> tuple[str, Any] | None:
        """The message of one record other than a statistic (None: an unknown tag)."""
        if tag == METRICS:
            return "metrics", body.decode("ascii", "replace")
        if tag == ARTIFACT:
            header = loads(body)
            self.in_artifact, self._left = True, None
            return "artifact", header
        if tag == QUERY:
            return "query", loads(body)
        return None


__all__ = [
    "ARTIFACT",
    "BLOB",
    "END_OF_ARTIFACT",
    "EVENT_KINDS",
    "LENGTH_SIZE",
    "METRICS",
    "QUERY",
    "STATISTIC",
    "Decoder",
    "artifact_stream",
    "encode",
    "encode_checked",
    "loads",
    "read_reply",
    "record",
    "reply",
]
