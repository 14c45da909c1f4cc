"""Parsers of setting values: each takes the setting's name and a value as given (YAML,
an environment variable, a flag) and returns it typed, or raises a ConfigError that names
the setting, the bad value (clipped) and what is valid.
"""

from __future__ import annotations

import math

from kleio.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any, Callable


class Bounds:
    """The documented range of a numeric setting (both ends included)."""

    __slots__ = ("high", "low", "unit")

    def __init__(self, low: float, high: float, unit: str) -> None:
        self.low, self.high, self.unit = low, high, unit


def shown(value: Any) -> str:
    """A bad value as an error message quotes it: its repr, clipped to stay one short line.

    reprlib bounds the work too: YAML aliases can make a value whose whole repr is huge.
    """
    import reprlib

    shorten = reprlib.Repr()
    shorten.maxstring = shorten.maxother = 60
    shorten.maxlevel, shorten.maxlist, shorten.maxdict = 2, 4, 4
    text = shorten.repr(value)
    return text if len(text) <= 60 else text[:50] + "…" + text[-9:]


def plain(number: float) -> str:
    """A bound as the docs write it: 3600, 0.05, 2592000 (never 2.592e+06)."""
    return str(int(number)) if number == int(number) else repr(number)


def bounded_float(bounds: Bounds) -> Callable[[str, Any], float]:
    """A parser for a finite number of ``bounds.unit`` between ``bounds.low`` and ``.high``.

    ``nan``, ``inf`` and values such as ``1e308`` are refused: an infinite flush interval
    journals nothing, and a heartbeat interval beyond what a timer accepts crashes the runner.
    """

    def parse(name: str, value: Any) -> float:
        # bool is an int to Python, but 'heartbeat_interval: yes' is a mistake, not 1 second.
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"setting {name!r} must be a number, not {shown(value)}")
        try:
            number = float(value)
        except (ValueError, OverflowError):
            raise ConfigError(f"setting {name!r} must be a number, not {shown(value)}") from None
        if not (math.isfinite(number) and bounds.low <= number <= bounds.high):
            raise ConfigError(
                f"setting {name!r} must be a finite number from {plain(bounds.low)} to "
                f"{plain(bounds.high)} {bounds.unit}, not {shown(value)}"
            )
        return number

    return parse


#: ``512KiB``: compiled on first use (:mod:`re` stays off the start path).
_SIZE = r"\s*([0-9]+)\s*((?:[km]i?)?b)?\s*"
_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2}


def bounded_size(bounds: Bounds) -> Callable[[str, Any], int]:
    """A parser for a whole number of bytes: ``1048576``, ``512KiB``, ``4MiB``, ``4MB``."""

    def parse(name: str, value: Any) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            import re

            match = re.fullmatch(_SIZE, value, re.IGNORECASE)
            if match:
                # More digits than any bound has: out of range, without converting a huge
                # string (int() refuses more than 4300 digits).
                digits = match.group(1).lstrip("0") or "0"
                number = (int(digits) if len(digits) <= 20 else 10**20) * _SIZE_UNITS[
                    (match.group(2) or "").lower()
                ]
        if number is None:
            raise ConfigError(
                f"setting {name!r} must be a whole number of bytes (e.g. 1048576 or 1MiB), "
                f"not {shown(value)}"
            )
        if not bounds.low <= number <= bounds.high:
            raise ConfigError(
                f"setting {name!r} must be from {plain(bounds.low)} to {plain(bounds.high)} "
                f"{bounds.unit}, not {shown(value)}"
            )
        return number

    return parse


def parse_string(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"setting {name!r} must be a non-empty string, not {shown(value)}")
    if "\x00" in value:
        raise ConfigError(f"setting {name!r} must not hold a NUL character")
    return value


def parse_checks(name: str, value: Any) -> dict[str, Any]:
    """``checks:``: ``{CHECK: {THRESHOLD: NUMBER}}``, ``{CHECK: off}``; JSON text in the
    environment. Which checks and thresholds exist is checked by :mod:`kleio.checks`."""
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(
                f"setting {name!r} must be JSON text in the environment, e.g. "
                '\'{"silent": {"after": 600}}\''
            ) from None
    if not isinstance(value, dict):
        raise ConfigError(
            f"setting {name!r} must map check names to thresholds (e.g. "
            f"{{silent: {{after: 600}}, plateau: off}}), not {shown(value)}"
        )
    found: dict[str, Any] = {}
    for check, given in value.items():
        if given in (False, "off", "false", "no"):
            found[str(check)] = False
        elif given in (True, None, "on", "true", "yes"):
            found[str(check)] = True
        elif isinstance(given, dict):
            found[str(check)] = {str(k): v for k, v in given.items()}
        else:
            raise ConfigError(
                f"setting {name!r}: check {str(check)!r} must have a mapping of "
                f"thresholds, or off, not {shown(given)}"
            )
    return found


def parse_names(name: str, value: Any) -> list[str]:
    """A list of names, or the text ``a,b`` (``--stop-on nan,diverged``)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise ConfigError(
            f"setting {name!r} must be a list of check names (e.g. "
            f"[nan, diverged]), not {shown(value)}"
        )
    return [item.strip() for item in items if item.strip()]


def parse_hostname(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigError(f"setting {name!r} must be a host name, not {shown(value)}")
    text = str(value)
    # The name is shown in tables and compared with the holder's: no line breaks or NULs,
    # and text every backend stores (undecodable bytes arrive as lone surrogates).
    if any(ord(char) < 32 or ord(char) == 127 or 0xD800 <= ord(char) <= 0xDFFF for char in text):
        raise ConfigError(
            f"setting {name!r} must be UTF-8 text without control characters, not {shown(text)}"
        )
    return text


def parse_metrics(name: str, value: Any) -> dict[str, str]:
    """``metrics:``: ``{NAME: min|max, ..., primary: NAME}``, or the text ``a:min,b:max``
    (the first named is then the primary metric), as in ``KLEIO_METRICS``."""
    from kleio.metrics import parse_mode, parse_spec

    try:
        if isinstance(value, str):
            found: dict[str, str] = {}
            for spec in (part for part in value.split(",") if part.strip()):
                key, mode = parse_spec(spec)
                found.setdefault("primary", key)
                if mode is not None:
                    found[key] = mode
            return found
        if isinstance(value, dict):
            return {str(k): (str(v) if k == "primary" else parse_mode(v)) for k, v in value.items()}
    except ValueError as error:
        raise ConfigError(f"setting {name!r}: {error}") from None
    raise ConfigError(
        f"setting {name!r} must map metric names to min or max (e.g. "
        f"{{val_loss: min, primary: val_loss}}), not {shown(value)}"
    )
