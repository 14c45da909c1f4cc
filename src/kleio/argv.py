"""Command lines: one rule for walking a program's options (DESIGN §2).

Used for a trial's identity (:mod:`kleio.identity`), its parsed configuration (the
``config`` field, ``kleio diff``), the option overrides of ``kleio branch``, and wherever
else kleio reads a program's arguments. The rule, which every reader shares:

* the program's arguments start after the program, or for Python after the interpreter's
  own options and the script (``-m module``, ``-c code``): see :func:`split_program`;
* a token starting with ``-`` (but not a negative number) is an option; ``--`` ends the
  options, everything after it is positional;
* ``--name=value`` gives ``name`` that value; ``--name`` followed by a token that is not an
  option takes that token as its value; followed by an option, ``--``, or nothing, it is a
  flag.

The same experiment is the same trial
-------------------------------------

Without the program's parser, kleio cannot know whether ``--verbose file.txt`` is a flag and
a positional argument or an option and its value. :func:`identity_form` spells a command so
that the spellings that mean the same experiment give the same trial, and only those:

* ``--epochs=5`` and ``--epochs 5`` are the same option (a parser for which ``--epochs=5``
  is valid reads ``--epochs 5`` the same way: argparse, click, typer, absl...). Not so for a
  single-dash option: click and getopt read ``-n=3`` as the value ``=3``;
* the order of named options does not matter when each appears once, and positional
  arguments keep their order.

An option whose next token looks like a path (it holds ``/``, starts with ``~``, or has a dot
without being a number: ``file.txt``, ``conf/a.yaml``) may be a flag followed by a positional
argument. Such a pair keeps its spelling and its place among the other such pairs, so that a
reordering that would reorder positional arguments is never taken for the same experiment.
A command that repeats an option, or has a positional argument after an option's value
(``--lr 0.1 data.csv``: ``data.csv`` may be a second value of ``--lr``), is kept exactly as
typed. The rule errs on the side of a new trial: two spellings it does not recognize as one
experiment are two trials, never one trial for two experiments. The one assumption left is
that a word or number after an option is that option's value, as kleio reads it everywhere.

Pure Python on the start path of every run: no import beyond ``os``.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; annotations are strings anyway
    from collections.abc import Sequence
    from typing import Any

# Python options that take a separate argument (``python -W ignore train.py``).
_PYTHON_OPTIONS_WITH_ARGUMENT = frozenset({"-W", "-X", "--check-hash-based-pycs"})


def is_python(program: str) -> bool:
    """Tell whether ``program`` (a name or a path) is a Python interpreter.

    ``python``, ``python3``, ``python3.11``, ``pypy3``, ``pythonw``, ``python.exe``.
    """
    name = os.path.basename(program).lower()
    if name.endswith(".exe"):
        name = name[:-4]
    if name.endswith("w"):
        name = name[:-1]
    for prefix in ("python", "pypy"):
        if name.startswith(prefix):
            rest = name[len(prefix) :]
            return all(char in "0123456789." for char in rest)
    return False


def is_option(token: str) -> bool:
    """Tell whether a command-line token is an option (``-x``, ``--lr``), not a value like -1."""
    if len(token) < 2 or not token.startswith("-"):
        return False
    try:
        float(token)
    except ValueError:
        return True
    return False  # a negative number is a value, not an option


def split_program(argv: Sequence[str]) -> tuple[str | None, int]:
    """Return (script or module, index of its first argument) for a command line.

    For ``python [options] script args``, ``python -m module args``, ``python -c code args``
    the script is what Python runs; for any other program it is the program itself.
    """
    if not argv:
        return None, 0
    if not is_python(argv[0]):
        return argv[0], 1
    index = 1
    while index < len(argv):
        token = argv[index]
        if token in ("-m", "-c"):
            if index + 1 < len(argv):
                return (argv[index + 1] if token == "-m" else None), index + 2
            return None, len(argv)
        if token.startswith("-m") and len(token) > 2:
            return token[2:], index + 1
        if token.startswith("-c") and len(token) > 2:
            return None, index + 1
        if token == "-":
            return None, index + 1
        if token == "--":
            index += 1
            break
        if not token.startswith("-"):
            break
        index += 2 if token in _PYTHON_OPTIONS_WITH_ARGUMENT else 1
    if index < len(argv):
        return argv[index], index + 1
    return None, len(argv)


def script_of(argv: Sequence[str]) -> str | None:
    """The script a command runs, as typed (``train.py`` in ``python -u train.py``), or None.

    For ``python -m module`` it is the module name; for ``python -c`` or a bare interpreter,
    None; for any other program, the program itself.
    """
    return split_program(argv)[0]


def walk(args: Sequence[str]) -> list[tuple[str, str | None, list[str]]]:
    """Split a program's arguments into ``(kind, name, tokens)`` items, by the module's rule.

    ``kind`` is ``"opt"`` (``name`` is the option as typed before any ``=``, tokens are
    ``["--lr", "0.1"]``, ``["--lr=0.1"]`` or ``["--flag"]``), ``"pos"`` (one positional
    token) or ``"end"`` (``--`` and everything after it).
    """
    items: list[tuple[str, str | None, list[str]]] = []
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if token == "--":
            items.append(("end", None, list(args[index - 1 :])))
            break
        if not is_option(token):
            items.append(("pos", None, [token]))
            continue
        name, eq, _ = token.partition("=")
        if not eq and index < len(args) and not is_option(args[index]) and args[index] != "--":
            items.append(("opt", name, [token, args[index]]))
            index += 1
        else:
            items.append(("opt", name, [token]))
    return items


def parse_config(argv: Sequence[str]) -> dict[str, Any]:
    """Extract the configuration of a command: its options and positional arguments.

    ``--lr 0.1`` and ``--lr=0.1`` give ``{"lr": "0.1"}``; a flag followed by another option
    or by nothing gives ``True``; ``-x 3`` gives ``{"x": "3"}``; a repeated option gives a
    list; arguments after the script go to ``"_pos"``. Values are kept as typed strings. The
    program, the interpreter's own options and the script (or ``-m`` module) are not part of
    the configuration.
    """
    _, start = split_program(argv)
    config: dict[str, Any] = {}
    positionals: list[str] = []
    for kind, _, tokens in walk(list(argv[start:])):
        if kind == "end":
            positionals.extend(tokens[1:])
            continue
        if kind == "pos":
            positionals.append(tokens[0])
            continue
        name, eq, value = tokens[0].lstrip("-").partition("=")
        found: Any = value if eq else (tokens[1] if len(tokens) > 1 else True)
        if name not in config:
            config[name] = found
        elif isinstance(config[name], list):
            config[name].append(found)
        else:
            config[name] = [config[name], found]
    if positionals:
        config["_pos"] = positionals
    return config


def apply_overrides(argv: Sequence[str], overrides: Sequence[str]) -> list[str]:
    """Return ``argv`` with the option values given in ``overrides`` replaced or added.

    ``--lr 0.05`` and ``--lr=0.05`` replace the parent's ``--lr`` (whatever its spelling);
    a repeated override (``--tag a --tag b``) replaces every occurrence; options the parent
    lacks are appended (before a ``--`` that ends its options). Positional arguments cannot
    be changed.

    Raises:
        UsageError: ``overrides`` holds a positional argument.
    """
    from kleio.errors import UsageError

    argv = list(argv)
    _, start = split_program(argv)
    wanted: dict[str, list[list[str]]] = {}
    for kind, name, tokens in walk(overrides):
        if kind != "opt" or name is None:
            shown = tokens[0] if kind == "pos" else "--"
            raise UsageError(
                f"a positional argument cannot be changed by a branch ({shown!r})",
                "give option values only, e.g. 'kleio branch ID --lr 0.05'; run the new "
                "command itself to change its positional arguments",
            )
        wanted.setdefault(name, []).append(tokens)
    result = argv[:start]
    done: set[str] = set()
    tail: list[str] = []
    for kind, name, tokens in walk(argv[start:]):
        if kind == "end":
            tail = tokens
        elif kind == "opt" and name in wanted:
            if name not in done:
                done.add(name)
                for replacement in wanted[name]:
                    result.extend(replacement)
        else:
            result.extend(tokens)
    for name, replacements in wanted.items():
        if name not in done:
            for replacement in replacements:
                result.extend(replacement)
    return result + tail


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def looks_like_path(token: str) -> bool:
    """Whether a token may name a file: it holds a separator, starts with ``~``, or has a dot
    without being a number (``file.txt``, ``conf/a.yaml``, ``~/data``; not ``0.1``, ``1e-3``)."""
    if "/" in token or os.sep in token or token.startswith("~"):
        return True
    return "." in token and not _is_number(token)


def identity_form(command: Sequence[str]) -> list[str]:
    """The spelling of a command that identifies its trial (see the module's rule).

    The program, the interpreter's options and the script come first as typed; then the
    positional arguments that precede every option, in order; then the options in name order,
    each spelled ``--name=value``, ``--name``, or as typed for a single-dash option
    (``-n 3``); then, in their order, the options followed
    by a path-like token (kept as two tokens); then ``--`` and what follows it. A command the
    rule cannot safely reorder is returned unchanged.
    """
    command = list(command)
    _, start = split_program(command)
    items = walk(command[start:])
    leading: list[str] = []
    free: list[tuple[str, list[str]]] = []
    ordered: list[str] = []
    tail: list[str] = []
    seen: set[str] = set()
    options_started = False
    for kind, name, tokens in items:
        if kind == "end":
            tail = tokens
        elif kind == "pos":
            if options_started:
                return command  # after an option's value: perhaps a second value of it
            leading.append(tokens[0])
        else:
            assert name is not None
            if name in seen:
                return command  # a repeated option: its occurrences' order may matter
            seen.add(name)
            options_started = True
            if len(tokens) == 2 and looks_like_path(tokens[1]):
                ordered.extend(tokens)  # perhaps a flag and a positional argument
            elif len(tokens) == 2 and name.startswith("--"):
                free.append((name, [f"{name}={tokens[1]}"]))
            else:
                # -n 3 stays two tokens: click and getopt read -n=3 as the value "=3".
                free.append((name, tokens))
    free.sort(key=lambda unit: unit[0])
    return [
        *command[:start],
        *leading,
        *(token for _, unit in free for token in unit),
        *ordered,
        *tail,
    ]


__all__ = [
    "apply_overrides",
    "identity_form",
    "is_option",
    "is_python",
    "looks_like_path",
    "parse_config",
    "script_of",
    "split_program",
    "walk",
]
