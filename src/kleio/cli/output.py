"""What commands write out: a program's output as ``kleio cat`` and ``kleio tail`` show it
(the lines a terminal ends up showing, the JSON shape of one line), and the file of a
``-o FILE`` option (:func:`open_output`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from kleio.cli.common import one_line
from kleio.errors import UsageError


def output_record(kind: str, event: Any) -> dict[str, Any]:
    """The JSON shape of one output line in ``cat --json`` and ``tail --json``."""
    record = {"stream": kind, "time": event.time, "line": event.data.get("line", "")}
    if event.data.get("partial"):
        record["partial"] = True
    return record


def ended_lines(events: Iterable[Any]) -> Iterator[Any]:
    """Output events as a terminal ends up showing them: a ``partial`` record (the state of
    a line not ended yet, such as a progress bar) is dropped once a later line of the same
    stream ends it; one still unfinished at the end is kept."""
    held: Any = None
    for event in events:
        if event.data.get("partial"):
            held = event
            continue
        held = None
        yield event
    if held is not None:
        yield held


class _Output:
    """A file opened by :func:`open_output`: bytes written to it, a failure to write (a full
    disk) raised as one UsageError naming the file."""

    def __init__(self, path: str, file: Any) -> None:
        self.path = path
        self._file = file

    def write(self, data: bytes) -> int:
        try:
            return self._file.write(data)
        except OSError as error:
            raise _cannot_write(self.path, error) from None

    def close(self) -> None:
        try:
            self._file.close()
        except OSError as error:
            raise _cannot_write(self.path, error) from None

    def __enter__(self) -> _Output:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_output(path: str) -> _Output:
    """Open the FILE of a ``-o FILE`` option to write bytes: created private (0600), and an
    existing regular file emptied and made 0600 too (the documented mode, whatever it was).

    Raises:
        UsageError: the file cannot be opened (its directory missing, a directory, no
            permission...), or, when written, a write failed; one sentence naming it.
    """
    import stat

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise _cannot_write(path, error) from None
    try:
        # Only a regular file: -o /dev/null or a named pipe keeps its mode.
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, 0o600)
    except OSError:  # a file of another user's, writable to us: written, its mode left
        pass
    return _Output(path, os.fdopen(fd, "wb"))


def _cannot_write(path: str, error: OSError) -> UsageError:
    import errno

    shown = one_line(path)
    parent = os.path.dirname(os.path.abspath(path))
    if isinstance(error, IsADirectoryError):
        return UsageError(
            f"cannot write to {shown}: it is a directory",
            f"give a file's path, e.g. {os.path.join(shown, 'NAME')}",
        )
    if isinstance(error, FileNotFoundError) or error.errno == errno.ENOTDIR:
        return UsageError(
            f"cannot write to {shown}: the directory {one_line(parent)} does not exist",
            "create it first, or give -o a path in an existing directory",
        )
    if isinstance(error, PermissionError):
        return UsageError(
            f"cannot write to {shown}: permission denied",
            "give -o a path you may write to",
        )
    return UsageError(
        f"cannot write to {shown}: {one_line(error.strerror or str(error))}",
        "free some space or give -o another path"
        if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        else "give -o another path",
    )
