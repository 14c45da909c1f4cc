"""``kleio diff A B [C...]`` (alias ``compare``): what differs between trials."""

from __future__ import annotations

import os
import shlex
from typing import Any

from kleio.cli.common import emit, parser, print_json, printable, printable_values, table, text
from kleio.storage import Store
from kleio.trial import resolve_trial, short_id


def _summary(journal: Any, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{key: {"last", "best", "mode"}}`` of a trial's lineage statistics.

    Metrics (see :mod:`kleio.metrics`) have a mode and a best value; other keys (``epoch``,
    ``lr``) only their last value: no mode calls them better.
    """
    from kleio.api import Trial

    trial = Trial(journal, doc)
    result: dict[str, dict[str, Any]] = {}
    for stat in trial.iter_statistics():
        for key, value in stat.items():
            result[key] = {"last": value, "best": None, "mode": None}
    for key, entry in trial.metrics.items():
        result[key] = {
            "last": result.get(key, {}).get("last", entry["last"]),
            "best": entry["best"],
            "mode": entry["mode"],
        }
    return result


def _options(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    missing = object()
    rows = []
    for key in list(dict.fromkeys([*a, *b])):
        old, new = a.get(key, missing), b.get(key, missing)
        if old != new:
            rows.append(
                {
                    "option": key,
                    "a": None if old is missing else old,
                    "b": None if new is missing else new,
                }
            )
    return rows


def compare(
    store: Store,
    doc_a: dict[str, Any],
    doc_b: dict[str, Any],
    candidates: list[str | None],
    journal: Any = None,
) -> dict[str, Any]:
    """The JSON shape of ``kleio diff --json`` of two trials."""
    from kleio.codestate import CodeUnavailable, code_diff
    from kleio.snapshot.compare import code_changes, env_changes, host_changes

    code_a, code_b = doc_a.get("code") or {}, doc_b.get("code") or {}
    try:
        unified: str | None = code_diff(store, code_a, code_b, candidates)
        unavailable = None
    except CodeUnavailable as error:
        unified, unavailable = None, str(error)
    stats_a, stats_b = _summary(journal, doc_a), _summary(journal, doc_b)
    shared = [key for key in stats_a if key in stats_b]
    return {
        "a": doc_a["id"],
        "b": doc_b["id"],
        "command": {"a": list(doc_a.get("argv") or []), "b": list(doc_b.get("argv") or [])},
        "options": _options(doc_a.get("config") or {}, doc_b.get("config") or {}),
        "code": {
            "changes": [str(c) for c in code_changes(code_a, code_b)],
            "diff": unified,
            "unavailable": unavailable,
        },
        # Every difference, also those that never refuse a resume (a package added, devices,
        # thread counts, the host): a reader comparing two results wants to see them.
        "env": [str(c) for c in env_changes(doc_a.get("env") or {}, doc_b.get("env") or {})]
        + [str(c) for c in host_changes(doc_a.get("host") or {}, doc_b.get("host") or {})],
        "statistics": [
            {
                "key": key,
                "last": [stats_a[key]["last"], stats_b[key]["last"]],
                "best": [stats_a[key]["best"], stats_b[key]["best"]],
                "mode": stats_a[key]["mode"] or stats_b[key]["mode"],
                "better": {"min": "lower", "max": "higher"}.get(
                    stats_a[key]["mode"] or stats_b[key]["mode"] or ""
                ),
            }
            for key in shared
        ],
    }


def _cell(value: Any) -> str:
    """One table cell: a huge value is clipped, so it cannot pad every other row."""
    from kleio.cli.selection import cell

    return cell(value)


def render(result: dict[str, Any]) -> str:
    """``kleio diff A B`` for people; journalled text :func:`~kleio.cli.common.printable`
    (the code diff keeps its lines and tabs)."""
    unified = result["code"]["diff"]
    result = printable_values(result)
    a, b = short_id(result["a"]), short_id(result["b"])
    out = [f"--- a {a}", f"+++ b {b}", "", "command"]
    out += [
        f"  a  {shlex.join(result['command']['a'])}",
        f"  b  {shlex.join(result['command']['b'])}",
    ]
    if result["options"]:
        out.append("\noptions")
        out += [
            f"  {row['option']}: {_cell(row['a'])} → {_cell(row['b'])}" for row in result["options"]
        ]
    code = result["code"]
    out.append("\ncode")
    if not code["changes"] and not code["diff"]:
        out.append("  same code")
    out += [f"  {line}" for line in code["changes"]]
    if code["unavailable"]:
        out.append(f"  (no unified diff: {code['unavailable']})")
    out.append("\nenvironment")
    out += [f"  {line}" for line in result["env"]] or ["  same environment"]
    if result["statistics"]:
        out.append("\nstatistics (last and best value of each shared key)")
        rows = [
            [
                s["key"],
                _cell(s["last"][0]),
                _cell(s["last"][1]),
                _cell(s["best"][0]),
                _cell(s["best"][1]),
                s["better"] or "-",
            ]
            for s in result["statistics"]
        ]
        body = table(["KEY", f"LAST {a}", f"LAST {b}", f"BEST {a}", f"BEST {b}", "BETTER"], rows)
        out += ["  " + line for line in body.splitlines()]
    text = "\n".join(out) + "\n"
    if unified:
        text += "\n" + printable(unified, lines=True)
    return text


def side_by_side(journal: Any, docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON shape of ``kleio diff --json`` (and ``kleio compare``) of three trials or more:
    the options that differ, each metric's best and last, status and duration, and which
    trial is best by each metric."""
    from kleio.api import Trial
    from kleio.metrics import rank_key

    trials = [Trial(journal, doc) for doc in docs]
    missing = object()
    names = list(dict.fromkeys(k for t in trials for k in t.options))
    options = []
    for name in names:
        values = [t.options.get(name, missing) for t in trials]
        if any(v != values[0] for v in values):
            options.append(
                {"option": name, "values": [None if v is missing else v for v in values]}
            )
    metrics = []
    for name in dict.fromkeys(m for t in trials for m in t.metrics):
        entries = [t.metrics.get(name) for t in trials]
        mode = next(e["mode"] for e in entries if e)
        bests = [e["best"] if e else None for e in entries]
        ranked = [t for t, b in zip(trials, bests) if b is not None and b == b]
        top = min(ranked, key=lambda t: rank_key(t.metrics[name]["best"], mode)) if ranked else None
        metrics.append(
            {
                "name": name,
                "mode": mode,
                "best": bests,
                "last": [e["last"] if e else None for e in entries],
                "best_trial": top.id if top else None,
            }
        )
    return {
        "trials": [t.id for t in trials],
        "status": [t.status for t in trials],
        "duration": [t.duration for t in trials],
        "command": [t.command for t in trials],
        "options": options,
        "metrics": metrics,
        "code": [
            {
                "commit": (t.doc.get("code") or {}).get("commit"),
                "dirty": (t.doc.get("code") or {}).get("dirty"),
            }
            for t in trials
        ],
    }


def render_side_by_side(result: dict[str, Any]) -> str:
    """``kleio diff A B C...`` for people, journalled text
    :func:`~kleio.cli.common.printable`."""
    from kleio.cli.common import duration

    result = printable_values(result)
    ids = [short_id(i) for i in result["trials"]]
    rows = [
        ["status", *result["status"]],
        ["duration", *[duration(d) for d in result["duration"]]],
        [
            "commit",
            *[(c["commit"] or "-")[:10] + ("+" if c["dirty"] else "") for c in result["code"]],
        ],
    ]
    rows += [[f"--{o['option']}", *[_cell(v) for v in o["values"]]] for o in result["options"]]
    for metric in result["metrics"]:
        best = [
            _cell(v) + ("*" if i == metric["best_trial"] else "")
            for v, i in zip(metric["best"], result["trials"])
        ]
        rows.append([f"{metric['name']} best ({metric['mode']})", *best])
        rows.append([f"{metric['name']} last", *[_cell(v) for v in metric["last"]]])
    text = table(["", *ids], rows)
    return text + "* the best trial by that metric; '+' a commit with uncommitted changes\n"


def main(argv: list[str], flags: dict[str, Any]) -> int:
    from kleio.cli.selection import journal_of

    p = parser(
        "diff",
        "Compare trials. Two: command and options, code (a unified diff), "
        "environment, and the last and best value of their shared statistics (best by "
        "each metric's mode). Three or more: side by side, the options that differ, "
        "each metric's best and last, status and duration.",
    )
    p.add_argument(
        "ids", nargs="+", metavar="ID", help="trial ids or unique prefixes of them (two or more)"
    )
    p.add_argument(
        "--metric",
        action="append",
        type=text,
        metavar="NAME[:MODE]",
        default=[],
        help="treat NAME as a metric, MODE min or max (repeatable)",
    )
    args = p.parse_args(argv)
    if len(args.ids) < 2:
        p.error("give two trial ids or more")
    with journal_of(flags, args.metric) as journal:
        store = journal.store
        docs = [resolve_trial(store, given) for given in args.ids]
        if len(docs) == 2:
            doc_a, doc_b = docs
            result = compare(
                store, doc_a, doc_b, [os.getcwd(), doc_a.get("root"), doc_b.get("root")], journal
            )
        else:
            result = side_by_side(journal, docs)
    if args.json:
        print_json(result)
    elif len(docs) == 2:
        emit(render(result))
    else:
        emit(render_side_by_side(result))
    return 0
