"""Secrets in a recorded diff: masked when the code snapshot is taken, put back at checkout.

The diff is masked line by line (:func:`kleio.redact.redact_text`), in every line of every
hunk: added lines, and also context and removed lines, which can quote a secret that is in
the commit (a key being removed from the code). A masked context or removed line would no
longer apply; but it is by definition a line of the commit, which any repository able to
rebuild the trial holds: :func:`restore_patch` puts it back from there before the patch is
applied (:mod:`kleio.codestate`).
"""

from __future__ import annotations

import re

from kleio.redact import REDACTED, might_hold_secrets, redact_text

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; annotations are strings anyway
    from collections.abc import Callable, Iterator

_HUNK = re.compile(r"@@ -(\d{1,10})(?:,(\d{1,10}))? \+\d{1,10}(?:,(\d{1,10}))? @@")
_C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(quoted: str) -> str | None:
    """A path git quoted C-style ("a/\\303\\244.py"), without its quotes; None if malformed."""
    out = bytearray()
    i = 1
    while i < len(quoted) - 1:
        char = quoted[i]
        if char != "\\":
            out += char.encode("utf-8", "surrogateescape")
            i += 1
        elif quoted[i + 1 : i + 4].isdigit() and len(quoted[i + 1 : i + 4]) == 3:
            out.append(int(quoted[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        elif quoted[i + 1 : i + 2] in _C_ESCAPES:
            out.append(_C_ESCAPES[quoted[i + 1]])
            i += 2
        else:
            return None
    return out.decode("utf-8", "surrogateescape")


def _section_path(line: str) -> str | None:
    """The path of ``diff --git a/P b/P`` (the diff is made with --no-renames: one path)."""
    rest = line[len("diff --git ") :]
    if rest.startswith('"'):
        end = 1
        while end < len(rest) and rest[end] != '"':
            end += 2 if rest[end] == "\\" else 1
        path = _unquote(rest[: end + 1]) if end < len(rest) else None
    else:
        half = (len(rest) - 1) // 2
        path = rest[:half] if rest[half : half + 3] == " b/" else None
    return path[2:] if path is not None and path.startswith("a/") else None


def _hunk_lines(lines: list[str]) -> Iterator[tuple[int, int, str | None, int]]:
    """``(index, section, old path, old line number or 0)`` of every line inside a hunk."""
    section, path = -1, None
    old_left = new_left = old_line = 0
    for index, line in enumerate(lines):
        if old_left > 0 or new_left > 0:
            kind = line[:1]
            if kind in (" ", ""):  # "": an empty context line (diff.suppressBlankEmpty)
                yield index, section, path, old_line
                old_line, old_left, new_left = old_line + 1, old_left - 1, new_left - 1
                continue
            if kind == "-":
                yield index, section, path, old_line
                old_line, old_left = old_line + 1, old_left - 1
                continue
            if kind == "+":
                yield index, section, path, 0
                new_left -= 1
                continue
            if kind == "\\":  # "\ No newline at end of file"
                continue
            old_left = new_left = 0  # not a hunk line: the hunk was shorter than it said
        if line.startswith("diff --git "):
            section, path = section + 1, _section_path(line)
        elif line.startswith("@@ "):
            match = _HUNK.match(line)
            if match:
                old_line = int(match.group(1))
                old_left = int(match.group(2) or 1)
                new_left = int(match.group(3) or 1)


def mask_patch(patch: bytes) -> tuple[bytes, dict[str, int]]:
    """Mask the secrets in a git patch; return it and ``{path: values masked in added lines}``.

    Added lines are counted: a checkout shows them masked. Context and removed lines are
    masked too but not counted: :func:`restore_patch` puts them back from the commit.

    Only the text of hunks changes (and the function name git writes after ``@@``), within
    lines: headers, paths, modes and binary patches are kept as git wrote them.
    """
    text = patch.decode("utf-8", "surrogateescape")
    if not might_hold_secrets(text):  # the common case, at C speed
        return patch, {}
    lines = text.split("\n")
    masked, touched = _mask_hunks(lines)
    return "\n".join(_headers_masked(lines, touched)).encode("utf-8", "surrogateescape"), masked


def _mask_hunks(lines: list[str]) -> tuple[dict[str, int], set[int]]:
    """Mask the hunk lines of a patch in place, one file (section) at a time; return the
    values masked in added lines per path, and the sections where something was masked."""
    sections: dict[int, tuple[str | None, list[int]]] = {}
    for index, section, path, _ in _hunk_lines(lines):
        sections.setdefault(section, (path, []))[1].append(index)
    masked: dict[str, int] = {}
    touched: set[int] = set()
    for section, (path, indices) in sections.items():
        content = "\n".join(lines[i][1:] for i in indices)
        new = redact_text(content, path or "").split("\n")
        if len(new) != len(indices):  # cannot happen (masking keeps lines); be safe anyway
            new = [redact_text(lines[i][1:], path or "") for i in indices]
        count = 0
        for i, line in zip(indices, new):
            if line != lines[i][1:]:
                touched.add(section)
                if lines[i][:1] == "+":  # context and removed lines come back at checkout
                    count += max(1, line.count(REDACTED) - lines[i].count(REDACTED))
                lines[i] = lines[i][:1] + line
        if count:
            key = path or "(unknown path)"
            masked[key] = masked.get(key, 0) + count
    return masked, touched


def _headers_masked(lines: list[str], touched: set[int]) -> Iterator[str]:
    """The patch's lines with the function names after ``@@`` masked, and without the
    ``index`` line of a file whose hunks were masked."""
    section, header = -1, False
    for line in lines:  # no hunk line starts with "diff --git ", "@@ " or "index "
        if line.startswith("diff --git "):
            section, header = section + 1, True
        elif line.startswith("@@ "):
            header = False
            match = _HUNK.match(line)
            if match and match.end() < len(line):  # the function name git quotes
                line = line[: match.end()] + redact_text(line[match.end() :], "heading")
        elif header and section in touched and line.startswith("index "):
            # The blob ids of the file before and after: hashes of the unmasked text, which
            # would let a reader test guesses of the secret. git apply does not need them.
            continue
        yield line


def _matches(masked: str, original: str) -> bool:
    """Whether ``original`` is ``masked`` with each ``***`` standing for any text."""
    pieces = masked.split(REDACTED)
    if len(pieces) == 1 or not original.startswith(pieces[0]):
        return False
    position = len(pieces[0])
    for piece in pieces[1:-1]:
        found = original.find(piece, position)
        if found == -1:
            return False
        position = found + len(piece)
    return len(original) - position >= len(pieces[-1]) and original.endswith(pieces[-1])


def restore_patch(patch: bytes, base: Callable[[str], bytes | None]) -> bytes:
    """Put back the context and removed lines that :func:`mask_patch` masked.

    Args:
        patch: the recorded diff.
        base: the content of a path at the trial's commit (None when it has none).
    """
    if REDACTED.encode() not in patch:
        return patch
    lines = patch.decode("utf-8", "surrogateescape").split("\n")
    cache: dict[str, list[str] | None] = {}
    for index, _, path, old_line in _hunk_lines(lines):
        if not old_line or path is None or REDACTED not in lines[index]:
            continue
        if path not in cache:
            content = base(path)
            cache[path] = (
                None if content is None else content.decode("utf-8", "surrogateescape").split("\n")
            )
        original = cache[path]
        if (
            original is not None
            and old_line <= len(original)
            and _matches(lines[index][1:], original[old_line - 1])
        ):
            lines[index] = lines[index][:1] + original[old_line - 1]
    return "\n".join(lines).encode("utf-8", "surrogateescape")


__all__ = ["mask_patch", "restore_patch"]
