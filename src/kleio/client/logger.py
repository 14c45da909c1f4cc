"""The client used inside a program: ``from kleio.client.logger import kleio_logger``.

Under ``kleio`` the runner exports ``KLEIO_CHANNEL`` (a Unix-domain socket) and every call
sends one framed message to it. Once a call returns, its message is in the kernel's socket
buffer or already with the runner, so a crash, ``os._exit`` or SIGKILL of the program cannot
lose it. No database driver is imported here, and nothing slow at import time.

Without kleio every call prints a one-line rendering and returns, so the same program runs
unchanged with and without the wrapper.

Wire format (one connection per process; see :mod:`kleio.channel`):

* ``S<json>\\n``: a statistic.
* ``A<json header>\\n`` then chunks ``<8-byte big-endian length><bytes>``, ended by a
  zero length: an artifact.
* ``Q<json request>\\n``: a query; the runner answers ``<json>\\n`` (then, for an
  artifact, ``size`` raw bytes).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import IO, Any, Union

_CHUNK = 1 << 20
_getpid = os.getpid

ArtifactSource = Union[IO[bytes], bytes, bytearray, memoryview]


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


_encoder = json.JSONEncoder(separators=(",", ":"), default=_to_json)
_encode = _encoder.encode

try:  # The C encoder, built once: json.dumps rebuilds it on every call.
    from json.encoder import c_make_encoder as _c_make_encoder  # type: ignore[attr-defined]
    from json.encoder import encode_basestring_ascii as _ascii

    _c_encode = _c_make_encoder(None, _to_json, _ascii, None, ":", ",", False, False, True)

    def _fast_encode(value: dict[str, Any]) -> str:
        return "".join(_c_encode(value, 0))

except (ImportError, TypeError):  # pragma: no cover - pure-Python json

    def _fast_encode(value: dict[str, Any]) -> str:
        return _encode(value)


def _bad_key(kwargs: dict[str, Any]) -> str:
    for key, value in kwargs.items():
        try:
            _encode(value)
        except (TypeError, ValueError):
            return key
    return next(iter(kwargs))


def _render(values: dict[str, Any]) -> str:
    return " ".join(f"{key}={value!r}" for key, value in values.items())


class KleioLogger:
    """Log statistics and artifacts of the current trial.

    A single instance, :data:`kleio_logger`, is created at import; it connects lazily and
    reconnects after a ``fork`` so every process of a job talks to the runner on its own.
    """

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            # A fork while another thread holds the lock would leave the child's copy locked
            # for ever: every child starts with a fresh lock and its own connection.
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._sock: Any = None
        self._send: Any = None

    def _drop(self) -> None:
        """Forget a connection whose last message may be partial: the runner discards it."""
        sock = self._sock
        self._sock = self._pid = self._send = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # -- state ------------------------------------------------------------------------------

    @property
    def trial_id(self) -> str | None:
        """The id of the trial this program runs as, or None without kleio."""
        return os.environ.get("KLEIO_TRIAL_ID") or None

    @property
    def active(self) -> bool:
        """True when running under ``kleio`` (calls are journalled, not printed)."""
        return bool(os.environ.get("KLEIO_CHANNEL"))

    def _connection(self) -> Any:
        pid = os.getpid()
        if self._pid == pid and self._sock is not None:
            return self._sock
        import socket

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            sock.connect(os.environ["KLEIO_CHANNEL"])
        except OSError as error:
            sock.close()
            raise RuntimeError(
                f"kleio: cannot reach the runner at {os.environ['KLEIO_CHANNEL']} ({error}); "
                "was this program started by kleio?"
            ) from None
        self._sock, self._pid, self._send = sock, pid, sock.sendall
        return sock

    # -- statistics -------------------------------------------------------------------------

    def log_statistic(self, *args: Any, **kwargs: Any) -> None:
        """Journal one statistic, e.g. ``log_statistic(epoch=3, loss=0.41)``.

        Keys are yours to choose; values must be JSON-like (numbers, strings, booleans, None,
        lists and dicts of those). NumPy and PyTorch scalars and 0-d arrays are converted.

        Raises:
            TypeError: a positional argument was given, no argument at all, or a value is
                not JSON-like (the message names its key).
        """
        if args:
            raise TypeError(
                f"log_statistic() takes keyword arguments only, got {len(args)} positional: "
                "name every value, e.g. log_statistic(epoch=3, loss=0.41), so the journal "
                "knows what each number means"
            )
        if not kwargs:
            raise TypeError("log_statistic() needs at least one keyword argument, e.g. loss=0.4")
        try:
            text = _fast_encode(kwargs)
        except (TypeError, ValueError, RecursionError):
            key = _bad_key(kwargs)
            raise TypeError(
                f"log_statistic(): value of {key!r} is a {type(kwargs[key]).__name__}, which is "
                "not JSON-like; log numbers, strings, booleans, None, or lists/dicts of them"
            ) from None
        data = ("S" + text + "\n").encode("ascii")
        with self._lock:
            # Hot path: one pid check and one send; (re)connect only in a new process.
            try:
                if self._pid == _getpid() and self._send is not None:
                    self._send(data)
                    return
                if not self.active:
                    print(f"kleio: statistic {_render(json.loads(text))}", flush=True)
                    return
                self._connection().sendall(data)
            except BaseException:
                # Interrupted mid-send (a signal handler raising, say): start over on a new
                # connection so no later message is read as the rest of this one.
                self._drop()
                raise

    # -- artifacts --------------------------------------------------------------------------

    def log_artifact(self, filename: str, fileobj: ArtifactSource, **metadata: Any) -> None:
        """Journal the bytes of a file with metadata, e.g. ``log_artifact("w.pt", f, epoch=3)``.

        ``fileobj`` is a binary file object (read from its current position to its end) or a
        bytes-like object. Identical contents are stored once.

        Raises:
            TypeError: ``filename`` is not a string, ``fileobj`` is not binary, or a metadata
                value is not JSON-like.
        """
        if not isinstance(filename, str) or not filename:
            raise TypeError("log_artifact(): filename must be a non-empty string")
        try:
            header = _encode({"filename": filename, "metadata": metadata})
        except (TypeError, ValueError):
            key = _bad_key(metadata)
            raise TypeError(
                f"log_artifact(): metadata {key!r} is a {type(metadata[key]).__name__}, which "
                "is not JSON-like"
            ) from None
        chunks = _chunks(fileobj)
        if not self.active:
            size = sum(len(chunk) for chunk in chunks)
            extra = f" {_render(json.loads(header)['metadata'])}" if metadata else ""
            print(f"kleio: artifact {filename} ({size} bytes){extra}", flush=True)
            return
        with self._lock:
            try:
                sock = self._connection()
                sock.sendall(b"A" + header.encode("ascii") + b"\n")
                for chunk in chunks:
                    if chunk:
                        sock.sendall(len(chunk).to_bytes(8, "big") + bytes(chunk))
                sock.sendall(b"\0" * 8)
            except BaseException:
                self._drop()  # the runner discards the partial artifact with the connection
                raise

    # -- resume support ---------------------------------------------------------------------

    def _query(self, request: dict[str, Any]) -> tuple[Any, bytes | None]:
        with self._lock:
            try:
                sock = self._connection()
                sock.sendall(b"Q" + _encode(request).encode("ascii") + b"\n")
                reader = sock.makefile("rb")
                try:
                    reply = json.loads(reader.readline())
                    payload = None
                    if isinstance(reply, dict) and reply.get("size") is not None:
                        payload = reader.read(reply["size"])
                finally:
                    reader.close()
            except BaseException:
                self._drop()
                raise
        if isinstance(reply, dict) and reply.get("error"):
            raise RuntimeError(f"kleio: {reply['error']}")
        return reply, payload

    def statistics(self) -> list[dict[str, Any]]:
        """Return every statistic of this trial's lineage, oldest first.

        A branch sees its parent's statistics up to the cut, then its own. Without kleio the
        list is empty, so a program can always write ``for s in kleio_logger.statistics()``.
        """
        if not self.active:
            return []
        reply, _ = self._query({"op": "statistics"})
        return list(reply["statistics"])

    def load_artifact(
        self, filename: str | None = None, **metadata: Any
    ) -> tuple[IO[bytes], dict[str, Any]] | None:
        """Return ``(fileobj, metadata)`` of the newest artifact of the lineage that matches.

        An artifact matches when its filename equals ``filename`` (if given) and its metadata
        holds every given key with an equal value. Returns None when nothing matches or
        without kleio.
        """
        if not self.active:
            return None
        reply, payload = self._query(
            {"op": "artifact", "filename": filename, "metadata": metadata}
        )
        if reply.get("found") is False:
            return None
        import io

        return io.BytesIO(payload or b""), dict(reply["metadata"])


def _chunks(source: ArtifactSource) -> list[bytes] | Any:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return [data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK)] or [b""]
    read = getattr(source, "read", None)
    if read is None:
        raise TypeError(
            f"log_artifact(): fileobj must be a binary file object or bytes, "
            f"not {type(source).__name__}"
        )
    first = read(_CHUNK)
    if isinstance(first, str):
        raise TypeError("log_artifact(): fileobj must be opened in binary mode ('rb')")

    def generate() -> Any:
        chunk = first
        while chunk:
            yield chunk
            chunk = read(_CHUNK)

    return generate()


kleio_logger = KleioLogger()

__all__ = ["KleioLogger", "kleio_logger"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit("kleio.client.logger is a library: import kleio_logger from it")
