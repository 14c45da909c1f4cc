"""Trials of one setting, several seeds: :class:`Group` and :func:`groups`."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kleio.metrics import is_number

if TYPE_CHECKING:
    from kleio.api.trial import Trial


class Group:
    """Trials whose options are equal except some (seeds): one setting, several trials."""

    def __init__(self, options: dict[str, Any], trials: list[Trial]) -> None:
        self.options = options
        self.trials = trials

    @property
    def n(self) -> int:
        return len(self.trials)

    def values(self, name: str, which: str = "best") -> list[float]:
        """The numeric ``which`` (best, last) of metric ``name`` of each trial having it."""
        out = []
        for trial in self.trials:
            entry = trial.metrics.get(name)
            value = entry.get(which) if entry else None
            if is_number(value) and value == value:
                out.append(float(value))  # type: ignore[arg-type]
        return out

    def mean(self, name: str, which: str = "best") -> float | None:
        values = self.values(name, which)
        return sum(values) / len(values) if values else None

    def std(self, name: str, which: str = "best") -> float | None:
        values = self.values(name, which)
        if not values:
            return None
        if len(values) == 1:
            return 0.0
        mean = sum(values) / len(values)
        return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))

    def metric_names(self) -> list[str]:
        names: dict[str, None] = {}
        for trial in self.trials:
            names.update(dict.fromkeys(trial.metrics))
        return list(names)

    def to_json(self) -> dict[str, Any]:
        metrics = {}
        for name in self.metric_names():
            mode = next(t.metrics[name]["mode"] for t in self.trials if name in t.metrics)
            metrics[name] = {
                "mode": mode,
                "n": len(self.values(name)),
                **{
                    f"{which}_{stat}": getattr(self, stat)(name, which)
                    for which in ("best", "last")
                    for stat in ("mean", "std")
                },
            }
        return {
            "options": self.options,
            "n": self.n,
            "ids": [t.id for t in self.trials],
            "metrics": metrics,
        }


def groups(trials: Iterable[Trial], except_: Sequence[str] = ("seed",)) -> list[Group]:
    """Group trials of one project and program (``python train.py``) whose options and
    positional arguments are equal but for ``except_``.

    Groups come in the order of their first trial.
    """
    ignored = set(except_)
    found: dict[str, Group] = {}
    for trial in trials:
        shared = {k: v for k, v in trial.options.items() if k not in ignored}
        key = json.dumps(
            [
                trial.project,
                getattr(trial, "program", []),
                sorted(shared.items(), key=lambda kv: kv[0]),
                trial.positionals,
            ],
            default=str,
        )
        if key not in found:
            found[key] = Group(shared, [])
        found[key].trials.append(trial)
    return list(found.values())
