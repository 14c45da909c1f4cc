"""Speed of the dashboard (``kleio ui``), served by the real server over loopback HTTP.

    python benchmarks/dashboard.py [--trials 100000] [--statistics 1000000] [--dir DIR]

Measures, on journals it builds once in ``--dir`` (kept for the next run):

* the first page of the trials table (50 rows, default sort) of a journal of ``--trials``;
* a trial page of a trial with ``--statistics`` statistics: the trial and its charts'
  first answer (a preview beyond 100,000 statistics), then the full read;
* live update latency: a statistic appended by another writer, until the page's event
  stream delivers it (20 times).

Prints median and worst of each. Loopback only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from kleio.storage import open_store  # noqa: E402
from kleio.storage.base import SCHEMA_VERSION, encode, first_seq  # noqa: E402

PACKAGES = {f"package-{i}": f"{i}.0.{i % 7}" for i in range(150)}


def doc_for(index: int, now: float) -> dict:
    tid = f"{index:064x}"
    options = {"lr": str(0.001 * (1 + index % 10)), "seed": str(index % 3), "epochs": "10"}
    return {
        "schema_version": SCHEMA_VERSION,
        "id": tid,
        "created_at": now + index * 1e-3,
        "project": "bench",
        "root": "/bench",
        "command": ["python", "train.py"],
        "argv": ["python", "train.py", *[f"--{k}={v}" for k, v in options.items()]],
        "cwd": ".",
        "config": options,
        "config_files": {},
        "redacted": [],
        "parent": None,
        "tags": ["sweep"],
        "code": {"vcs": "git", "commit": "0" * 40, "dirty": False},
        "env": {"python": {"version": "3.11"}, "packages": PACKAGES},
        "host": {"hostname": "bench"},
        "status": "completed",
        "status_at": now,
        "heartbeat_at": None,
        "runner": None,
        "started_at": now,
        "ended_at": now + 60,
        "exit_code": 0,
    }


def build_many(uri: str, count: int) -> None:
    with open_store(uri) as store:
        if store.get_trial(trial_id=f"{count - 1:064x}") is not None:
            return  # built by an earlier run
        have = 0
        while have < count and store.get_trial(trial_id=f"{have:064x}") is not None:
            have += 1000
        have = max(0, have - 1000)
        now = time.time()
        start = time.perf_counter()
        for index in range(have, count):
            doc = doc_for(index, now)
            store.create_trial(doc=doc)
            seq = first_seq(1)
            events = [
                (0, "status", now, encode({"status": "new"})),
                (seq, "status", now, encode({"status": "running"})),
            ]
            for epoch in range(1, 11):
                events.append(
                    (
                        seq + epoch,
                        "statistic",
                        now,
                        encode({"epoch": epoch, "loss": 1.0 / epoch, "val_acc": 0.5 + epoch / 40}),
                    )
                )
            events.append((seq + 11, "status", now + 60, encode({"status": "completed"})))
            store.append_events(trial_id=doc["id"], events=events)
            if index % 10000 == 0:
                print(f"  built {index} trials ({time.perf_counter() - start:.0f} s)", flush=True)


def build_long(uri: str, count: int) -> str:
    tid = "f" * 64
    with open_store(uri) as store:
        if store.get_trial(trial_id=tid) is not None:
            return tid
        now = time.time()
        doc = doc_for(0, now)
        doc.update(id=tid, status="running", ended_at=None, heartbeat_at=now)
        store.create_trial(doc=doc)
        base = first_seq(1)
        store.append_events(
            trial_id=tid, events=[(base, "status", now, encode({"status": "running"}))]
        )
        batch = []
        for step in range(count):
            batch.append(
                (
                    base + 1 + step,
                    "statistic",
                    now,
                    encode({"step": step, "loss": 1.0 / (step + 1)}),
                )
            )
            if len(batch) == 50000:
                store.append_events(trial_id=tid, events=batch)
                batch = []
        if batch:
            store.append_events(trial_id=tid, events=batch)
    return tid


class Server:
    def __init__(self, uri: str) -> None:
        env = dict(os.environ, KLEIO_DB=uri)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kleio", "ui", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        line = self.process.stdout.readline()
        self.base = re.search(r"at (http://\S+)", line).group(1).rstrip("/")

    def get(self, path: str) -> tuple[float, dict]:
        start = time.perf_counter()
        with urllib.request.urlopen(self.base + path, timeout=600) as response:
            body = json.loads(response.read())
        return time.perf_counter() - start, body

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def report(name: str, seconds: list[float]) -> None:
    print(
        f"{name}: median {statistics.median(seconds) * 1000:.0f} ms, "
        f"worst {max(seconds) * 1000:.0f} ms over {len(seconds)}"
    )


def live_latency(uri: str, server: Server, tid: str, runs: int = 20) -> list[float]:
    _, detail = server.get(f"/api/trials/{tid}")
    received: dict[int, float] = {}
    done = threading.Event()

    def listen() -> None:
        url = f"{server.base}/api/trials/{tid}/live?after={detail['seq']}"
        with urllib.request.urlopen(url, timeout=120) as stream:
            for raw in stream:
                if raw.startswith(b"data: "):
                    for event in json.loads(raw[6:]):
                        received[event["seq"]] = time.time()
                if len(received) >= runs or done.is_set():
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    latencies = []
    with open_store(uri) as store:
        for _ in range(runs):
            seq = store.last_seq(trial_id=tid) + 1
            sent = time.time()
            store.append_events(
                trial_id=tid, events=[(seq, "statistic", sent, encode({"loss": 0.5}))]
            )
            deadline = time.monotonic() + 30
            while seq not in received and time.monotonic() < deadline:
                time.sleep(0.005)
            latencies.append(received.get(seq, float("inf")) - sent)
    done.set()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100000)
    parser.add_argument("--statistics", type=int, default=1000000)
    parser.add_argument("--dir", default="/tmp/kleio-dashboard-bench")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    many = "sqlite://" + os.path.join(args.dir, f"many-{args.trials}.db")
    long = "sqlite://" + os.path.join(args.dir, f"long-{args.statistics}.db")
    print(f"building (once) {args.trials} trials and one of {args.statistics} statistics")
    build_many(many, args.trials)
    tid = build_long(long, args.statistics)

    server = Server(many)
    try:
        report(
            f"trials table, first page of {args.trials} trials",
            [server.get("/api/trials?limit=50")[0] for _ in range(5)],
        )
        report(
            "trials table, fifth page",
            [server.get("/api/trials?limit=50&offset=200")[0] for _ in range(3)],
        )
    finally:
        server.stop()

    server = Server(long)
    try:
        start = time.perf_counter()
        server.get(f"/api/trials/{tid}")
        _, series = server.get(f"/api/trials/{tid}/series")
        ready = time.perf_counter() - start
        points = sum(len(s["x"]) for s in series["series"].values())
        print(
            f"trial page of {args.statistics} statistics: charts ready in {ready * 1000:.0f}"
            f" ms ({'complete' if series['complete'] else 'preview'}, {points} points)"
        )
        while not series["complete"]:
            time.sleep(0.5)
            _, series = server.get(f"/api/trials/{tid}/series")
        print(f"  full read done after {time.perf_counter() - start:.1f} s")
        _, series = server.get(f"/api/trials/{tid}/series")
        report(
            "  the same page again (columns cached)",
            [server.get(f"/api/trials/{tid}/series")[0] for _ in range(3)],
        )
        report("live update latency", live_latency(long, server, tid))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
