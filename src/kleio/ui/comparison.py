"""The comparison page of the dashboard: several trials' curves overlaid (or their groups'
mean ± std) and a table of their options and metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kleio.ui.series import DEFAULT_POINTS, aggregate, downsample, downsample_band
from kleio.ui.trial_page import MAX_CHARTS
from kleio.ui.trials_table import finite, row

if TYPE_CHECKING:
    from kleio.ui.views import ColumnCache


def compare(
    journal: Any,
    trials: Sequence[Any],
    cache: ColumnCache,
    *,
    ys: Sequence[str],
    x: str | None,
    group_except: Sequence[str] = (),
    points: int = DEFAULT_POINTS,
) -> dict[str, Any]:
    """Overlaid curves of several trials (or of their groups' mean ± std), and a table of
    their options and metrics."""
    from kleio.api import groups

    store = journal.store
    columns = {t.id: cache.get(store, t)[0] for t in trials}
    if not ys:
        names: dict[str, None] = {}
        for trial in trials:
            names.update((k, None) for k in trial.metrics)
        ys = list(names)[:MAX_CHARTS]
    x_key = x or next((c.choose_x(ys) for c in columns.values() if c.choose_x(ys)), None)
    option_names: dict[str, None] = {}
    for trial in trials:
        option_names.update(dict.fromkeys(trial.options))
    differing = [
        name for name in option_names if len({repr(t.options.get(name)) for t in trials}) > 1
    ]
    charts: dict[str, list[dict[str, Any]]] = {y: [] for y in ys}
    found_groups = []
    if group_except:
        for group in groups(trials, except_=list(group_except)):
            label = (
                " ".join(
                    f"{k}={group.options[k]}"
                    for k in differing
                    if k in group.options and k not in group_except
                )
                or "all"
            )
            label += f" (n={group.n})"
            found_groups.append({**group.to_json(), "label": label})
            for y in ys:
                band = downsample_band(
                    aggregate([columns[t.id].series(y, x_key) for t in group.trials]), points
                )
                charts[y].append(
                    {
                        "label": label,
                        "ids": [t.id for t in group.trials],
                        "x": band.xs,
                        "y": band.mean,
                        "lower": [m - s for m, s in zip(band.mean, band.std)],
                        "upper": [m + s for m, s in zip(band.mean, band.std)],
                    }
                )
        for item in found_groups:
            item["metrics"] = {
                name: {k: finite(v) for k, v in entry.items()}
                for name, entry in item["metrics"].items()
            }
    else:
        for trial in trials:
            label = trial.short_id + "".join(
                f" {k}={trial.options.get(k)}" for k in differing if k in trial.options
            )
            for y in ys:
                small = downsample(columns[trial.id].series(y, x_key), points)
                charts[y].append({"label": label, "ids": [trial.id], "x": small.xs, "y": small.ys})
    return {
        "x": x_key,
        "ys": list(ys),
        "differing": differing,
        "options": list(option_names),
        "trials": [row(t) for t in trials],
        "groups": found_groups,
        "charts": charts,
    }
