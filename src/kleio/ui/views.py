"""What the dashboard's JSON endpoints answer, as plain functions of a read-only journal.

The trials, their options, metrics and groups come from :mod:`kleio.api`; this module only
shapes them for the page, reads statistics column by column (:class:`~kleio.ui.series.Columns`,
cached per trial so a running trial is read incrementally) and pages output and artifacts.
Nothing here writes: the journal is only ever read.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from kleio.ui.series import (
    DEFAULT_POINTS,
    Columns,
    aggregate,
    downsample,
    downsample_band,
    sample,
    segments,
)

#: Rows a page of the trials table may ask for.
MAX_PAGE = 500
#: Output lines a trial page shows at first (the newest).
OUTPUT_TAIL = 2000
#: Charts a trial page draws at most (the rest can be picked by name).
MAX_CHARTS = 24


def finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such a number becomes None (``null``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


#: A trial with more statistics than this is first shown from a preview (:func:`sample`)
#: while its full columns are read in the background.
PREVIEW_OVER = 100_000


class ColumnCache:
    """The :class:`Columns` of recently viewed trials (a small LRU, one lock per trial).

    ``open_journal`` (a callable returning a new journal) lets a long trial be read in a
    background thread, with its own connection, while pages are served from a preview.
    """

    def __init__(self, size: int = 16, open_journal: Any = None) -> None:
        self.size = size
        self.open_journal = open_journal
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[threading.Lock, Columns]] = OrderedDict()
        self._previews: dict[str, Columns] = {}

    def get(self, store: Any, trial: Any, upto: int | None = None) -> tuple[Columns, bool]:
        """The trial's columns, updated with what was journalled since (up to ``upto``),
        and whether they are complete (False: a preview, the full read is under way)."""
        with self._lock:
            preview = self._previews.get(trial.id)
            if preview is not None:
                return preview, False
            entry = self._entries.get(trial.id)
            fresh = entry is None
            if entry is None:
                entry = (threading.Lock(), Columns(trial.id, trial.declarations))
                self._entries[trial.id] = entry
            self._entries.move_to_end(trial.id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        lock, columns = entry
        spans = segments(store, trial.id) if fresh and self.open_journal is not None else []
        if sum(last - first + 1 for _, first, last in spans) > PREVIEW_OVER:
            preview = sample(store, trial.id, spans=spans)
            with self._lock:
                self._previews[trial.id] = preview
            threading.Thread(
                target=self._load,
                args=(trial.id, lock, columns),
                name=f"kleio-ui-load-{trial.short_id}",
                daemon=True,
            ).start()
            return preview, False
        with lock:
            columns.update(store, upto=upto)
        return columns, True

    def _load(self, trial_id: str, lock: threading.Lock, columns: Columns) -> None:
        try:
            with self.open_journal() as journal, lock:
                columns.update(journal.store)
        finally:
            with self._lock:
                self._previews.pop(trial_id, None)


# -- trials --------------------------------------------------------------------------------


def row(trial: Any) -> dict[str, Any]:
    """One trial of the table: ``kleio ls --json``'s object, numbers made JSON-safe."""
    data = trial.to_json()
    data["metrics"] = {
        name: {key: finite(value) for key, value in entry.items()}
        for name, entry in data["metrics"].items()
    }
    return data


def _matches(trial: Any, needle: str) -> bool:
    """The search box: a case-insensitive substring of id, command, project, tags, options."""
    hay = " ".join(
        [trial.id, " ".join(trial.command), str(trial.project or ""), " ".join(trial.tags)]
        + [f"{k}={v}" for k, v in trial.options.items()]
    )
    return needle in hay.lower()


def trials_page(
    journal: Any,
    *,
    sort: str = "-created",
    where: Sequence[str] = (),
    status: Sequence[str] = (),
    tags: Sequence[str] = (),
    search: str = "",
    offset: int = 0,
    limit: int = 50,
) -> dict[str, Any]:
    """One page of the trials table, and whether more follow (no count of all: that would
    read every trial of a 100,000-trial journal for one number)."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    needle = search.strip().lower()
    wanted = offset + limit + 1
    found = journal.iter_trials(
        where=list(where),
        status=list(status) or None,
        tags=list(tags) or None,
        sort=sort,
        limit=None if needle else wanted,
    )
    page: list[Any] = []
    seen = 0
    for trial in found:
        if needle and not _matches(trial, needle):
            continue
        seen += 1
        if seen > offset:
            page.append(trial)
        if seen >= wanted:
            break
    more = len(page) > limit
    shown = page[:limit]
    rows = [row(trial) for trial in shown]
    options: dict[str, None] = {}
    for item in rows:
        options.update(dict.fromkeys(item["options"]))
    metrics, primary = metric_columns(shown)
    return {
        "rows": rows,
        "offset": offset,
        "limit": limit,
        "more": more,
        "options": list(options),
        "metrics": metrics,
        "primary": primary,
        "sort": sort,
    }


def metric_columns(trials: Sequence[Any]) -> tuple[list[str], str | None]:
    """The metric columns of a table of ``trials``, in the order that matters: the primary
    metric the most trials declare, the other primaries, the declared metrics, then the other
    numeric statistics, each group by name; and that primary metric (None: none declared)."""
    primaries: dict[str, int] = {}
    declared: set[str] = set()
    found: set[str] = set()
    for trial in trials:
        found.update(trial.metrics)
        declared.update(trial.declarations.modes)
        if trial.primary:
            primaries[trial.primary] = primaries.get(trial.primary, 0) + 1
    ranked = sorted(primaries, key=lambda name: (-primaries[name], name))
    rank = {name: (0, index) for index, name in enumerate(ranked)}
    order = sorted(
        found, key=lambda name: (*rank.get(name, (1 if name in declared else 2, 0)), name)
    )
    return order, (ranked[0] if ranked else None)


def _code_summary(code: dict[str, Any]) -> dict[str, Any]:
    keys = ("vcs", "repository", "branch", "commit", "dirty", "script", "script_sha256")
    summary = {key: code.get(key) for key in keys if code.get(key) is not None}
    summary["changed_files"] = [
        {"path": item.get("path"), "added": item.get("added"), "removed": item.get("removed")}
        for item in (code.get("diffstat") or [])
        if isinstance(item, dict)
    ]
    summary["untracked"] = [
        item.get("path") for item in (code.get("untracked") or []) if isinstance(item, dict)
    ]
    return summary


def _env_summary(env: dict[str, Any], host: dict[str, Any]) -> dict[str, Any]:
    python = env.get("python") or {}
    platform = env.get("platform") or {}
    return {
        "python": python.get("version"),
        "executable": python.get("executable"),
        "platform": " ".join(
            str(platform.get(k)) for k in ("system", "release", "machine") if platform.get(k)
        ),
        "packages": len(env.get("packages") or {}),
        "variables": env.get("variables") or {},
        "hostname": host.get("hostname"),
        "user": host.get("user"),
        "cpus": host.get("cpus"),
        "gpus": [
            f"{g.get('name')} {g.get('memory') or ''}".strip()
            for g in (host.get("gpus") or [])
            if isinstance(g, dict)
        ],
    }


def trial_detail(journal: Any, trial: Any, cache: ColumnCache) -> dict[str, Any]:
    """The trial page's header: the table's row, code and environment, lineage, last seq."""
    store = journal.store
    doc = trial.doc
    # The metrics come from the columns the charts are drawn from: the statistics are read
    # once. A long trial shown from a preview has them once its full read is done.
    columns, complete = cache.get(store, trial)
    trial.metrics = columns.summarizer.result() if complete and columns.summarizer else {}
    lineage = store.lineage(trial_id=trial.id)
    children = store.find_trials(parent_id=trial.id, sort="created_at", limit=100)
    return {
        **row(trial),
        "metrics_complete": complete,
        "cwd": doc.get("cwd"),
        "branch_reason": doc.get("branch_reason"),
        "code": _code_summary(doc.get("code") or {}),
        "env": _env_summary(doc.get("env") or {}, doc.get("host") or {}),
        "runner": {k: v for k, v in (doc.get("runner") or {}).items() if k in ("host", "pid")},
        "ancestors": [{"id": d["id"], "cut": upto} for d, upto in lineage[:-1]],
        "children": [c["id"] for c in children],
        # The page reads statistics and output up to this event, then follows from it.
        "seq": store.last_seq(trial_id=trial.id),
    }


# -- statistics ----------------------------------------------------------------------------


def trial_series(
    journal: Any,
    trial: Any,
    cache: ColumnCache,
    *,
    ys: Sequence[str] = (),
    x: str | None = None,
    upto: int | None = None,
    points: int = DEFAULT_POINTS,
) -> dict[str, Any]:
    """Downsampled curves of one trial: ``ys`` (default: every numeric key but the x)."""
    columns, complete = cache.get(journal.store, trial, upto)
    keys = columns.numeric_keys()
    x_key = x if x else columns.choose_x(ys)
    chosen = [y for y in ys if y] or [k for k in keys if k != x_key][:MAX_CHARTS]
    series = {}
    for key in chosen:
        # The curves of columns that did not change since the last page are drawn again
        # from the last answer: a finished million-point trial costs its read once.
        memo = (key, x_key, points)
        found = columns.drawn.get(memo)
        if found is None or found[0] != columns.count:
            full = columns.series(key, x_key)
            small = downsample(full, points)
            found = (columns.count, {"x": small.xs, "y": small.ys, "points": len(full.xs)})
            columns.drawn[memo] = found
        series[key] = found[1]
    summary = columns.summarizer.result() if columns.summarizer is not None else {}
    return {
        "x": x_key,
        "keys": keys,
        "series": series,
        "count": columns.count,
        "seq": columns.seq,
        "complete": complete,
        "metrics": {k: {f: finite(v) for f, v in entry.items()} for k, entry in summary.items()},
    }


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


# -- output, artifacts, new events ---------------------------------------------------------


def _lineage_bounds(
    store: Any, trial_id: str, upto: int | None
) -> list[tuple[dict[str, Any], int | None]]:
    """The lineage with the trial's own bound set to ``upto``."""
    chain = store.lineage(trial_id=trial_id)
    return [(doc, cut if doc["id"] != trial_id else upto) for doc, cut in chain]


def output(
    journal: Any, trial: Any, *, stream: str, upto: int | None = None, tail: int = OUTPUT_TAIL
) -> dict[str, Any]:
    """The last ``tail`` lines of a stream over the lineage (up to ``upto`` of its own)."""
    store = journal.store
    lines: list[dict[str, Any]] = []
    for doc, bound in reversed(_lineage_bounds(store, trial.id, upto)):
        need = tail - len(lines)
        if need <= 0:
            break
        events = store.read_events(
            trial_id=doc["id"], kinds=(stream,), upto=bound, limit=need, reverse=True
        )
        lines.extend(
            {
                "seq": e.seq,
                "trial": e.trial_id,
                "time": e.time,
                "line": str(e.data.get("line", "")),
                **({"partial": True} if e.data.get("partial") else {}),
            }
            for e in events
        )
    lines.reverse()
    # A partial line (a progress bar's state) shows only until a later line ends it.
    lines = [
        line
        for index, line in enumerate(lines)
        if not line.get("partial") or index == len(lines) - 1
    ]
    total = sum(
        store.count_events(trial_id=doc["id"], kind=stream, upto=bound)
        for doc, bound in _lineage_bounds(store, trial.id, upto)
    )
    return {"stream": stream, "lines": lines, "total": total}


def artifacts(trial: Any) -> list[dict[str, Any]]:
    """The artifacts of the lineage, oldest first (:meth:`kleio.api.Trial.artifacts`)."""
    return [{**item, "filename": str(item.get("filename") or "")} for item in trial.artifacts()]


def find_artifact(trial: Any, sha256: str) -> dict[str, Any] | None:
    """The newest artifact of this trial's lineage with these bytes, else None.

    A download names content the lineage refers to, never a path: nothing else can be had.
    """
    found = [item for item in artifacts(trial) if item.get("sha256") == sha256]
    return found[-1] if found else None


LIVE_KINDS = ("statistic", "stdout", "stderr", "status", "artifact")


def new_events(
    store: Any, trial_id: str, after: int | None, limit: int = 5000
) -> list[dict[str, Any]]:
    """The trial's own events after ``after`` that a page shows, as JSON-ready objects."""
    out = []
    for event in store.read_events(trial_id=trial_id, kinds=LIVE_KINDS, after=after, limit=limit):
        item: dict[str, Any] = {"seq": event.seq, "kind": event.kind, "time": event.time}
        if event.kind == "statistic":
            item["data"] = {k: finite(v) for k, v in event.data.items()}
        elif event.kind in ("stdout", "stderr"):
            item["line"] = str(event.data.get("line", ""))
            if event.data.get("partial"):
                item["partial"] = True  # replaced by the stream's next line
        elif event.kind == "status":
            item["status"] = event.data.get("status")
        else:
            item["filename"] = str(event.data.get("filename") or "")
            item["size"] = event.data.get("size")
        out.append(item)
    return out
