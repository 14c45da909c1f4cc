"""``kleio diff A B``: what differs between two trials."""

from __future__ import annotations

import os
import shlex
from typing import Any

from kleio.cli.common import emit, parser, print_json, store_from, table
from kleio.storage import Store
from kleio.trial import resolve_trial

# A statistic whose key holds one of these is better when lower; any other, when higher.
_LOWER_IS_BETTER = ("loss", "err", "mse", "mae", "nll", "perplexity", "ppl", "time", "cost",
                    "regret", "wer", "cer")


def lower_is_better(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _LOWER_IS_BETTER)


def _summary(store: Store, trial_id: str) -> dict[str, dict[str, Any]]:
    """``{key: {"last", "best"}}`` of the numeric statistics of a trial's lineage."""
    result: dict[str, dict[str, Any]] = {}
    for event in store.iter_lineage_events(trial_id=trial_id, kinds=("statistic",)):
        for key, value in event.data.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                if key not in result:
                    result[key] = {"last": value, "best": None}
                else:
                    result[key]["last"] = value
                continue
            entry = result.setdefault(key, {"last": value, "best": value})
            entry["last"] = value
            best = entry["best"]
            if best is None or (value < best if lower_is_better(key) else value > best):
                entry["best"] = value
    return result


def _options(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    missing = object()
    rows = []
    for key in list(dict.fromkeys([*a, *b])):
        old, new = a.get(key, missing), b.get(key, missing)
        if old != new:
            rows.append({"option": key, "a": None if old is missing else old,
                         "b": None if new is missing else new})
    return rows


def compare(store: Store, doc_a: dict[str, Any], doc_b: dict[str, Any],
            candidates: list[str | None]) -> dict[str, Any]:
    """The JSON shape of ``kleio diff --json``."""
    from kleio.codestate import CodeUnavailable, code_diff
    from kleio.snapshot import code_changes, env_changes, host_changes

    code_a, code_b = doc_a.get("code") or {}, doc_b.get("code") or {}
    try:
        unified: str | None = code_diff(store, code_a, code_b, candidates)
        unavailable = None
    except CodeUnavailable as error:
        unified, unavailable = None, str(error)
    stats_a, stats_b = _summary(store, doc_a["id"]), _summary(store, doc_b["id"])
    shared = [key for key in stats_a if key in stats_b]
    return {
        "a": doc_a["id"],
        "b": doc_b["id"],
        "command": {"a": list(doc_a.get("argv") or []), "b": list(doc_b.get("argv") or [])},
        "options": _options(doc_a.get("config") or {}, doc_b.get("config") or {}),
        "code": {"changes": [str(c) for c in code_changes(code_a, code_b)], "diff": unified,
                 "unavailable": unavailable},
        # Every difference, also those that never refuse a resume (a package added, devices,
        # thread counts, the host): a reader comparing two results wants to see them.
        "env": [str(c) for c in env_changes(doc_a.get("env") or {}, doc_b.get("env") or {})]
        + [str(c) for c in host_changes(doc_a.get("host") or {}, doc_b.get("host") or {})],
        "statistics": [
            {"key": key, "last": [stats_a[key]["last"], stats_b[key]["last"]],
             "best": [stats_a[key]["best"], stats_b[key]["best"]],
             "better": None if stats_a[key]["best"] is None
             else ("lower" if lower_is_better(key) else "higher")}
            for key in shared
        ],
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render(result: dict[str, Any]) -> str:
    a, b = result["a"][:7], result["b"][:7]
    out = [f"--- a {a}", f"+++ b {b}", "", "command"]
    out += [f"  a  {shlex.join(result['command']['a'])}",
            f"  b  {shlex.join(result['command']['b'])}"]
    if result["options"]:
        out.append("\noptions")
        out += [f"  {row['option']}: {_cell(row['a'])} → {_cell(row['b'])}"
                for row in result["options"]]
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
        rows = [[s["key"], _cell(s["last"][0]), _cell(s["last"][1]), _cell(s["best"][0]),
                 _cell(s["best"][1]), s["better"] or "-"] for s in result["statistics"]]
        body = table(["KEY", f"LAST {a}", f"LAST {b}", f"BEST {a}", f"BEST {b}", "BETTER"],
                     rows)
        out += ["  " + line for line in body.splitlines()]
    text = "\n".join(out) + "\n"
    if code["diff"]:
        text += "\n" + code["diff"]
    return text


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser("diff", "Compare two trials: command and options, code (a unified diff), "
               "environment, and the last and best value of their shared statistics.")
    p.add_argument("a", help="trial id or a unique prefix of it")
    p.add_argument("b", help="trial id or a unique prefix of it")
    args = p.parse_args(argv)
    store, _ = store_from(flags)
    with store:
        doc_a, doc_b = resolve_trial(store, args.a), resolve_trial(store, args.b)
        result = compare(store, doc_a, doc_b, [os.getcwd(), doc_a.get("root"),
                                               doc_b.get("root")])
    if args.json:
        print_json(result)
    else:
        emit(render(result))
    return 0
