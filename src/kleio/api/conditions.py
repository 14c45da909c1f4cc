"""The ``where`` conditions, ``since`` and ``sort`` specifications of :mod:`kleio.api`.

Also the ordering of trials by a name (:func:`sort_trials`) and the names a listing knows
(:func:`known`), so that ``kleio ls``, ``best``, ``export`` and the dashboard agree.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from kleio.errors import UsageError
from kleio.metrics import is_number
from kleio.storage.base import as_number

if TYPE_CHECKING:
    from kleio.api.trial import Trial

#: Fields every trial has, by the names ``where``/``sort``/``--columns`` use.
FIELDS = (
    "id",
    "status",
    "project",
    "tag",
    "tags",
    "command",
    "created",
    "started",
    "ended",
    "duration",
    "parent",
    "exit_code",
)
#: Fields holding a time (epoch seconds): ``where`` also takes an ISO date for them.
TIME_FIELDS = ("created", "started", "ended")
#: Fields sorted by the database (name -> trial document field).
STORE_SORTS = {"created": "created_at", "id": "id", "status": "status"}
#: ``NAME OP VALUE``; a name holding an operator character is written in double quotes.
_CONDITION = re.compile(
    r'^\s*(?:"([^"]+)"|([^<>=!\s"][^<>=!]*?))\s*(==|!=|<=|>=|=|<|>)\s*(.*?)\s*$', re.S
)
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_EPOCH = re.compile(r"^\s*\d+(?:\.\d*)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


# -- conditions ----------------------------------------------------------------------------


class Condition:
    """One ``NAME OP VALUE`` of ``where``.

    A name holding an operator character is written in double quotes (``"a<b">0.5``). A
    value may not start with an operator character (``lr<<0.1`` is a typo, not "less than
    the text <0.1"). On a time field (:data:`TIME_FIELDS`) the value is epoch seconds or an
    ISO date/time, read as :func:`parse_since` reads one. ``id=X`` and ``id!=X`` with ``X``
    shorter than a full id compare ``X`` as a prefix (the short ids ``kleio ls`` shows).
    """

    __slots__ = ("name", "op", "text", "number", "prefix")

    def __init__(self, spec: str) -> None:
        match = _CONDITION.match(spec) if isinstance(spec, str) else None
        if match is None or not match.group(4):
            raise UsageError(
                f"cannot read the condition {str(spec)[:60]!r}",
                "write NAME OP VALUE with OP one of = != < <= > >=, e.g. --where 'lr<0.1' "
                "or --where status=completed (a NAME holding < > = ! in double quotes)",
            )
        self.name = match.group(1) or match.group(2)
        op, self.text = match.group(3), match.group(4)
        if self.text[0] in "<>=!":
            raise UsageError(
                f"cannot read the condition {spec[:60]!r}: its value {self.text[:20]!r} "
                "starts with an operator character",
                "write one operator of = != < <= > >=, e.g. --where 'lr<0.1'",
            )
        if "," in self.text and _CONDITION.match(self.text.split(",", 1)[1] or "") is not None:
            raise UsageError(
                f"cannot read the condition {spec[:60]!r}: its value {self.text[:30]!r} holds "
                "another condition after a comma",
                "give each condition its own --where (they are combined with AND), e.g. "
                "--where 'lr<1' --where seed=3",
            )
        self.op = "=" if op == "==" else op
        self.number = _number(self.text)
        if self.name in TIME_FIELDS and self.number is None:
            self.number = _time(spec, self.text)
            self.text = repr(self.number)
        self.prefix = self.name == "id" and self.op in ("=", "!=") and len(self.text) < _FULL_ID
        if self.prefix:
            self.text = self.text.lower()

    def matches(self, value: Any) -> bool:
        if value is None:
            return False
        if self.prefix:
            return str(value).startswith(self.text) == (self.op == "=")
        if isinstance(value, (list, tuple)):  # tags, a repeated option: any element
            if self.op == "!=":
                return not any(self._equal(item) for item in value)
            return any(self.matches(item) for item in value)
        number = _number(value)
        if number is not None and self.number is not None:
            left, right = number, self.number
            if left != left:
                return False
        elif self.op in ("=", "!="):
            return self._equal(value) == (self.op == "=")
        elif (number is None) != (self.number is None):
            return False  # a number and text do not order (as in MongoDB: no match)
        else:
            left, right = str(value), self.text  # type: ignore[assignment]
        return {
            "=": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[self.op]

    def _equal(self, value: Any) -> bool:
        number = _number(value)
        if number is not None and self.number is not None:
            return number == self.number
        if isinstance(value, bool):
            return self.text.lower() == str(value).lower()
        return str(value) == self.text

    def __repr__(self) -> str:
        return f"Condition({self.name}{self.op}{self.text})"


#: How a value compares: as a number or, None, as text (see :func:`as_number`).
_number = as_number
#: The length of a full trial id (hex SHA-256).
_FULL_ID = 64


def _time(spec: str, text: str) -> float:
    """The epoch seconds of an ISO date/time in a condition on a time field."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(
            f"cannot read the condition {spec[:60]!r}: {text[:30]!r} is not a time",
            "compare a time field with epoch seconds or an ISO date, e.g. "
            "--where created>2024-05-01 or --where 'ended<2024-05-01T12:00'",
        ) from None


def parse_since(since: Any, now: float | None = None) -> float:
    """``since`` as epoch seconds: a number (or its text, ``"1796231861"``),
    ``"2d"``/``"3h"``/``"30m"``/``"1w"``, or an ISO date.

    Raises:
        UsageError: text that is none of these.
    """
    if is_number(since):
        return float(since)
    text = str(since)
    if _EPOCH.match(text):
        return float(text)
    match = _SINCE.match(text)
    if match:
        return (now if now is not None else time.time()) - float(match.group(1)) * _UNITS[
            match.group(2).lower()
        ]
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise UsageError(
            f"cannot read --since {text[:40]!r}",
            "give a duration like 2d, 3h, 30m, a date like 2024-05-01, or epoch seconds",
        ) from None


def parse_sort(spec: str) -> tuple[str, bool]:
    """``-NAME`` -> ``("NAME", True)``; ``"NAME"`` in double quotes is ``NAME``.

    Raises:
        UsageError: an empty name or one holding control characters.
    """
    descending = spec.startswith("-")
    name = spec[1:] if descending else spec
    if len(name) > 2 and name[0] == name[-1] == '"':  # quoted as in where and --columns
        name = name[1:-1]
    if not name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name) or name == "-":
        raise UsageError(
            f"cannot sort by {spec[:40]!r}",
            "give a field (created, started, ended, status, id, duration), an "
            "option or a metric, '-' prefixed for descending",
        )
    return name, descending


def ranked_sort(name: str) -> bool:
    """Tell whether a sort on ``name`` is a metric's best, ranked by the store's summaries
    (not a field, not ``NAME.last`` and the like, which are sorted here)."""
    return (
        name not in FIELDS
        and name not in STORE_SORTS
        and not name.endswith((".last", ".best", ".best_step", ".count"))
    )


def _order(value: float, descending: bool) -> float:
    return -value if descending else value


def sort_trials(trials: list[Trial], name: str, descending: bool) -> list[Trial]:
    """Sort by ``name`` (a field, option or metric's best); missing values last both ways.

    Numbers sort as numbers and before text; ties keep the newest first.
    """
    present: list[tuple[Any, Trial]] = []
    missing: list[Trial] = []
    for trial in trials:
        value = trial.value(name)
        number = _number(value) if not isinstance(value, (list, tuple)) else None
        if number is not None and number == number:
            present.append(((0, number, ""), trial))
        elif value is None or isinstance(value, float):
            missing.append(trial)
        else:
            present.append(((1, 0.0, str(value)), trial))
    present.sort(key=lambda item: -(item[1].created_at or 0))
    present.sort(key=lambda item: item[0], reverse=descending)
    return [trial for _, trial in present] + missing


def known(trials: Iterable[Trial], name: str) -> bool:
    """Tell whether ``name`` is a field, or an option or metric of one of ``trials``."""
    base = (
        name.rpartition(".")[0]
        if name.endswith((".last", ".best", ".best_step", ".count"))
        else name
    )
    if name in FIELDS:
        return True
    return any(name in t.options or base in t.metrics for t in trials)


def split_names(given: str) -> list[str]:
    """The names of a comma-separated list (``--columns a,"b,c"``): a name holding a comma or
    a double quote is written in double quotes, a quote in it doubled, as in CSV."""
    import csv

    try:
        row = next(csv.reader([given], skipinitialspace=True), [])
    except csv.Error:
        raise UsageError(
            f"cannot read the names {given[:40]!r}",
            'separate names with commas; write one holding a comma in double quotes, "a,b"',
        ) from None
    return [name.strip() for name in row if name.strip()]


def check_known(trials: list[Trial], names: Iterable[str], what: str) -> None:
    """Refuse a column or sort key that none of ``trials`` has (a typo, most often).

    Raises:
        UsageError: naming the key and some of the options and metrics there are.
    """
    for name in names:
        if trials and not known(trials, name):
            options = sorted({o for t in trials for o in t.options})[:8]
            found = sorted({m for t in trials for m in t.metrics})[:8]
            raise UsageError(
                f"cannot {what} {name!r}: no listed trial has a field, option or metric of "
                "that name",
                f"options: {', '.join(options) or 'none'}; metrics: {', '.join(found) or 'none'}",
            )


def checked_names(trials: Iterable[Trial], name: str, what: str) -> Iterator[Trial]:
    """``trials``, refusing (:func:`check_known`) a ``name`` none of them has: those before
    the first that has it are held back until one does (none, usually)."""
    held: list[Trial] = []
    iterator = iter(trials)
    for trial in iterator:
        held.append(trial)
        if known([trial], name):
            yield from held
            yield from iterator
            return
    check_known(held, [name], what)
    yield from held


def best_of(candidates: list[Trial], metric: str | None) -> Trial:
    """The best of ``candidates`` by ``metric`` (see :func:`best`)."""
    from kleio.errors import TrialNotFound
    from kleio.metrics import parse_spec, rank_key

    if not candidates:
        raise TrialNotFound("no trial matches the filters", "list trials with 'kleio ls'")
    name = parse_spec(metric)[0] if metric else None
    if name is None:
        primaries = {t.primary for t in candidates if t.primary}
        if len(primaries) != 1:
            raise UsageError(
                "no metric to rank by: "
                + (
                    "no trial declares a primary metric"
                    if not primaries
                    else f"trials declare different primary metrics "
                    f"({', '.join(sorted(primaries))})"
                ),
                "give one, e.g. --metric val_acc:max",
            )
        name = primaries.pop()
    having = [t for t in candidates if name in t.metrics and t.metrics[name]["best"] is not None]
    if not having:
        raise TrialNotFound(
            f"no trial has the metric {name!r}",
            "check its spelling with 'kleio cat --statistics ID', or declare its "
            "mode with --metric NAME:min or NAME:max",
        )
    return min(having, key=lambda t: rank_key(t.metrics[name]["best"], t.metrics[name]["mode"]))
