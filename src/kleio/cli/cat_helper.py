"""A second process for the first pass of ``kleio cat --statistics``'s table, so that a long
trial's cells are made on two cores: every other batch of joined text is sent to a forked
child, which makes its spool record (:func:`kleio.cli.cat_table.table_blocks`) while this
process reads and makes the next one; the records come back in the order of the batches.

The child only computes: it never touches the journal, the terminal nor the spool, ends with
``os._exit`` (no atexit handler nor buffer of the parent runs twice) and when its input
closes (the parent ended, even killed). When it cannot help (no ``fork``, threads already
running, one core) or fails (it dies, or cannot be written to), its batch is made here and
the rest of the table goes on in this process: the output is the same bytes either way. A
child stopped (SIGSTOP) stops the table until it is continued; Ctrl-C ends both.
"""

from __future__ import annotations

import marshal
import os

from kleio.storage.records import JoinedTexts

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import IO, Any

#: A batch smaller than this never starts a child: a short trial is done before one is up.
MIN_ROWS = 5000
#: A batch whose text is larger than this is made here, never sent: the child would hold
#: its decoded statistics at the same time as this process holds the next batch's (wide
#: statistics, lists of thousands of values, take tens of times their text in memory).
MAX_TEXT = 16 << 20

_HEADER = 8


def first_pass(
    batches: Iterable[Any], work: Callable[[Any], Any], *, helper: bool = True
) -> Iterator[Any]:
    """``work(batch)`` of each batch, in order, each :class:`JoinedTexts` batch of every
    other pair made by a forked child (a copy of this process: ``work`` there keeps its own
    state from the fork on) when ``helper`` and the first large batch make it worth it.
    ``work``'s results must be values :mod:`marshal` writes."""
    child: _Child | None = None
    held: Any = None  # the batch the child is making
    try:
        for batch in batches:
            joined = type(batch) is JoinedTexts and len(batch.text) <= MAX_TEXT
            if helper and joined and batch.rows >= MIN_ROWS:
                helper = False
                child = _Child.start(work)
            if child is not None and held is None and joined:
                if child.send(batch):
                    held = batch
                    continue
                child.close(kill=True)
                child = None
            mine = work(batch)
            if held is not None:
                yield _theirs(child, held, work)
                held = None
            yield mine
        if held is not None:
            yield _theirs(child, held, work)
            held = None
    finally:
        if child is not None:
            child.close(kill=held is not None)


def _theirs(child: _Child | None, held: Any, work: Callable[[Any], Any]) -> Any:
    """The child's result for ``held``, or ``work(held)`` here when it has none (it ended:
    later ``send`` calls fail, and the rest is made here)."""
    found = child.receive() if child is not None else None
    return work(held) if found is None else found


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Child:
    """A forked process making ``work`` of the batches written to it (length-prefixed
    :mod:`marshal` over two pipes), one at a time."""

    def __init__(self, pid: int, to_child: IO[bytes], from_child: IO[bytes]) -> None:
        self.pid, self.to_child, self.from_child = pid, to_child, from_child

    @classmethod
    def start(cls, work: Callable[[Any], Any]) -> _Child | None:
        import signal  # (here, not in the child: an import there could wait on a lock)
        import threading  # (already imported by the interpreter at start-up)

        if not hasattr(os, "fork") or threading.active_count() > 1 or _cores() < 2:
            return None  # (forking a process that runs threads can deadlock the child)
        fds: list[int] = []
        try:
            fds.extend(os.pipe())
            fds.extend(os.pipe())
            pid = os.fork()
        except OSError:
            for fd in fds:
                os.close(fd)
            return None
        down_r, down_w, up_r, up_w = fds
        if pid == 0:  # the child: compute, and end without running anything of the parent
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: end quietly
                os.close(down_w)
                os.close(up_r)
                _serve(os.fdopen(down_r, "rb"), os.fdopen(up_w, "wb"), work)
                code = 0
            finally:
                os._exit(code)
        os.close(down_r)
        os.close(up_w)
        return cls(pid, os.fdopen(down_w, "wb"), os.fdopen(up_r, "rb"))

    def send(self, batch: JoinedTexts) -> bool:
        """Give the child a batch to make; False when it cannot take it (it ended)."""
        data = marshal.dumps((batch.text, batch.rows))
        try:
            self.to_child.write(len(data).to_bytes(_HEADER, "little"))
            self.to_child.write(data)
            self.to_child.flush()
        except (OSError, ValueError):
            return False
        return True

    def receive(self) -> Any:
        """The child's ``work`` of the batch last sent, or None when it ended without it."""
        try:
            return _read(self.from_child)
        except (OSError, ValueError, EOFError, TypeError):
            return None

    def close(self, *, kill: bool = False) -> None:
        """End the child (at once if ``kill``: its batch is not wanted) and reap it."""
        if kill:
            try:
                os.kill(self.pid, 9)  # SIGKILL
            except OSError:
                pass
        for pipe in (self.to_child, self.from_child):
            try:
                pipe.close()
            except OSError:
                pass
        try:
            os.waitpid(self.pid, 0)
        except OSError:
            pass


def _read(pipe: IO[bytes]) -> Any:
    """One length-prefixed marshal value, or None at the end of the pipe."""
    header = pipe.read(_HEADER)
    if len(header) < _HEADER:
        return None
    size = int.from_bytes(header, "little")
    data = pipe.read(size)
    return marshal.loads(data) if len(data) == size else None


def _serve(down: IO[bytes], up: IO[bytes], work: Callable[[Any], Any]) -> None:
    """The child's loop: a batch in, its ``work`` out, until the parent closes the pipe."""
    while (found := _read(down)) is not None:
        text, rows = found
        reply = marshal.dumps(work(JoinedTexts(text, rows)))
        up.write(len(reply).to_bytes(_HEADER, "little"))
        up.write(reply)
        up.flush()
