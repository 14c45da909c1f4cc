"""Metrics: statistics with a direction (``min`` or ``max``), and what kleio knows of them.

A *statistic* is any key a program logs with ``kleio_logger.log_statistic``. A *metric* is a
statistic with a **mode**: ``"min"`` (lower is better) or ``"max"`` (higher is better).
Only metrics have a best value; ``epoch``, ``step``, ``lr`` or ``seed`` are statistics, not
metrics, and no reading command ever calls one of them "better".

Where a mode comes from, highest first:

1. the command line of a reading command: ``--metric val_acc:max`` (``kleio ls``, ``best``,
   ``diff``, ``export``) or ``metrics=`` of :mod:`kleio.api`;
2. the trial's own declaration, journalled with it:
   ``kleio_logger.declare_metrics(val_loss="min", val_acc="max", primary="val_acc")`` or
   ``kleio_logger.checkpoint(..., primary_metric=("val_loss", "minimize"))``; a branch
   inherits its parent's declarations (they are events of the lineage, like statistics);
3. ``metrics:`` in ``kleio.yaml`` (``metrics: {val_loss: min, primary: val_loss}``), read by
   the reading command from the project it runs in;
4. the **name rule** (:func:`mode_from_name`): the name, lower-cased, with at most one prefix
   among :data:`PREFIXES` (``val_``, ``valid_``, ``validation_``, ``test_``, ``train_``,
   ``eval_``, ``dev_``; ``_``, ``/``, ``.`` or ``-`` after it) removed, is looked up in
   :data:`MIN_NAMES` (``loss``, ``error``, ``err``, ``mse``, ``rmse``, ``mae``, ``mape``,
   ``nll``, ``perplexity``, ``ppl``, ``wer``, ``cer``, ``regret``, ``cost``) and
   :data:`MAX_NAMES` (``acc``, ``accuracy``, ``f1``, ``auc``, ``roc_auc``, ``precision``,
   ``recall``, ``score``, ``bleu``, ``rouge``, ``map``, ``iou``, ``miou``, ``dice``, ``r2``,
   ``reward``, ``return``). ``val_loss`` and ``test/acc`` are metrics; ``loss_scale``,
   ``epoch`` and ``lr`` are not (declare them to make them metrics).

Modes are written ``min``/``max``; ``minimize``/``maximize`` (Keepsake's spelling) and
``lower``/``higher`` are accepted.

The *primary* metric is the one ``kleio ls`` shows and sorts by default and ``kleio best``
ranks by: the declared one (same precedence as modes), else none.

Per trial and metric, :func:`summarize` gives (over the whole lineage, oldest first)::

    {"mode": "min", "last": 0.21, "best": 0.19, "best_step": 7, "step_key": "epoch",
     "count": 10}

``best_step`` is the value of the first of :data:`STEP_KEYS` (``step``, ``global_step``,
``epoch``, ``iteration``, ``iter``) logged in the same statistic as the best value (``None``
when that statistic has none; ``step_key`` names it). ``count`` is the number of numeric
values seen. NaN is never best; ``last`` is the last numeric value, NaN included.

This module is pure Python and imports nothing heavy: the reading commands and
:mod:`kleio.api` use it, the run path never imports it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

MIN, MAX = "min", "max"
MODES = (MIN, MAX)

#: Spellings accepted for a mode (lower-cased).
MODE_ALIASES = {
    "min": MIN,
    "minimize": MIN,
    "minimise": MIN,
    "lower": MIN,
    "low": MIN,
    "-": MIN,
    "max": MAX,
    "maximize": MAX,
    "maximise": MAX,
    "higher": MAX,
    "high": MAX,
    "+": MAX,
}

#: Names (after the prefix) that are metrics to minimize without a declaration.
MIN_NAMES = frozenset(
    {
        "loss",
        "error",
        "err",
        "mse",
        "rmse",
        "mae",
        "mape",
        "nll",
        "perplexity",
        "ppl",
        "wer",
        "cer",
        "regret",
        "cost",
    }
)
#: Names (after the prefix) that are metrics to maximize without a declaration.
MAX_NAMES = frozenset(
    {
        "acc",
        "accuracy",
        "f1",
        "auc",
        "roc_auc",
        "precision",
        "recall",
        "score",
        "bleu",
        "rouge",
        "map",
        "iou",
        "miou",
        "dice",
        "r2",
        "reward",
        "return",
    }
)
#: Prefixes the name rule removes (one of them, followed by one of ``_ / . -``).
PREFIXES = ("train", "val", "valid", "validation", "test", "eval", "dev")
_SEPARATORS = "_/.-"

#: Statistic keys that say where in a run a value was logged, in order of preference.
STEP_KEYS = ("step", "global_step", "epoch", "iteration", "iter")


def mode_from_name(name: str) -> str | None:
    """Return the mode the name rule gives ``name`` (see the module docstring), or None."""
    lowered = str(name).lower()
    if lowered in MIN_NAMES:
        return MIN
    if lowered in MAX_NAMES:
        return MAX
    for prefix in PREFIXES:
        if (
            len(lowered) > len(prefix) + 1
            and lowered.startswith(prefix)
            and lowered[len(prefix)] in _SEPARATORS
        ):
            rest = lowered[len(prefix) + 1 :]
            if rest in MIN_NAMES:
                return MIN
            if rest in MAX_NAMES:
                return MAX
    return None


def parse_mode(text: Any) -> str:
    """Return ``"min"`` or ``"max"`` for an accepted spelling.

    Raises:
        ValueError: anything else (the message lists the spellings).
    """
    mode = MODE_ALIASES.get(str(text).strip().lower()) if isinstance(text, str) else None
    if mode is None:
        raise ValueError(f"unknown metric mode {text!r}: use min or max (or minimize, maximize)")
    return mode


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Parse ``NAME`` or ``NAME:MODE`` (``val_acc:max``) into ``(name, mode or None)``.

    Raises:
        ValueError: an empty name or an unknown mode.
    """
    name, colon, mode = str(spec).rpartition(":") if ":" in str(spec) else (spec, "", "")
    name = name.strip()
    if not name:
        raise ValueError(f"no metric name in {spec!r}: write NAME or NAME:min / NAME:max")
    return name, (parse_mode(mode) if colon else None)


class Declarations:
    """Metric modes and the primary metric, from every source, highest precedence first.

    ``Declarations(modes, primary)`` holds one layer; :meth:`over` stacks a lower one below.
    :meth:`mode` answers for any name, falling back on the name rule.
    """

    __slots__ = ("modes", "primary")

    def __init__(self, modes: Mapping[str, str] | None = None, primary: str | None = None) -> None:
        self.modes: dict[str, str] = dict(modes or {})
        self.primary: str | None = primary

    def over(self, lower: Declarations | None) -> Declarations:
        """These declarations with ``lower``'s below them (ours win)."""
        if lower is None:
            return self
        modes = dict(lower.modes)
        modes.update(self.modes)
        return Declarations(modes, self.primary or lower.primary)

    def mode(self, name: str) -> str | None:
        """The mode of ``name``: declared, else by the name rule, else None (not a metric)."""
        mode = self.modes.get(name)
        return mode if mode is not None else mode_from_name(name)

    def to_json(self) -> dict[str, Any]:
        return {"modes": dict(self.modes), "primary": self.primary}

    def __repr__(self) -> str:
        return f"Declarations({self.modes!r}, primary={self.primary!r})"


def declaration_record(modes: Mapping[str, Any], primary: str | None) -> dict[str, Any]:
    """The data of a ``metrics`` journal event: ``{"metrics": {name: mode}, "primary": p}``.

    Raises:
        ValueError: a mode is not an accepted spelling.
    """
    return {"metrics": {str(k): parse_mode(v) for k, v in modes.items()}, "primary": primary}


def from_events(datas: Iterable[Mapping[str, Any]]) -> Declarations:
    """Fold the data of ``metrics`` events (oldest first) into one layer: later ones win.

    Damaged or foreign data (an unknown mode, a non-string primary) is skipped, never fatal.
    """
    modes: dict[str, str] = {}
    primary: str | None = None
    for data in datas:
        given = data.get("metrics") if isinstance(data, Mapping) else None
        if isinstance(given, Mapping):
            for key, value in given.items():
                try:
                    modes[str(key)] = parse_mode(value)
                except ValueError:
                    continue
        chosen = data.get("primary") if isinstance(data, Mapping) else None
        if isinstance(chosen, str) and chosen:
            primary = chosen
    return Declarations(modes, primary)


def from_config(value: Any) -> Declarations:
    """The ``metrics:`` setting of ``kleio.yaml`` (already checked by :mod:`kleio.config`)."""
    if not isinstance(value, Mapping):
        return Declarations()
    modes = {str(k): parse_mode(v) for k, v in value.items() if k != "primary"}
    primary = value.get("primary")
    return Declarations(modes, str(primary) if primary else None)


def from_specs(specs: Iterable[str]) -> Declarations:
    """``--metric NAME[:MODE]`` options: the first one is the primary metric.

    A spec without a mode declares no mode (the trial's declaration or the name rule
    decide) but still chooses the primary metric.

    Raises:
        ValueError: a malformed spec.
    """
    modes: dict[str, str] = {}
    primary: str | None = None
    for spec in specs:
        name, mode = parse_spec(spec)
        if mode is not None:
            modes[name] = mode
        if primary is None:
            primary = name
    return Declarations(modes, primary)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def better(value: float, than: float | None, mode: str) -> bool:
    """Tell whether ``value`` beats ``than`` under ``mode`` (NaN never does; None always)."""
    if value != value:  # NaN
        return False
    if than is None or than != than:
        return True
    return value < than if mode == MIN else value > than


_UNSET: Any = object()


class Summarizer:
    """Fold statistics (dicts, oldest first) into per-metric summaries.

    >>> s = Summarizer(Declarations())
    >>> for stat in ({"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.4}):
    ...     s.add(stat)
    >>> s.result()["val_loss"]["best_step"]
    2
    """

    __slots__ = ("declarations", "_modes", "_out")

    _modes: dict[str, Any]

    def __init__(self, declarations: Declarations) -> None:
        self.declarations = declarations
        self._modes = {}
        self._out: dict[str, dict[str, Any]] = {}

    def add(self, stat: Mapping[str, Any]) -> None:
        # The hot loop of ranking: one call per statistic of every trial compared.
        modes = self._modes
        out = self._out
        step_key: str | None = None
        for key, value in stat.items():
            kind = type(value)
            if kind is not float and kind is not int:  # bool, text, lists: not a value
                continue
            mode = modes.get(key, _UNSET)
            if mode is _UNSET:
                mode = modes[key] = self.declarations.mode(key)
            if mode is None:
                continue
            entry = out.get(key)
            if entry is None:
                entry = out[key] = {
                    "mode": mode,
                    "last": None,
                    "best": None,
                    "best_step": None,
                    "step_key": None,
                    "count": 0,
                }
            entry["last"] = value
            entry["count"] += 1
            best = entry["best"]
            if value == value and (best is None or (value < best if mode == MIN else value > best)):
                entry["best"] = value
                if step_key is None:
                    step_key = next((k for k in STEP_KEYS if k in stat), "")
                entry["best_step"] = stat[step_key] if step_key else None
                entry["step_key"] = step_key or None

    def result(self) -> dict[str, dict[str, Any]]:
        return self._out


def summarize(
    stats: Iterable[Mapping[str, Any]], declarations: Declarations | None = None
) -> dict[str, dict[str, Any]]:
    """Return ``{metric: {"mode", "last", "best", "best_step", "step_key", "count"}}``."""
    summarizer = Summarizer(declarations or Declarations())
    for stat in stats:
        summarizer.add(stat)
    return summarizer.result()


def rank_key(value: Any, mode: str | None) -> tuple[int, float]:
    """A sort key putting the best value first under ``mode``; missing or NaN values last.

    Sorting ascending by this key orders best to worst.
    """
    if not is_number(value) or value != value:
        return (1, 0.0)
    number = float(value)
    if math.isinf(number):
        number = math.copysign(1e308, number)
    return (0, -number if mode == MAX else number)


__all__ = [
    "MAX",
    "MIN",
    "STEP_KEYS",
    "Declarations",
    "Summarizer",
    "better",
    "declaration_record",
    "from_config",
    "from_events",
    "from_specs",
    "mode_from_name",
    "parse_mode",
    "parse_spec",
    "rank_key",
    "summarize",
]
