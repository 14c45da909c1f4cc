"""kleio's warnings on stderr: one line each, never an exception.

One ``warn`` for the program's side (:mod:`kleio.client.transport`), the core's
(:mod:`kleio.trial`, which the command line imports it from) and the runner's
(:mod:`kleio.writer`). It lives in the client because the client may import nothing of the
core, while the core may import the client; and it is cheap on the run path: ``sys`` only,
and no package of the core behind it.
"""

from __future__ import annotations

import sys

#: What a line on a terminal must not carry from stored or program-given text: C0 and C1
#: controls, DEL, and the characters that change how text shows without showing themselves
#: (bidirectional overrides, zero-width characters, line separators: those
#: :data:`kleio.cli.common.INVISIBLE` names), each written as Python's repr writes it.
_ESCAPES: dict[int, str] = {
    code: ascii(chr(code))[1:-1]
    for code in (
        *range(0x20),
        *range(0x7F, 0xA0),
        0xAD,
        0x61C,
        0x180E,
        *range(0x200B, 0x2010),
        *range(0x2028, 0x202F),
        *range(0x2060, 0x2065),
        *range(0x2066, 0x2070),
        0xFEFF,
        *range(0xFFF9, 0xFFFC),
    )
}


_ESCAPES_BUT_NEWLINES = {code: text for code, text in _ESCAPES.items() if code != 0x0A}


def one_line(text: str, *, lines: bool = False) -> str:
    """``text`` as one line a terminal shows as it is (see :data:`_ESCAPES`); with
    ``lines``, as lines (its newlines kept: a message of several lines)."""
    return text.translate(_ESCAPES_BUT_NEWLINES if lines else _ESCAPES)


def warn(message: str) -> None:
    """Write ``kleio: warning: <message>`` to stderr, flushed, on one line (what the message
    quotes of a program or a journal cannot drive the terminal).

    A closed or broken stderr (a closed pipe, a terminal gone) loses the warning, never the
    call that had something to say.
    """
    try:
        sys.stderr.write(f"kleio: warning: {one_line(message)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
