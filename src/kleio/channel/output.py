"""The program's stdout and stderr: teed to the terminal, journalled line by line.

The tee never waits for the journal: lines the writer cannot take now wait here (up to
:data:`MAX_OVERFLOW`), so a program's ``print`` never blocks on a slow or locked journal.
"""

from __future__ import annotations

import collections
import os
import queue
import time

from kleio.channel.lines import LineCutter
from kleio.storage.base import encode
from kleio.writer import Events, Writer

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Callable

#: Output lines that may wait in the I/O thread while the writer is stuck.
MAX_OVERFLOW = 200_000
#: At most one ``partial`` record per output and interval (seconds): the latest state of a
#: line not ended yet (a progress bar redrawn with ``\r``) reaches ``tail -f`` and the
#: dashboard without journalling every redraw.
PARTIAL_EVERY = 0.5


class Outputs:
    """The program's outputs, ``{fd: (kind, terminal fd)}``: read, teed, journalled.

    ``on_end(fd)`` is called when an output reaches its end (the caller stops watching it).
    """

    def __init__(
        self, writer: Writer, outputs: dict[int, tuple[str, int]], on_end: Callable[[int], None]
    ) -> None:
        self.writer = writer
        self.outputs = outputs
        self.on_end = on_end
        self.cutters = {fd: LineCutter() for fd in outputs}
        #: The outputs not at their end yet.
        self.open = set(outputs)
        self.overflow: collections.deque[Events] = collections.deque()
        self.overflow_lines = 0
        #: per output: the partial line journalled last, and when the next one may be.
        self.partial_sent: dict[int, str] = {}
        self.partial_due: dict[int, float] = {}
        self.partial_since: dict[int, float] = {}

    def read(self, fd: int) -> bool:
        """Tee and journal what is waiting on one output; False when nothing was read."""
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return False
        except OSError:  # EIO: the pty's other end is closed
            data = b""
        if not data:
            self.on_end(fd)
            self.open.discard(fd)
            self.journal(fd, self.cutters[fd].flush())
            return False
        _write_all(self.outputs[fd][1], data)
        self.journal(fd, self.cutters[fd].feed(data))
        return True

    def read_once(self) -> None:
        """One read of every open output (a grandchild printing for ever starves nothing)."""
        for fd in list(self.open):
            self.read(fd)

    def partials(self, now: float) -> None:
        """Journal the latest state of each unfinished line, at most every PARTIAL_EVERY.

        Readers show a ``partial`` record only until the line it belongs to ends (``kleio
        cat`` never shows one that a full line followed).
        """
        for fd in self.open:
            text = self.cutters[fd].partial()
            if not text:
                continue
            # A line printed in pieces (print() writes its arguments one by one) ends
            # within microseconds: only a line left unfinished for a while is a progress bar.
            since = self.partial_since.setdefault(fd, now)
            if (
                now - since < PARTIAL_EVERY
                or text == self.partial_sent.get(fd)
                or now < self.partial_due.get(fd, 0.0)
            ):
                continue
            self.partial_sent[fd] = text
            self.partial_due[fd] = now + PARTIAL_EVERY
            self.journal(fd, [text], partial=True)

    def journal(self, fd: int, lines: list[str], partial: bool = False) -> None:
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
            self.writer.problem(
                "output_lines_dropped",
                "the journal is too slow: output lines "
                "are dropped (the terminal still shows them) and counted",
                len(lines),
            )
            return
        self.overflow.append(item)
        self.overflow_lines += len(lines)

    def flush_overflow(self, wait: bool = False) -> None:
        """Hand the waiting lines to the writer: those it takes now, or all (``wait``)."""
        while self.overflow:
            try:
                if wait:
                    self.writer.queue.put(self.overflow[0])
                else:
                    self.writer.queue.put_nowait(self.overflow[0])
            except queue.Full:
                return
            self.overflow_lines -= len(self.overflow.popleft().datas)

    def finish(self) -> None:
        """Journal the unfinished lines and every waiting line (the program has ended)."""
        for fd in self.open:
            self.journal(fd, self.cutters[fd].flush())
        self.flush_overflow(wait=True)


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
