"""Helpers shared by the subcommands: parsers, the store, output formatting."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, NoReturn

from kleio.config import Config, load_config
from kleio.errors import UsageError
from kleio.storage import Store, open_store


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become one-line KleioErrors (exit code 64)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", f"see '{self.prog} --help'")


def parser(name: str, description: str, *, json_output: bool = True) -> Parser:
    p = Parser(prog=f"kleio {name}", description=description)
    if json_output:
        p.add_argument("--json", action="store_true", help="print JSON for scripts")
    return p


def config_from(flags: dict[str, Any]) -> Config:
    return load_config({"db": flags.get("db")})


def store_from(flags: dict[str, Any]) -> tuple[Store, Config]:
    config = config_from(flags)
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
