"""Helpers shared by the subcommands: parsers, the store, output formatting."""

from __future__ import annotations

import argparse
import codecs
import json
import math
import os
import re
import sys
import time
from typing import Any, NoReturn

from kleio.config import Config, load_config
from kleio.errors import UsageError
from kleio.storage import Store, open_existing, open_store


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become one-line KleioErrors (exit code 64).

    ``--sort -created`` works: argparse alone would take ``-created`` for an option.
    """

    DASH_VALUES = ("--sort",)

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        given = list(sys.argv[1:] if args is None else args)
        joined: list[str] = []
        i = 0
        while i < len(given):
            token = given[i]
            # '--' is never a value: it ends the options (argparse alone turns '--sort=--'
            # into an empty list).
            if (
                token in self.DASH_VALUES
                and i + 1 < len(given)
                and given[i + 1] != "--"
                and given[i + 1].startswith("-")
                and len(given[i + 1]) > 1
            ):
                joined.append(f"{token}={given[i + 1]}")
                i += 2
            else:
                joined.append(token)
                i += 1
        parsed = super().parse_args(joined, namespace)
        for action in self._actions:
            # argparse drops a '--' given as '--OPTION=--' and stores [] for a one-value option.
            value = getattr(parsed, action.dest, None)
            values = value if isinstance(action, argparse._AppendAction) else [value]
            if (
                action.nargs is None
                and action.option_strings
                and any(isinstance(item, list) for item in values or ())
            ):
                self.error(f"argument {'/'.join(action.option_strings)}: expected one argument")
        return parsed

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {one_line(message)}", f"see '{self.prog} --help'")


#: Characters that change how text around them shows without showing themselves, which
#: Python's repr escapes too: the soft hyphen, bidirectional marks, embeddings, overrides
#: and isolates (text that reads in another order than it runs), zero-width characters,
#: the line and paragraph separators, the byte order mark, interlinear annotations.
INVISIBLE = (
    "\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
)
_UNPRINTABLE = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{INVISIBLE}]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 and C1 controls and DEL, the invisible characters; and the undecodable bytes 0x80-0x9f
# (lone surrogates that emit() writes back as those bytes, which an 8-bit terminal reads as
# C1 controls).
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f\udc80-\udc9f{INVISIBLE}]")
_CONTROL_IN_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\udc80-\udc9f{INVISIBLE}]")


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape", "backslashreplace").decode("ascii")


def one_line(text: str) -> str:
    """Escape line breaks, control characters and undecodable bytes of user-given text.

    An error must stay one line on stderr whatever argv held (a newline, ``\\xff``).
    """
    return _UNPRINTABLE.sub(_escaped, text)


def printable(text: str, *, lines: bool = False) -> str:
    """Journalled text as human output shows it: control characters escaped as Python
    writes them (``\\x1b``, ``\\n``, ``\\x85``), so no text a program or a user stored can
    move the cursor, retitle the terminal or split a table row.

    Every renderer of journalled text (:func:`table`, ``info``, ``diff``, ``note``, the
    cells of ``cat --statistics``) goes through this one function; the output a program
    printed (``cat ID``, ``tail``) is replayed as it was, and JSON escapes controls itself.
    Undecodable bytes (lone surrogates) stay for :func:`emit` to write back as they were,
    but those that would be C1 controls. Escaping twice changes nothing; text with nothing
    to escape is returned itself.

    Args:
        text: the text to show.
        lines: keep line breaks and tabs (a note, a code diff: text of several lines).
    """
    pattern = _CONTROL_IN_LINES if lines else _CONTROL
    return text if pattern.search(text) is None else pattern.sub(_escaped, text)


def printable_values(value: Any, depth: int = 0) -> Any:
    """``value`` (a trial's record: dicts, lists, scalars) with :func:`printable` applied to
    every string in it, keys too; containers deeper than :data:`MAX_JSON_DEPTH` shown as
    :data:`TOO_DEEP`."""
    if isinstance(value, str):
        return printable(value)
    if not isinstance(value, (dict, list, tuple)):
        return value
    if depth >= MAX_JSON_DEPTH:
        return TOO_DEEP
    if isinstance(value, dict):
        return {printable_values(k): printable_values(v, depth + 1) for k, v in value.items()}
    return [printable_values(item, depth + 1) for item in value]


def text(value: str) -> str:
    """An argparse type for a value compared with the journal (a tag): valid UTF-8 text.

    Undecodable bytes in argv arrive as lone surrogates, which no backend can store or match.
    """
    if _SURROGATE.search(value):
        raise argparse.ArgumentTypeError(f"not valid UTF-8 text: {value[:40]!r}")
    return value


#: The longest tag: a name for filters and tables (longer text goes in a note).
MAX_TAG = 200


def check_tag(name: str, hint: str, *, adding: bool = True) -> str:
    """Return ``name`` if it can be a tag, else raise one UsageError ending with ``hint``
    (how to write a tag with this command) or with what to do instead.

    A tag is non-empty text without commas, spaces at the ends, control or invisible
    characters (:data:`INVISIBLE`). One being added must also not look like a secret (the
    detector that masks notes and commands, :func:`kleio.redact.redact_message`): a tag is
    an identifier shown, exported and matched as it is, so it is refused rather than masked;
    and it is at most
    :data:`MAX_TAG` characters. Removing one (``adding=False``) takes any non-empty tag
    stored before, whatever it holds.
    """
    if not adding and name:  # a tag stored before these rules (a comma, a control) goes too
        return name
    bad = not name.strip() or _UNPRINTABLE.search(name) is not None
    if bad or name != name.strip() or "," in name:
        raise UsageError(
            f"not a tag: '{one_line(name)[:60]}' (tags are non-empty text without commas, "
            "spaces at the ends or control characters)",
            hint,
        )
    if not adding:
        return name
    from kleio.redact import redact_message

    masked = redact_message(name)
    if masked != name:
        raise UsageError(
            f"refusing the tag {one_line(masked)[:80]!r}: it looks like a secret (a token, or "
            "a password=... pair), and tags are shown and exported as they are",
            "tag with a name that holds no secret",
        )
    if len(name) > MAX_TAG:
        raise UsageError(
            f"a tag is at most {MAX_TAG} characters; this one has {len(name)}",
            "give it a short name; longer text goes in a note ('kleio note ID TEXT')",
        )
    return name


#: The largest count a backend accepts (a signed 64-bit integer); more means "all".
MAX_COUNT = (1 << 63) - 1


def count(given: str) -> int:
    """An argparse type for ``--limit``/``-n``: a whole number, 0 or more.

    A count beyond what a database integer holds (20 digits) means "all of them".
    """
    try:
        value = int(given)
    except ValueError:  # also more than 4300 digits
        raise argparse.ArgumentTypeError(f"not a whole number: {given[:40]!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return min(value, MAX_COUNT)


def parser(name: str, description: str, *, json_output: bool = True) -> Parser:
    p = Parser(prog=f"kleio {name}", description=description)
    # (taken out of the arguments before they are parsed: kleio.cli._lift_db; listed here
    # so that the command's --help shows it)
    p.add_argument(
        "--db",
        metavar="URI",
        help="journal to use (sqlite://PATH, mongodb://..., mongodb+srv://...), "
        "as 'kleio --db URI COMMAND' (the default and where it comes from: 'kleio config')",
    )
    if json_output:
        p.add_argument("--json", action="store_true", help="print JSON for scripts")
    return p


def config_from(flags: dict[str, Any]) -> Config:
    return load_config({"db": flags.get("db")})


def store_from(flags: dict[str, Any], *, create: bool = False) -> tuple[Store, Config]:
    """Open the configured journal.

    Reading commands never create an SQLite journal: a mistyped ``--db`` path must not
    answer "no trials" from a new, empty file; nor turn an empty file (``: > x.db``), which
    SQLite would take for a new database, into one.

    Raises:
        NoJournal: the SQLite file does not exist, or is empty, and ``create`` is false.
    """
    config = config_from(flags)
    return (open_store(config.db) if create else open_existing(config.db)), config


# -- JSON output ------------------------------------------------------------------------------
#
# ``--json`` output is RFC 8259 JSON in UTF-8 whatever the journal holds (documented in
# docs/reference/cli.rst, "JSON output"): Python's json module would write NaN and Infinity,
# which strict parsers reject, and lone surrogates (undecodable output bytes, kept by
# surrogateescape) cannot be encoded to UTF-8 at all.

#: Non-finite floats become these strings, the names JavaScript and most parsers print.
NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
#: A value too deep for the encoders is cut at this depth, the rest shown as TOO_DEEP.
MAX_JSON_DEPTH = 400
TOO_DEEP = "<nested too deeply>"


def _clean(value: Any, cut: int | None = None, depth: int = 0) -> Any:
    """Return ``value`` with non-finite floats and lone surrogates replaced (see above), and
    containers deeper than ``cut`` replaced by :data:`TOO_DEEP`."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, float):
        return value if math.isfinite(value) else NON_FINITE[repr(value)]
    if value is None or isinstance(value, (bool, int)):
        return value
    if cut is not None and depth >= cut:
        return TOO_DEEP
    if isinstance(value, dict):
        return {_clean_key(key): _clean(item, cut, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item, cut, depth + 1) for item in value]
    return _clean(str(value))


def _clean_key(key: Any) -> Any:
    if isinstance(key, (str, float)):
        return _clean(key)
    # json.dumps accepts these keys as they are and refuses any other type.
    return key if key is None or isinstance(key, (bool, int)) else _clean(str(key))


# One encoder for every line: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=str)


#: What JSON may hold raw but a terminal must not get (DEL, C1 controls, the invisible
#: characters): written as ``\\u`` escapes, the same JSON value.
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{INVISIBLE}]")


def _json_escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _dumps(value: Any) -> bytes:
    text = _ENCODER.encode(value)
    if _JSON_UNSAFE.search(text) is not None:
        text = _JSON_UNSAFE.sub(_json_escaped, text)
    return text.encode("utf-8") + b"\n"  # UnicodeEncodeError on a surrogate


def json_line(value: Any) -> bytes:
    """Encode ``value`` as one line of RFC 8259 JSON in UTF-8 (with the final newline).

    The common case costs one ``json.dumps``; only a value that is not valid JSON as it
    stands (NaN, lone surrogates, a type JSON lacks) pays for :func:`_clean`, and only one
    nested too deeply for the encoders (hundreds of levels) is cut.
    """
    try:
        return _dumps(value)
    except (ValueError, TypeError, RecursionError):  # UnicodeEncodeError is a ValueError
        pass
    try:
        return _dumps(_clean(value))
    except RecursionError:
        return _dumps(_clean(value, cut=MAX_JSON_DEPTH))


def print_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout, as UTF-8 bytes whatever the locale's encoding."""
    stdout_bytes().write(json_line(value))


def when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def table(headers: list[str], rows: list[list[str]], max_last: int = 80) -> str:
    """Render rows as aligned columns; the last column is clipped to ``max_last``.

    Headers and cells are shown :func:`printable` (a metric named ``acc\\x1b[2J``)."""
    headers = [printable(h) for h in headers]
    rows = [[*map(printable, row[:-1]), _clip(printable(row[-1]), max_last)] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines) + "\n"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def write_line(text: str) -> None:
    """Write journalled text back as the bytes the program printed."""
    if not isinstance(text, str):  # a damaged event: show it rather than fail on it
        text = str(text)
    (sys.stdout or _discarding()).buffer.write(text.encode("utf-8", "surrogateescape") + b"\n")


def _output_errors(error: UnicodeError) -> tuple[str | bytes, int]:
    """Encoding errors of human output: undecodable bytes (from argv, file names, program
    output) are written back as they were; characters the terminal's encoding lacks are
    escaped (``\\u20ac``)."""
    assert isinstance(error, UnicodeEncodeError)
    chunk = error.object[error.start : error.end]
    if all("\udc80" <= char <= "\udcff" for char in chunk):
        return bytes(ord(char) - 0xDC00 for char in chunk), error.end
    return codecs.backslashreplace_errors(error)


codecs.register_error("kleio-output", _output_errors)


def emit(text: str) -> None:
    """Write human output (tables, reports) to stdout, whatever text it holds.

    ``print`` raises UnicodeEncodeError on a lone surrogate (a command line holding
    undecodable bytes) unless the locale is C, and on characters a non-UTF-8 locale lacks.
    """
    out = stdout_bytes()
    out.write(text.encode(sys.stdout.encoding or "utf-8", "kleio-output"))


def _discarding() -> Any:
    # Started with stdout closed ('kleio ls >&-'): Python leaves sys.stdout None, and print()
    # discards; so do kleio's own writers.
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    return sys.stdout


def stdout_bytes() -> Any:
    """stdout as bytes, after what was written to it as text: tables and JSON go this way."""
    out = sys.stdout or _discarding()
    out.flush()
    return out.buffer


def human_size(count: int, small: str = "B") -> str:
    """``count`` bytes for people: ``512 B``, ``1.5 KiB``... (``small``: the word for bytes)."""
    value = float(count)
    for unit in (small, "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {small}" if unit == small else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} {small}"
