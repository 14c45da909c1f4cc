"""The bytes of an artifact on the program's side: read in chunks, written beside the ledger.

Imported on a program's first :meth:`~kleio.client.logger.KleioLogger.log_artifact`, not
with the logger: a program that logs only statistics never loads it (nor ``hashlib``).
"""

from __future__ import annotations

import hashlib
import os

from kleio.client import BLOB, encode_checked, record
from kleio.client.logger import MAX_DEPTH
from kleio.client.values import check_odd, refuse

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import IO, Any, Union

    ArtifactSource = Union[IO[bytes], bytes, bytearray, memoryview]

CHUNK = 1 << 20


def header_of(filename: str, metadata: dict[str, Any]) -> str:
    """The JSON text of an artifact's header, ``{"filename": ..., "metadata": ...}``.

    Raises:
        TypeError: ``filename`` is not a non-empty string, or a metadata value is not
            JSON-like (circular, nested too deep...); ValueError: a lone surrogate.
    """
    if not isinstance(filename, str) or not filename:
        raise TypeError("log_artifact(): filename must be a non-empty string")
    try:
        header = encode_checked({"filename": filename, "metadata": metadata})
    except (TypeError, ValueError, RecursionError):
        raise refuse(metadata, "log_artifact()", "metadata") from None
    if "\\ud" in header or header.count("[") + header.count("{") > MAX_DEPTH:
        check_odd({"filename": filename, **metadata}, header, "log_artifact()")
    return header


def chunks(source: ArtifactSource) -> list[bytes] | Any:
    """The content of ``source`` in pieces of :data:`CHUNK` bytes, read lazily from a file.

    Raises:
        TypeError: ``source`` is neither bytes-like nor a file object opened in binary mode.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
    read = getattr(source, "read", None)
    if read is None:
        raise TypeError(
            f"log_artifact(): fileobj must be a binary file object or bytes, "
            f"not {type(source).__name__}"
        )
    first = read(CHUNK)
    if isinstance(first, str):
        raise TypeError("log_artifact(): fileobj must be opened in binary mode ('rb')")

    def generate() -> Any:
        chunk = first
        while chunk:
            yield chunk
            chunk = read(CHUNK)

    return generate()


def _cannot_store(filename: str, path: str, error: OSError) -> OSError:
    return OSError(
        error.errno,
        f"kleio: cannot store artifact {filename!r} in {os.path.dirname(path)}: {error.strerror}",
    )


def write_blob(path: str, filename: str, pieces: Iterable[bytes]) -> tuple[str, int]:
    """Write an artifact's bytes to a new private file ``path``: ``(sha256, size)``.

    A failure removes what was written (a ledger ``.blob`` has a record only once whole).

    Raises:
        OSError: the file cannot be created or written; the message names the artifact.
    """
    digest = hashlib.sha256()
    size = 0
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise _cannot_store(filename, path, error) from None
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in pieces:
                if chunk:
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
    except BaseException as error:
        try:
            os.remove(path)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise _cannot_store(filename, path, error) from None
        raise
    return digest.hexdigest(), size


def to_ledger(
    path: str, blob: str, filename: str, metadata: dict[str, Any], pieces: Iterable[bytes]
) -> bytes:
    """Write an artifact's bytes to ``path`` (named ``blob`` in the ledger): its ``B`` record.

    The caller appends the record only once this returns, the bytes complete, so a record
    always has its bytes. A program killed half-way leaves a ``.blob`` without record, which
    the runner removes.
    """
    sha256, size = write_blob(path, filename, pieces)
    entry = {
        "filename": filename,
        "metadata": metadata,
        "blob": blob,
        "sha256": sha256,
        "size": size,
    }
    return record(BLOB, encode_checked(entry))


def take_back(path: str) -> list[bytes]:
    """The bytes of a blob the ledger took but whose record it refused, in chunks; the file
    goes (the bytes are sent over the socket instead)."""
    with open(path, "rb") as source:
        data = source.read()
    os.remove(path)
    return chunks(data)
