"""What a program may log, and the errors that say why a value is refused.

The logger's hot path only encodes; this module is imported the first time a value is
refused or looks odd (deep nesting, a lone surrogate) or a metric is declared, so a program
that logs plain numbers never loads it.
"""

from __future__ import annotations

from kleio.client import encode_checked
from kleio.client.logger import MAX_DEPTH

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

#: Accepted spellings of a metric mode (kleio.metrics.MODE_ALIASES, not imported: start-up).
MODES = {
    "min": "min",
    "minimize": "min",
    "minimise": "min",
    "lower": "min",
    "max": "max",
    "maximize": "max",
    "maximise": "max",
    "higher": "max",
}


def _bad_key(kwargs: dict[str, Any]) -> tuple[str, BaseException | None]:
    for key, value in kwargs.items():
        try:
            encode_checked(value)
        except (TypeError, ValueError, RecursionError) as error:
            return key, error
    return next(iter(kwargs)), None


def refuse(kwargs: dict[str, Any], call: str, what: str) -> TypeError:
    """The TypeError for a value the encoder refused: circular, too deep, or not JSON-like."""
    key, error = _bad_key(kwargs)
    if isinstance(error, ValueError) and "ircular" in str(error):
        return TypeError(
            f"{call}: {what} {key!r} refers to itself (a circular reference); "
            "log a copy without the cycle"
        )
    if depth(kwargs[key], MAX_DEPTH) > MAX_DEPTH:
        return TypeError(
            f"{call}: {what} {key!r} is nested more than {MAX_DEPTH} levels "
            "deep; flatten it (e.g. one key per level)"
        )
    return TypeError(
        f"{call}: {what} {key!r} is a {type(kwargs[key]).__name__}, which is "
        "not JSON-like; log numbers, strings, booleans, None, or lists/dicts of "
        "them"
    )


def depth(value: Any, limit: int) -> int:
    """Nesting depth of lists and dicts in ``value``, counted up to ``limit + 1``."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            items: Any = item.values()
        elif isinstance(item, (list, tuple)):
            items = item
        else:
            continue
        level += 1
        if level > deepest:
            deepest = level
            if deepest > limit:
                return deepest
        stack.extend((child, level) for child in items)
    return deepest


def check_odd(kwargs: dict[str, Any], text: str, call: str) -> None:
    """The slow checks, run only when the encoded text may hold what they look for."""
    for key, value in kwargs.items():
        if depth(value, MAX_DEPTH) > MAX_DEPTH:
            raise TypeError(
                f"{call}: value of {key!r} is nested more than {MAX_DEPTH} levels deep; "
                "flatten it (e.g. one key per level)"
            )
    if "\\ud" in text:
        try:
            import json

            json.dumps(kwargs, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"{call}: a key or value holds a lone surrogate (undecodable text, e.g. a "
                "file name read with surrogateescape); decode it first, e.g. with "
                "errors='replace'"
            ) from None


def too_large(size: int, limit: int) -> ValueError:
    """The error for a statistic over ``max_statistic_size`` once encoded."""
    return ValueError(
        f"log_statistic(): this statistic is {size:,} bytes once encoded, over the limit of "
        f"{limit:,} (setting max_statistic_size); store large values as a file with "
        "log_artifact()"
    )


def metric_declaration(
    args: tuple[Any, ...], primary: str | None, modes: dict[str, str]
) -> dict[str, Any]:
    """The ``metrics`` record of :meth:`~kleio.client.logger.KleioLogger.declare_metrics`.

    Raises:
        TypeError: a positional argument, nothing declared, or ``primary`` not a string.
        ValueError: an unknown mode.
    """
    if args:
        raise TypeError(
            "declare_metrics() takes keyword arguments only, e.g. "
            "declare_metrics(val_loss='min', primary='val_loss')"
        )
    if primary is not None and (not isinstance(primary, str) or not primary):
        raise TypeError("declare_metrics(): primary must be a metric name (a string)")
    if not modes and primary is None:
        raise TypeError("declare_metrics() needs at least one NAME='min' or NAME='max'")
    declared: dict[str, str] = {}
    for name, mode in modes.items():
        found = MODES.get(mode.strip().lower()) if isinstance(mode, str) else None
        if found is None:
            raise ValueError(
                f"declare_metrics(): the mode of {name!r} must be 'min' or "
                f"'max' (or 'minimize', 'maximize'), not {mode!r}"
            )
        declared[name] = found
    return {"metrics": declared, "primary": primary}
