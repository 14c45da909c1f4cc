"""Cost of choosing among trials: ``kleio best``, ``ls --sort -METRIC``, ``ls`` and ``export``.

    python benchmarks/choose_among_trials.py [--trials 40] [--statistics 100] [--runs 5]
                                             [--db URI]

Builds a journal of ``--trials`` completed trials with ``--statistics`` statistics each
(``epoch``, ``val_loss``, ``val_acc``, a declared primary metric), written through the store
as a runner would, then runs each command ``--runs`` times as a whole process and prints the
median wall time, the median CPU time (user + system, which a loaded machine distorts less)
and the largest peak memory. ``--db`` uses that journal (e.g. a MongoDB URI) instead of a
temporary SQLite file; it must be empty.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def build(uri: str, trials: int, per_trial: int) -> None:
    from kleio.storage import open_store
    from kleio.storage.base import encode, first_seq

    rng = random.Random(1)
    with open_store(uri) as store:
        for index in range(trials):
            trial_id = f"{rng.getrandbits(256):064x}"
            lr = rng.choice([0.01, 0.03, 0.1, 0.3])
            now = time.time()
            store.create_trial(
                doc={
                    "id": trial_id,
                    "created_at": now,
                    "status": "completed",
                    "parent": None,
                    "tags": [],
                    "project": "bench",
                    "argv": ["python", "train.py", "--lr", str(lr), "--seed", str(index)],
                    "config": {"lr": str(lr), "seed": str(index)},
                    "started_at": now,
                    "ended_at": now + 60,
                }
            )
            start = first_seq(1)
            events = [
                (0, "status", now, encode({"status": "new"})),
                (start, "status", now, encode({"status": "reserved"})),
                (start + 1, "status", now, encode({"status": "running"})),
                (
                    start + 2,
                    "metrics",
                    now,
                    encode(
                        {"metrics": {"val_loss": "min", "val_acc": "max"}, "primary": "val_acc"}
                    ),
                ),
            ]
            events += [
                (
                    start + 3 + i,
                    "statistic",
                    now,
                    encode({"epoch": i, "val_loss": rng.random(), "val_acc": rng.random()}),
                )
                for i in range(per_trial)
            ]
            events.append(
                (
                    start + 3 + per_trial,
                    "status",
                    now + 60,
                    encode({"status": "completed", "exit_code": 0}),
                )
            )
            store.append_events(trial_id=trial_id, events=events)


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--statistics", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = args.db or "sqlite://" + os.path.join(tmp, "kleio.db")
        started = time.perf_counter()
        build(uri, args.trials, args.statistics)
        print(
            f"journal: {args.trials} trials x {args.statistics} statistics "
            f"({time.perf_counter() - started:.1f} s to build)"
        )
        env = dict(os.environ, KLEIO_DB=uri)
        kleio = [sys.executable, "-m", "kleio"]
        commands = {
            "kleio best": [*kleio, "best"],
            "kleio ls --sort -val_acc --limit 50": [
                *kleio,
                "ls",
                "--sort",
                "-val_acc",
                "--limit",
                "50",
            ],
            "kleio ls": [*kleio, "ls"],
            "kleio ls --group-by-except seed": [*kleio, "ls", "--group-by-except", "seed"],
            "kleio export --format jsonl": [*kleio, "export", "--format", "jsonl"],
            "kleio config (start-up alone)": [*kleio, "config"],
        }
        for name, argv in commands.items():
            runs = [measure(argv, env) for _ in range(args.runs)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            peak = max(r[2] for r in runs) / 1024
            print(
                f"{name:40s} wall {wall * 1000:7.0f} ms  cpu {cpu * 1000:7.0f} ms  "
                f"peak {peak:6.1f} MiB"
            )


if __name__ == "__main__":
    main()
