"""The program's output cut into journal lines: progress bars coalesced, bytes kept."""

from __future__ import annotations

#: Longest journal line: a longer one (a progress bar without newline) is cut in pieces.
MAX_LINE = 1 << 16


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
            self.pending = self.pending[cut + 1 :]
        lines = [self._decode(part) for part in parts]
        while len(self.pending) > MAX_LINE:
            lines.append(self._decode(self.pending[:MAX_LINE]))
            self.pending = self.pending[MAX_LINE:]
        return lines

    def flush(self) -> list[str]:
        rest, self.pending = self.pending, b""
        return [self._decode(rest)] if rest else []

    def partial(self) -> str:
        """What a terminal shows of the line not ended yet (a progress bar's latest state)."""
        return self._decode(self.pending) if self.pending else ""

    @staticmethod
    def _decode(raw: bytes) -> str:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if b"\r" in raw:
            raw = raw.rsplit(b"\r", 1)[1]
        return raw.decode("utf-8", "surrogateescape")
