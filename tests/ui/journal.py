"""Journals for the dashboard and plot tests, written straight through the store (fast)."""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any

from kleio.storage.base import SCHEMA_VERSION, encode, first_seq


def trial_id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def add_trial(
    store: Any,
    name: str,
    *,
    options: dict[str, Any] | None = None,
    stats: list[dict[str, Any]] = (),
    status: str = "completed",
    stdout: list[str] = (),
    stderr: list[str] = (),
    tags: list[str] = (),
    parent: tuple[str, int] | None = None,
    artifacts: list[tuple[str, bytes, dict[str, Any]]] = (),
    created_at: float | None = None,
    command: list[str] | None = None,
) -> str:
    """Create a trial with one execution holding these statistics, output and artifacts.

    Returns its id. ``parent``: (parent id, cut seq) makes it a branch.
    """
    tid = trial_id(name)
    now = created_at if created_at is not None else time.time()
    options = dict(options or {})
    argv = command or ["python", "train.py", *[f"--{k}={v}" for k, v in options.items()]]
    doc = {
        "schema_version": SCHEMA_VERSION,
        "id": tid,
        "created_at": now,
        "project": "demo",
        "root": "/work/demo",
        "command": argv,
        "argv": argv,
        "cwd": ".",
        "config": {k: str(v) for k, v in options.items()},
        "config_files": {},
        "redacted": [],
        "parent": {"id": parent[0], "cut": parent[1]} if parent else None,
        "tags": sorted(tags),
        "code": {
            "vcs": "git",
            "repository": "https://example.invalid/demo.git",
            "branch": "main",
            "commit": "0" * 40,
            "dirty": False,
        },
        "env": {
            "python": {"version": "3.11.7", "executable": "/usr/bin/python3"},
            "platform": {"system": "Linux", "release": "6.1", "machine": "x86_64"},
            "packages": {"numpy": "2.0"},
        },
        "host": {"hostname": "testhost", "user": "me", "cpus": 2},
        "status": status,
        "status_at": now,
        "heartbeat_at": now if status == "running" else None,
        "runner": None,
        "started_at": now,
        "ended_at": None if status == "running" else now + 5,
        "exit_code": 0 if status == "completed" else None,
    }
    store.create_trial(doc=doc)
    events = [(0, "status", now, encode({"status": "new"}))]
    seq = first_seq(1)
    events.append((seq, "status", now, encode({"status": "running"})))
    for stat in stats:
        seq += 1
        events.append((seq, "statistic", now, encode(stat)))
    for kind, lines in (("stdout", stdout), ("stderr", stderr)):
        for line in lines:
            seq += 1
            events.append((seq, kind, now, encode({"line": line})))
    for filename, content, metadata in artifacts:
        sha, size = store.put_blob(fileobj=io.BytesIO(content))
        seq += 1
        events.append(
            (
                seq,
                "artifact",
                now,
                encode({"filename": filename, "metadata": metadata, "sha256": sha, "size": size}),
            )
        )
    if status != "running":
        seq += 1
        events.append((seq, "status", now + 5, encode({"status": status, "exit_code": 0})))
    store.append_events(trial_id=tid, events=events)
    return tid


def next_seq(store: Any, tid: str) -> int:
    return (store.last_seq(trial_id=tid) or 0) + 1


def log(store: Any, tid: str, *stats: dict[str, Any], kind: str = "statistic") -> None:
    """Append statistics (or output lines with kind=stdout) to a running trial."""
    seq = next_seq(store, tid)
    events = []
    for offset, stat in enumerate(stats):
        events.append((seq + offset, kind, time.time(), encode(stat)))
    store.append_events(trial_id=tid, events=events)


def sweep(store: Any) -> dict[str, str]:
    """A small sweep: two learning rates x two seeds, one running trial, one branch."""
    ids = {}
    for lr in (0.1, 0.5):
        for seed in (0, 1):
            curve = [
                {
                    "epoch": e,
                    "loss": (1.0 / (e + 1)) * (1 + lr) + 0.01 * seed,
                    "val_acc": 0.5 + 0.04 * e * (1 - lr / 2) + 0.005 * seed,
                }
                for e in range(1, 11)
            ]
            ids[f"lr{lr}-s{seed}"] = add_trial(
                store,
                f"lr{lr}-s{seed}",
                options={"lr": lr, "seed": seed},
                stats=curve,
                stdout=[f"epoch {s['epoch']} loss {s['loss']:.3f}" for s in curve],
                tags=["sweep"],
                artifacts=[("model.txt", f"weights lr={lr}".encode(), {"epoch": 10})],
            )
    return ids
