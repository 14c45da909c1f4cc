"""The trial page of the dashboard: its header, its curves, its output, artifacts and the
new events it follows.

Statistics are read column by column from the :class:`~kleio.ui.views.ColumnCache` the
server keeps (a running trial is read incrementally); output and artifacts are read over the
trial's lineage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kleio.ui.series import DEFAULT_POINTS, downsample
from kleio.ui.trials_table import finite, row

if TYPE_CHECKING:
    from kleio.ui.views import ColumnCache

#: Output lines a trial page shows at first (the newest).
OUTPUT_TAIL = 2000
#: Charts a trial page draws at most (the rest can be picked by name).
MAX_CHARTS = 24


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
