"""Hand parsing of the options that come before a wrapped program's own arguments.

``kleio run`` and ``kleio save`` take a few options, then a program whose arguments must stay
untouched (argparse would try to read them). Kept free of argparse for start-up speed.
"""

from __future__ import annotations

import os
import sys

from kleio.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any


def parse_leading(
    argv: list[str],
    *,
    prog: str,
    flags: dict[str, str],
    example: str,
    values: dict[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Split ``argv`` into kleio's options and the program's command line.

    Args:
        argv: the arguments after the subcommand.
        prog: the subcommand's name, for error messages (``kleio run``).
        flags: boolean flags, option spelling -> option name.
        values: options taking one value (``--stop-on nan`` or ``--stop-on=nan``), option
            spelling -> option name (None when not given).
        example: a command line shown when ``--tag`` lacks its value.

    ``--tag TAG`` / ``--tag=TAG`` (repeatable) fill ``options["tags"]``; ``-h``/``--help``
    sets ``options["help"]``; ``--`` ends the options.

    Raises:
        UsageError: an unknown option, or a ``--tag`` without a value or one that cannot be a
            tag (:func:`check_tags`).
    """
    values = values or {}
    options: dict[str, Any] = {name: False for name in flags.values()}
    options.update({name: None for name in values.values()})
    options["tags"] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        spelling = token.partition("=")[0]
        if token == "--":
            i += 1
            break
        if token in ("-h", "--help"):
            options["help"] = True
            return options, []
        if token in flags:
            options[flags[token]] = True
        elif spelling == "--tag" or spelling in values:
            i, value = _value_of(argv, i, prog=prog, example=example)
            if spelling == "--tag":
                options["tags"].append(value)
            else:
                options[values[spelling]] = value
        elif token.startswith("-"):
            valid = ", ".join(sorted(set(flags) | set(values) | {"--tag"}))
            raise UsageError(
                f"unknown option {token!r} for {prog}",
                f"valid options are {valid}; put '--' before a program whose name starts with '-'",
            )
        else:
            break
        i += 1
    check_tags(options["tags"])
    return options, argv[i:]


def check_tags(tags: list[str]) -> None:
    """Refuse a ``--tag`` that cannot be a tag, as ``kleio tag`` does (empty, a comma or a
    control character, longer than 200 characters, or looking like a secret).

    Raises:
        UsageError: the first such tag.
    """
    if tags:  # (the checks import kleio.cli.common: only a run with tags pays for it)
        from kleio.cli.common import check_tag

        for tag in tags:
            check_tag(tag, "give --tag a name, e.g. --tag sweep1")


def _value_of(argv: list[str], i: int, *, prog: str, example: str) -> tuple[int, str]:
    """The value of the option at ``argv[i]`` (``--opt=VALUE`` or ``--opt VALUE``) and the
    index of the last word it took."""
    token = argv[i]
    if "=" in token:
        return i, token.partition("=")[2]
    if i + 1 >= len(argv):
        if token == "--tag":
            raise UsageError("--tag needs a value", f"e.g. {example}")
        raise UsageError(f"{token} needs a value", f"see '{prog} --help'")
    return i + 1, argv[i + 1]


def program_or_help(
    parsed: tuple[dict[str, Any], list[str]], *, help_text: str, verb: str, example: str
) -> tuple[dict[str, Any], list[str], str] | None:
    """What :func:`parse_leading` found, and the current directory; None once ``--help``
    printed ``help_text``.

    Raises:
        UsageError: no program was given (``no command to VERB``), or the current directory
            was removed under the shell.
    """
    options, command = parsed
    if options.get("help"):
        sys.stdout.write(help_text)
        return None
    if not command:
        raise UsageError(f"no command to {verb}", f"give one, e.g. '{example}'")
    try:
        cwd = os.getcwd()
    except FileNotFoundError:
        raise UsageError(
            "the current directory no longer exists",
            "change to an existing directory and run again",
        ) from None
    return options, command, cwd
