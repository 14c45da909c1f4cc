"""kleio's own checks (registered in the ``kleio.checks`` entry-point group like any other).

Thresholds are documented in docs/checks.rst; each class's ``defaults`` are the values.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

from kleio.checks import Check, Finding, Findings, Line, Statistic
from kleio.metrics import PREFIXES, STEP_KEYS

_SEPARATORS = "_/.-"
_VALIDATION = ("val", "valid", "validation", "eval", "dev", "test")


#: The largest integer a float holds (a larger one, 10**400, is no number to check).
_LARGEST = int(sys.float_info.max)


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return type(value) is float or -_LARGEST <= value <= _LARGEST


def where(stat: Statistic) -> str:
    """``at step=5`` (the first step key the statistic holds), or the event's number."""
    for key in STEP_KEYS:
        value = stat.values.get(key)
        if _number(value):
            return f"at {key}={value:g}"
    return f"at statistic #{stat.position + 1}"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def split_prefix(name: str) -> tuple[str, str]:
    """``("val", "loss")`` for ``val_loss``, ``("", "loss")`` for ``loss``."""
    lowered = name.lower()
    for prefix in PREFIXES:
        if (
            len(lowered) > len(prefix) + 1
            and lowered.startswith(prefix)
            and lowered[len(prefix)] in _SEPARATORS
        ):
            return prefix, name[len(prefix) + 1 :]
    return "", name


class NonFinite(Check):
    """A statistic's value is NaN or infinite: the run has most likely gone wrong."""

    name = "nan"
    severity = "error"
    description = "a logged value is NaN or infinite"

    def statistic(self, stat: Statistic) -> Findings:
        found = []
        for key, value in stat.values.items():
            if isinstance(value, float) and not math.isfinite(value):
                what = "NaN" if value != value else ("+inf" if value > 0 else "-inf")
                found.append(self.finding(f"{key} is {what} {where(stat)}", stat.seq, key=key))
        return found


class Diverged(Check):
    """A ``min`` metric grew by ``factor`` over the best value it had reached."""

    name = "diverged"
    severity = "error"
    description = "a metric to minimize grew by a large factor over its best value"
    defaults = {"factor": 10.0, "warmup": 5.0}

    def __init__(self, context: Any, options: Any) -> None:
        super().__init__(context, options)
        self.best: dict[str, float] = {}
        self.seen: dict[str, int] = {}

    def statistic(self, stat: Statistic) -> Findings:
        found = []
        for key, value in stat.values.items():
            if not _number(value) or not math.isfinite(value):
                continue
            if self.context.mode(key) != "min":
                continue
            seen = self.seen[key] = self.seen.get(key, 0) + 1
            best = self.best.get(key)
            if best is None or value < best:
                self.best[key] = value
                continue
            if seen > self.options["warmup"] and best > 0 and value > best * self.options["factor"]:
                found.append(
                    self.finding(
                        f"{key} is {_fmt(value)} {where(stat)}, {value / best:.3g} times its best "
                        f"{_fmt(best)}: the run is diverging",
                        stat.seq,
                        key=key,
                    )
                )
        return found


class Plateau(Check):
    """The primary metric has not improved for ``patience`` values."""

    name = "plateau"
    description = "the primary metric has not improved for a long time"
    defaults = {"patience": 20.0, "min_delta": 0.0}

    def __init__(self, context: Any, options: Any) -> None:
        super().__init__(context, options)
        self.guess: str | None = None  # without a declared primary metric
        self.metric: str | None = None
        self.best: float | None = None
        self.best_at = ""
        self.since = 0
        self.told = False

    def _guess(self, stat: Statistic) -> str | None:
        """The first validation metric logged, else the first metric logged."""
        metrics = [k for k, v in stat.values.items() if _number(v) and self.context.mode(k)]
        for key in metrics:
            if split_prefix(key)[0].lower() in _VALIDATION:
                return key
        return metrics[0] if metrics else None

    def statistic(self, stat: Statistic) -> Findings:
        if self.told:
            return None
        metric = self.context.primary
        if metric is None:
            if self.guess is None:
                self.guess = self._guess(stat)
            metric = self.guess
        if metric is None:
            return None
        if metric != self.metric:  # chosen now, or declared during the run
            self.metric, self.best, self.since = metric, None, 0
        given: Any = stat.values.get(metric)
        if not _number(given) or given != given:
            return None
        value = float(given)
        mode = self.context.mode(metric) or "min"
        delta = self.options["min_delta"]
        best = self.best
        if best is None or (value < best - delta if mode == "min" else value > best + delta):
            self.best, self.best_at, self.since = value, where(stat), 0
            return None
        self.since += 1
        if self.since >= self.options["patience"]:
            self.told = True
            return [
                self.finding(
                    f"{metric} has not improved for {self.since} values (best {_fmt(best)} "
                    f"{self.best_at}, now {_fmt(value)} {where(stat)})",
                    stat.seq,
                    key=metric,
                )
            ]
        return None


class Overfitting(Check):
    """A validation metric gets worse while its training counterpart keeps improving.

    Pairs are ``val_X`` (or ``valid_``, ``validation_``, ``eval_``, ``dev_``, ``test_``) with
    ``train_X`` or plain ``X``. Told when the validation value has been worse than its best for
    ``patience`` values in a row, the training value is better than it was at that best, and
    the gap between the two is ``gap_factor`` times what it was then (or than 1 % of the best
    value, when the gap then was smaller). A value equal to the best is not worse.
    """

    name = "overfitting"
    description = "train and validation values of one metric drift apart"
    defaults = {"patience": 5.0, "gap_factor": 2.0}

    def __init__(self, context: Any, options: Any) -> None:
        super().__init__(context, options)
        self.train: dict[str, float] = {}  # base name -> latest training value
        self.state: dict[str, dict[str, Any]] = {}  # validation name -> its bookkeeping
        self.pairs: dict[str, tuple[str, str] | None] = {}  # key -> (role, base) or None

    def _role(self, key: str) -> tuple[str, str] | None:
        role = self.pairs.get(key, ("?", ""))
        if role is not None and role[0] == "?":
            # Cached per key: a declaration arriving later does not make a pair of old keys.
            mode = self.context.mode(key)
            prefix, base = split_prefix(key)
            if mode is None:
                role = None
            elif prefix.lower() in _VALIDATION:
                role = ("val", base.lower())
            elif prefix.lower() in ("", "train"):
                role = ("train", base.lower())
            else:
                role = None
            self.pairs[key] = role
        return role

    def statistic(self, stat: Statistic) -> Findings:
        found: list[Finding] = []
        for key, value in stat.values.items():
            if not _number(value) or not math.isfinite(value):
                continue
            role = self._role(key)
            if role is None:
                continue
            if role[0] == "train":
                self.train[role[1]] = value
                continue
            train = self.train.get(role[1])
            if train is None:
                continue
            mode = self.context.mode(key) or "min"
            gap = (value - train) if mode == "min" else (train - value)
            state = self.state.setdefault(key, {"best": None, "told": False})
            if state["told"]:
                continue
            best = state["best"]
            if best is None or (value < best if mode == "min" else value > best):
                state.update(best=value, gap=gap, train=train, worse=0, at=where(stat))
                continue
            if value == best:  # back at its best: not worse, the streak ends
                state["worse"] = 0
                continue
            state["worse"] += 1
            improved = train < state["train"] if mode == "min" else train > state["train"]
            # A gap at the best of zero or less (validation as good as training) would make
            # any gap "wide": measure against at least 1 % of the best value.
            floor = max(state["gap"], 0.01 * abs(best))
            wide = gap > 0 and gap > self.options["gap_factor"] * floor
            if state["worse"] >= self.options["patience"] and improved and wide:
                state["told"] = True
                found.append(
                    self.finding(
                        f"{key} has been worse than its best {_fmt(best)} ({state['at']}) for "
                        f"{state['worse']} values while its training value improved "
                        f"({_fmt(state['train'])} -> {_fmt(train)}): the gap grew from "
                        f"{_fmt(state['gap'])} to {_fmt(gap)} {where(stat)} (overfitting)",
                        stat.seq,
                        key=key,
                    )
                )
        return found


class StepBackwards(Check):
    """The step (or epoch...) key went backwards within one execution."""

    name = "step_backwards"
    description = "the step or epoch went backwards within one execution"

    def __init__(self, context: Any, options: Any) -> None:
        super().__init__(context, options)
        self.last: dict[str, float] = {}
        self.told: set[str] = set()

    def statistic(self, stat: Statistic) -> Findings:
        found = []
        for key in STEP_KEYS:
            given: Any = stat.values.get(key)
            if not _number(given) or given != given:
                continue
            value = float(given)
            last = self.last.get(key)
            self.last[key] = value
            if last is not None and value < last and key not in self.told:
                self.told.add(key)
                found.append(
                    self.finding(
                        f"{key} went backwards from {last:g} to {value:g} within one execution "
                        "(two runs writing one trial, or a loop restarted?)",
                        stat.seq,
                        key=key,
                    )
                )
        return found


class Silent(Check):
    """No output line and no statistic for ``after`` seconds while the program runs."""

    name = "silent"
    description = "no output and no statistic for a long time while the program runs"
    defaults = {"after": 1800.0}

    def __init__(self, context: Any, options: Any) -> None:
        super().__init__(context, options)
        self.last: float | None = None
        self.told = False

    def _active(self, when: float) -> None:
        self.last = when if self.last is None else max(self.last, when)
        self.told = False

    def statistic(self, stat: Statistic) -> Findings:
        self._active(stat.time)
        return None

    def line(self, line: Line) -> Findings:
        self._active(line.time)
        return None

    def tick(self, now: float) -> Findings:
        if self.last is None:
            self.last = now  # the first tick is the start of the run
            return None
        quiet = now - self.last
        if not self.told and quiet >= self.options["after"]:
            self.told = True
            return [
                self.finding(
                    f"no output and no statistic for {quiet:.0f} s while the "
                    "program runs: is it stuck?",
                    key=f"{self.last:.3f}",
                )
            ]
        return None


#: What makes a line an error line (case-insensitive, on the line's text).
ERROR_LINE = re.compile(
    r"error|exception|traceback|fatal|fail|denied|refused|timed? ?out", re.IGNORECASE
)
_DIGITS = re.compile(r"\d+")


class RepeatedError(Check):
    """The same error line (digits aside) printed ``count`` times."""

    name = "repeated_error"
    description = "the same error line is printed again and again"
    defaults = {"count": 10.0}
    #: Distinct error lines remembered; more are not counted (memory stays bounded).
    MAX_LINES = 1000

    def __init__(self, context: Any, options: Any) -> None:
        super().__init__(context, options)
        self.counts: dict[str, int] = {}

    def line(self, line: Line) -> Findings:
        text = line.text.strip()
        if not text or not ERROR_LINE.search(text):
            return None
        shape = _DIGITS.sub("#", text[:300])
        seen = self.counts.get(shape)
        if seen is None:
            if len(self.counts) >= self.MAX_LINES:
                return None
            seen = 0
        self.counts[shape] = seen + 1
        if seen + 1 == int(self.options["count"]):
            shown = text if len(text) <= 120 else text[:119] + "…"
            return [
                self.finding(
                    f"the same error line was printed {seen + 1} times on {line.stream}: {shown!r}",
                    line.seq,
                    key=shape,
                )
            ]
        return None


#: name -> "module:Class" of the built-in checks, as registered in setup.cfg.
BUILTIN = {
    "nan": "kleio.checks.builtin:NonFinite",
    "diverged": "kleio.checks.builtin:Diverged",
    "plateau": "kleio.checks.builtin:Plateau",
    "overfitting": "kleio.checks.builtin:Overfitting",
    "step_backwards": "kleio.checks.builtin:StepBackwards",
    "silent": "kleio.checks.builtin:Silent",
    "repeated_error": "kleio.checks.builtin:RepeatedError",
}
