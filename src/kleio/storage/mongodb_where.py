"""``where`` conditions asked of MongoDB: the hints of :meth:`Store.find_trials`.

``kleio ls --where 'lr<0.1'`` compares an option as a number when it reads as one, else as
text, and a name no option has is the trial's metric (see :mod:`kleio.api`). Options are
stored as typed (``"0.1"``, text) and MongoDB compares text with text, so each trial document
also holds, from its creation (its options never change)::

    _opts: {"n": {name: [numbers]}, "t": [names]}

``n``: the option's values that :func:`~kleio.storage.base.as_number` reads as finite numbers
(each element of a repeated option); ``t``: the options with any other value (text, a flag,
an infinity), whose comparison only Python decides. A hint ``(name, op, x)`` then keeps the
trials where::

    _opts.n.name op x            (a number that matches)
    or name in _opts.t           (a value compared as text: maybe)
    or no _opts / _esc           (a trial of an older kleio, or options kept as JSON text)
    or no option name, and:      (then the metric decides)
        a branch (its lineage decides), or its summary may match
        (best: min op x for < <=, max op x for > >=, either for =; name.last: last op x)

which keeps every trial that may match (the caller checks each: a hint narrows, never
decides). The summaries are asked first, for at most :data:`MAX_IDS` trial ids; past that
the metric clause keeps every trial without the option.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from kleio.storage.base import as_number
from kleio.storage.mongodb_layout import safe_key

#: Trial ids a metric hint may name in the trials query (past that it narrows nothing).
MAX_IDS = 10_000
_OPS = {"=": "$eq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_SUFFIXES = ("last", "best")


def option_index(config: Any) -> dict[str, Any]:
    """The ``_opts`` of a trial whose parsed command line is ``config``."""
    numbers: dict[str, list[float]] = {}
    texts: list[str] = []
    if not isinstance(config, dict):
        return {"n": numbers, "t": texts}
    for name, value in config.items():
        if name == "_pos" or not safe_key(name):
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is None:
                continue  # never matches
            number = as_number(item)
            if number is None or not math.isfinite(number):
                if name not in texts:
                    texts.append(name)
            else:
                numbers.setdefault(name, []).append(number)
    return {"n": numbers, "t": texts}


def _metric(name: str) -> tuple[str, str] | None:
    """``(metric, which)`` a hint on ``name`` reads when no option has it (``NAME.last``
    may also be the best of a metric named so: asked too), or None when that cannot be told
    without the trial (``NAME.count``, ``NAME.best_step``, a name of several dots)."""
    if "." not in name:
        return name, "best"
    base, _, which = name.rpartition(".")
    if which in _SUFFIXES and "." not in base and base:
        return base, which
    return None


def _summary_clause(metric: str, which: str, op: str, number: float) -> dict[str, Any]:
    test = {_OPS[op]: number}
    if which == "last":
        return {"name": metric, "last": test}
    if op == "=":
        return {"name": metric, "$or": [{"min": test}, {"max": test}]}
    return {"name": metric, ("min" if op in ("<", "<=") else "max"): test}


def narrowing(db: Any, hints: Sequence[tuple[str, str, float]]) -> dict[str, Any] | None:
    """The query keeping the trials that may match every hint, or None (nothing to ask)."""
    clauses = []
    for name, op, number in hints:
        if op not in _OPS or not math.isfinite(number):
            continue
        metric = _metric(name)
        # Trials of an older kleio, and options BSON could not hold as they are: maybe.
        either: list[dict[str, Any]] = [{"_opts": {"$exists": False}}, {"_esc": True}]
        lacking: dict[str, Any] = {}
        if safe_key(name) and not name.startswith("_"):
            either += [{f"_opts.n.{name}": {_OPS[op]: number}}, {"_opts.t": name}]
            lacking[f"config.{name}"] = {"$exists": False}
        elif metric is None:
            continue  # no option can be named so, nor a metric be told: Python decides
        if metric is not None:
            query = _summary_clause(*metric, op, number)
            if metric[0] != name:  # NAME.last: or a metric named so, whose best it is
                query = {"$or": [query, _summary_clause(name, "best", op, number)]}
            ids = [
                doc["trial_id"]
                for doc in db.summaries.find(query, {"trial_id": 1}).limit(MAX_IDS + 1)
            ]
            if len(ids) <= MAX_IDS:
                lacking["$or"] = [{"_id": {"$in": ids}}, {"parent.id": {"$exists": True}}]
        either.append(lacking)
        clauses.append({"$or": either})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
