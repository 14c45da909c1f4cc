"""Helpers shared by the subcommands: parsers, the store, output formatting."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, NoReturn

from kleio.config import Config, load_config
from kleio.errors import StoreUnavailable, UsageError
from kleio.storage import Store, open_store, scheme_of, sqlite_path


class NoJournal(StoreUnavailable):
    """The SQLite journal a reading command was pointed at does not exist."""


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
            if (token in self.DASH_VALUES and i + 1 < len(given)
                    and given[i + 1].startswith("-") and len(given[i + 1]) > 1):
                joined.append(f"{token}={given[i + 1]}")
                i += 2
            else:
                joined.append(token)
                i += 1
        return super().parse_args(joined, namespace)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", f"see '{self.prog} --help'")


def parser(name: str, description: str, *, json_output: bool = True) -> Parser:
    p = Parser(prog=f"kleio {name}", description=description)
    if json_output:
        p.add_argument("--json", action="store_true", help="print JSON for scripts")
    return p


def config_from(flags: dict[str, Any]) -> Config:
    return load_config({"db": flags.get("db")})


def store_from(flags: dict[str, Any], *, create: bool = False) -> tuple[Store, Config]:
    """Open the configured journal.

    Reading commands never create an SQLite journal: a mistyped ``--db`` path must not
    answer "no trials" from a new, empty file.

    Raises:
        NoJournal: the SQLite file does not exist and ``create`` is false.
    """
    config = config_from(flags)
    if not create and scheme_of(config.db) == "sqlite":
        path = sqlite_path(config.db)
        if not os.path.exists(path):
            raise NoJournal(
                f"there is no journal at {path} yet",
                "run a trial first (e.g. 'kleio python train.py'), or point --db or KLEIO_DB "
                "at an existing journal",
            )
    return open_store(config.db), config


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")


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
    """Render rows as aligned columns; the last column is clipped to ``max_last``."""
    rows = [[*row[:-1], _clip(row[-1], max_last)] for row in rows] if rows else rows
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
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape") + b"\n")
