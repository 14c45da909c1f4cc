"""``kleio info ID``: everything kleio knows about one trial."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

from kleio.cli.common import (
    duration,
    emit,
    parser,
    print_json,
    printable_values,
    store_from,
    when,
)
from kleio.reservation import hostname, status_of
from kleio.storage import Store
from kleio.trial import resolve_trial, short_id


def pending(
    store: Store, doc: dict[str, Any], *, host: str, spool_dir: str, status: str
) -> list[dict[str, Any]]:
    """What dead runners of this trial left unjournalled: here (with sizes) or elsewhere."""
    from kleio.ledger import leftovers, pending_bytes

    found: list[dict[str, Any]] = [
        {"host": host, "directory": item.directory, "bytes": pending_bytes(item.directory)}
        for item in leftovers(spool_dir, doc["id"])
        if item.journal in ("", store.uri)
    ]
    runner = doc.get("runner") or {}
    if status == "lost" and runner.get("host") and runner.get("host") != host:
        found.append({"host": runner.get("host"), "directory": None, "bytes": None})
    return found


def checks_of(store: Store, trial_id: str) -> list[dict[str, Any]]:
    """The findings checks journalled while the trial ran (``check`` events), oldest first."""
    return [
        {**e.data, "time": e.time, "seq": e.seq}
        for e in store.read_events(trial_id=trial_id, kinds=("check",))
    ]


def describe(
    store: Store, doc: dict[str, Any], *, host: str, stale_after: float, spool_dir: str = ""
) -> dict[str, Any]:
    """The JSON shape of ``kleio info --json`` (kept stable, tested)."""
    trial_id = doc["id"]
    status = status_of(store, doc, host=host, stale_after=stale_after)
    events = store.read_events(trial_id=trial_id, kinds=("status",))
    history = [
        {
            "status": e.data.get("status"),
            "time": e.time,
            "seq": e.seq,
            **(
                {"host": e.data["runner"].get("host"), "pid": e.data["runner"].get("pid")}
                if isinstance(e.data.get("runner"), dict)
                else {}
            ),
            **({"exit_code": e.data["exit_code"]} if "exit_code" in e.data else {}),
            **(
                {"problems": e.data["problems"]} if isinstance(e.data.get("problems"), dict) else {}
            ),
        }
        for e in events
    ]
    from kleio.api.trial import execution_times  # the read API: only once it is needed

    first, ran = execution_times(store, doc, status, events=events)
    lineage = store.lineage(trial_id=trial_id)
    # Each ancestor's cut is the one inherited from the branch below it (``upto``).
    ancestors = [{"id": d["id"], "cut": upto} for d, upto in lineage[:-1]]
    counts = {
        kind: sum(store.count_events(trial_id=d["id"], kind=kind, upto=upto) for d, upto in lineage)
        for kind in ("statistic", "artifact", "stdout", "stderr")
    }
    return {
        "id": trial_id,
        "short_id": short_id(trial_id),
        "status": status,
        "command": list(doc.get("argv") or doc.get("command") or []),
        "normalized_command": list(doc.get("command") or []),
        "project": doc.get("project"),
        "cwd": doc.get("cwd"),
        "config": doc.get("config") or {},
        "config_files": doc.get("config_files") or {},
        "tags": list(doc.get("tags") or []),
        "parent": doc.get("parent"),
        "branch_reason": doc.get("branch_reason"),
        "ancestors": ancestors,
        "created_at": doc.get("created_at"),
        "started_at": first if first is not None else doc.get("started_at"),
        "last_started_at": doc.get("started_at"),
        "ended_at": doc.get("ended_at"),
        "duration": ran,
        "exit_code": doc.get("exit_code"),
        "runner": doc.get("runner"),
        "heartbeat_at": doc.get("heartbeat_at"),
        "history": history,
        "code": doc.get("code") or {},
        "env": doc.get("env") or {},
        "host": doc.get("host") or {},
        "counts": counts,
        "checks": checks_of(store, trial_id),
        "pending": pending(store, doc, host=host, spool_dir=spool_dir, status=status)
        if spool_dir
        else [],
    }


def render(info: dict[str, Any]) -> str:
    """``kleio info`` for people: one block per part of the trial's record (its text
    :func:`~kleio.cli.common.printable`: a value holding a newline or an escape sequence
    stays on its line and cannot drive the terminal)."""
    info = printable_values(info)
    sections = (_identity, _configuration, _history, _code, _environment, _host, _journal)
    return "\n".join(line for section in sections for line in section(info)) + "\n"


def _identity(info: dict[str, Any]) -> Iterator[str]:
    code = f" (exit code {info['exit_code']})" if info["exit_code"] is not None else ""
    yield f"trial    {info['id']}"
    yield f"status   {info['status']}{code}"
    yield f"command  {shlex.join(info['command'])}"
    if info["cwd"] not in (None, "", "."):
        yield f"cwd      {info['cwd']}"
    yield f"project  {info['project']}"
    if info["tags"]:
        yield f"tags     {', '.join(info['tags'])}"
    if info["ancestors"]:
        chain = " -> ".join(
            f"{short_id(a['id'])} (up to {_cut(a['cut'])})"
            if a["cut"] is not None
            else short_id(a["id"])
            for a in info["ancestors"]
        )
        yield f"lineage  {chain} -> {info['short_id']}"
        if info.get("branch_reason"):
            yield f"branched {info['branch_reason']}"
    yield (
        f"started  {when(info['started_at'])}   ended {when(info['ended_at'])}   "
        f"duration {duration(info['duration'])}"
    )


def _configuration(info: dict[str, Any]) -> Iterator[str]:
    if info["config"]:
        yield "\nconfiguration"
        for key, value in info["config"].items():
            yield f"  {key} = {value}"
    for path, digest in info["config_files"].items():
        yield f"  config file {path} (sha256 {str(digest)[:12]})"


def _history(info: dict[str, Any]) -> Iterator[str]:
    yield "\nstatus history"
    for item in info["history"]:
        where = f"  on {item['host']} pid {item['pid']}" if item.get("host") else ""
        code = f"  exit {item['exit_code']}" if item.get("exit_code") is not None else ""
        yield f"  {when(item['time'])}  {item['status']}{where}{code}"
        if item.get("problems"):  # what the runner could not journal, counted (reliability)
            counts = ", ".join(f"{k} {v}" for k, v in sorted(item["problems"].items()))
            yield f"    journal problems: {counts} (see docs/reliability.rst)"


def _code(info: dict[str, Any]) -> Iterator[str]:
    code = info["code"]
    yield "\ncode"
    if code.get("vcs") != "git":
        yield (
            f"  no git repository; script {code.get('script')} "
            f"sha256 {str(code.get('script_sha256'))[:12]}"
        )
        return
    yield f"  repository {code.get('repository')}"
    commit = code.get("commit") or "(none yet)"  # a repository with no commit
    yield f"  commit     {commit}  branch {code.get('branch') or '(detached)'}"
    yield f"  dirty      {'yes' if code.get('dirty') else 'no'}"
    for item in code.get("diffstat") or []:
        yield f"    {item.get('path')} (+{item.get('added')} -{item.get('removed')})"
    for item in code.get("untracked") or []:
        yield f"    untracked {item.get('path')} ({item.get('size')} bytes)"


def _environment(info: dict[str, Any]) -> Iterator[str]:
    env = info["env"]
    python = env.get("python") or {}
    platform = env.get("platform") or {}
    yield "\nenvironment"
    yield f"  python     {python.get('version')} ({python.get('executable')})"
    yield (
        f"  platform   {platform.get('system')} {platform.get('release')} {platform.get('machine')}"
    )
    yield f"  packages   {len(env.get('packages') or {})} installed"
    for name, value in (env.get("variables") or {}).items():
        yield f"  {name}={value}"


def _host(info: dict[str, Any]) -> Iterator[str]:
    host = info["host"]
    yield "\nhost"
    yield (
        f"  {host.get('hostname')}  user {host.get('user')}  cpus {host.get('cpus')}  "
        f"memory {round((host.get('memory_bytes') or 0) / 2**30, 1)} GiB"
    )
    for gpu in host.get("gpus") or []:
        yield f"  gpu {gpu.get('name')} {gpu.get('memory')}"


def _journal(info: dict[str, Any]) -> Iterator[str]:
    counts = info["counts"]
    yield (
        f"\njournal  {counts['statistic']} statistics, {counts['artifact']} artifacts, "
        f"{counts['stdout']} stdout lines, {counts['stderr']} stderr lines"
    )
    if info.get("checks"):
        yield "\nchecks (found while it ran; 'kleio check ID' runs them again)"
        for item in info["checks"]:
            stopped = " -> stopped the program" if item.get("action") == "stop" else ""
            yield (
                f"  {when(item.get('time'))}  {item.get('severity')}  {item.get('message')} "
                f"[{item.get('name')}]{stopped}"
            )
    for item in info.get("pending") or []:
        if item["directory"]:
            yield (
                f"pending  {item['bytes']} bytes on this host not journalled yet, in "
                f"{item['directory']}: run 'kleio sync'"
            )
        else:
            yield (
                f"pending  its runner on host {item['host']} died; what it had not "
                f"journalled waits there: run 'kleio sync' on {item['host']}"
            )


def _cut(seq: int) -> str:
    """A cut for people: the run (execution) and the event number within it."""
    from kleio.storage.base import EXECUTION_SHIFT

    run, event = seq >> EXECUTION_SHIFT, seq & ((1 << EXECUTION_SHIFT) - 1)
    return f"run {run} event {event}" if run else "its creation"


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser("info", "Show a trial's command, status history, code, environment and host.")
    p.add_argument("id", help="trial id or a unique prefix of it")
    args = p.parse_args(argv)
    store, config = store_from(flags)
    with store:
        doc = resolve_trial(store, args.id)
        info = describe(
            store,
            doc,
            host=hostname(config.hostname),
            stale_after=config.stale_after,
            spool_dir=config.spool_dir,
        )
    if args.json:
        print_json(info)
    else:
        emit(render(info))
    return 0
