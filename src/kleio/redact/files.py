"""Secrets in the text of source and configuration files (the diff, untracked sources).

In configuration (YAML, ``.env``, shell) a bare value assigned to a secret name is masked;
in code only string literals are (``password = get_password()`` is code). Only characters
within a line change, so a masked diff still applies.
"""

from __future__ import annotations

import os

from kleio.redact.names import is_secret_in_code, is_secret_name
from kleio.redact.values import (
    REDACTED,
    SECRET_TRIGGERS,
    TRIGGERS,
    any_in,
    lazy,
    mask_pem,
    mask_tokens,
    mask_uris,
    redact_value,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # collections.abc imports collections: milliseconds per run
    import re

# Files whose values are often bare words (``password: hunter2`` in YAML, ``TOKEN=x`` in a
# .env or a shell script). In a program, a bare word is code (``password = get_password()``),
# so there only string literals are masked.
_CONFIG_SUFFIXES = frozenset(
    {"", ".yaml", ".yml", ".env", ".ini", ".cfg", ".conf", ".toml", ".properties", ".json",
     ".sh", ".bash", ".zsh", ".txt", ".netrc", ".pgpass", ".npmrc", ".pypirc", ".envrc"}
)  # fmt: skip
# name = value, name: value, "name": "value", name := value, os.environ["NAME"] = "value",
# name: str = "value". Bounded runs around the name, one open-ended run for the value.
_ASSIGNMENT = lazy(
    r"""(?<![A-Za-z0-9_.-])(?P<q>["']?)(?P<name>[A-Za-z_][A-Za-z0-9_.-]{0,99})(?P=q)\]?"""
    r"""[ \t]{0,20}(?::[ \t]{0,20}[A-Za-z_][A-Za-z0-9_.\[\]]{0,60}[ \t]{0,20}(?==))?"""
    r"""(?::=|==|=>|[:=])[ \t]{0,20}"""
    r"""(?P<value>"[^"\r\n]*"|'[^'\r\n]*'|[^\s"'`,;#()\[\]{}]+)"""
)
# --password VALUE inside a script or a README.
_TEXT_OPTION = lazy(
    r"""(?<![A-Za-z0-9_-])--(?P<name>[A-Za-z][A-Za-z0-9_-]{0,99})(?:=|[ \t]{1,20})"""
    r"""(?P<value>"[^"\r\n]*"|'[^'\r\n]*'|[^\s"'`]+)"""
)
_LITERAL = lazy(r""""[^"\r\n]*"|'[^'\r\n]*'""")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_PLAIN_WORDS = frozenset({"true", "false", "null", "none", "nil", "yes", "no", "on", "off", "~"})


def _masked_value(value: str, bare_ok: bool) -> str | None:
    """The masked form of an assigned value, or None when it is not to be masked."""
    quoted = value[:1] in ("'", '"')
    inner = value[1:-1] if quoted else value
    if not inner or inner == REDACTED or inner.startswith("$"):  # empty, done, a $REFERENCE
        return None
    if quoted:
        return value[0] + REDACTED + value[0]
    if not bare_ok or inner.lower() in _PLAIN_WORDS or inner.startswith("-"):
        return None
    return REDACTED


def _redact_literal(match: re.Match[str]) -> str:
    literal = match.group(0)
    return literal[0] + redact_value(literal[1:-1]) + literal[-1]


def _candidate_lines(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` of the lines that hold a word any secret pattern starts with.

    Programs are mostly lines with no such word: a few ``str.find`` passes (C speed) skip
    them, and the regular expressions run on the rest only.
    """
    lower = text.lower()
    if len(lower) != len(text):  # a character lower-cased to two: keep positions
        lower = text.translate(_ASCII_LOWER)
    spans: set[tuple[int, int]] = set()
    for word in TRIGGERS:
        at = lower.find(word)
        while at != -1:
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            end = len(text) if end == -1 else end
            spans.add((start, end))
            at = lower.find(word, end)  # the next line: no line is searched twice per word
    return sorted(spans)


def might_hold_secrets(text: str) -> bool:
    """False when :func:`redact_text` would surely leave ``text`` unchanged (a fast test)."""
    lower = text.lower()
    return "-----begin " in lower or any(word in lower for word in TRIGGERS)


def _redact_line(line: str, bare_ok: bool) -> str:
    def assignment(match: re.Match[str]) -> str:
        name = match.group("name").rsplit(".", 1)[-1]
        if not any_in(SECRET_TRIGGERS, name.lower()):  # most names: a few str.find
            return match.group(0)
        new = _masked_value(match.group("value"), bare_ok)
        if new is None or not is_secret_in_code(name):
            return match.group(0)
        return match.group(0)[: match.start("value") - match.start()] + new

    def option(match: re.Match[str]) -> str:
        new = _masked_value(match.group("value"), True)
        if new is None or not is_secret_name(match.group("name")):
            return match.group(0)
        return match.group(0)[: match.start("value") - match.start()] + new

    lower = line.lower()
    if bare_ok:
        line = redact_value(line)
    else:
        # In code, key=value is a keyword argument (f(api_key=api_key)): pairs are looked for
        # inside string literals only (a URL query, a connection string); URIs and token
        # shapes everywhere (comments, docstrings).
        if "=" in line and any_in(SECRET_TRIGGERS, lower):
            line = _LITERAL.sub(_redact_literal, line)
        line = mask_tokens(mask_uris(line), lower)
    if any_in(SECRET_TRIGGERS, lower):
        line = _ASSIGNMENT.sub(assignment, line)
        if "--" in line:
            line = _TEXT_OPTION.sub(option, line)
    return line


def redact_text(text: str, path: str = "") -> str:
    """Return the text of a source or configuration file with its secrets masked.

    Masks assignments of literals to secret names (``API_KEY = "sk-..."``,
    ``password: hunter2``), ``--password VALUE``, and everything :func:`redact_value`
    masks (URI passwords, token shapes, PEM private keys). Only characters within a line
    change: the line count stays, so a masked diff still applies.

    Args:
        text: the file's text (decode bytes with ``surrogateescape`` to keep them exact).
        path: the file's path; its suffix tells configuration (bare values are secrets too)
            from code (only string literals are).
    """
    if not text:
        return text
    name = os.path.basename(path).lower()
    bare_ok = name.startswith(".env") or os.path.splitext(name)[1] in _CONFIG_SUFFIXES
    text = mask_pem(text)  # the one pattern that spans lines
    out: list[str] = []
    done = 0
    for start, end in _candidate_lines(text):
        out.append(text[done:start])
        out.append(_redact_line(text[start:end], bare_ok))
        done = end
    out.append(text[done:])
    return "".join(out)
