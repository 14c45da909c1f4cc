"""Reading commands at scale (issue 9's speed targets), as whole processes.

    python benchmarks/reading_at_scale.py [--trials 100000] [--statistics 20]
        [--big 1000000] [--runs 5] [--src DIR] [--python EXE] [--db-dir DIR] [--only A,B]
        [--against DIR --against-db-dir DIR]

Builds, through the store of the kleio source tree ``--src`` (default: this checkout's
``src``) as a runner would write it, an SQLite journal of ``--trials`` completed trials with
``--statistics`` statistics each (``epoch``, ``val_loss``, ``val_acc``, declared modes and a
primary metric) and one trial with ``--big`` statistics (``step``, ``epoch`` = step // 1000,
``loss``, ``acc``). Then it runs each command ``--runs`` times with ``--python`` (use a plain
venv: ``python -m venv /tmp/avenv && /tmp/avenv/bin/pip install pymongo psutil PyYAML
filelock``) and ``PYTHONPATH=--src``, and prints the median and spread (min-max) of the wall
time, the median CPU time and the largest peak memory (ru_maxrss of the child), beside
``python -X importtime -c pass`` of the same interpreter. Point ``--src`` at the tree of an
earlier commit (``git archive COMMIT src | tar -x -C /tmp/before``) for the "before" figures:
each tree builds its own journal (the journal format changed). With ``--against`` (another
tree's ``src``) and ``--against-db-dir`` (its journal, built by that tree), each run of a
command on this tree is followed by one on the other, so both see the same machine load.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

BUILD = r"""
import random, sys, time
from kleio.storage import open_store
from kleio.storage.base import encode, first_seq

uri, trials, per_trial, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(1)
declared = encode({"metrics": {"val_loss": "min", "val_acc": "max"}, "primary": "val_acc"})


def doc(trial_id, index, now, lr):
    return {"id": trial_id, "created_at": now + index * 1e-3, "status": "completed",
            "parent": None, "tags": [], "project": "bench",
            "argv": ["python", "train.py", "--lr", str(lr), "--seed", str(index)],
            "command": ["python", "train.py", "--lr", str(lr), "--seed", str(index)],
            "config": {"lr": str(lr), "seed": str(index)}, "config_files": {},
            "started_at": now, "ended_at": now + 60, "cwd": "."}


def opening(now):
    start = first_seq(1)
    return start, [(0, "status", now, encode({"status": "new"})),
                   (start, "status", now, encode({"status": "reserved"})),
                   (start + 1, "status", now, encode({"status": "running"})),
                   (start + 2, "metrics", now, declared)]


with open_store(uri) as store:
    now = time.time()
    for index in range(trials):
        trial_id = f"{rng.getrandbits(256):064x}"
        lr = rng.choice([0.01, 0.03, 0.1, 0.3])
        store.create_trial(doc=doc(trial_id, index, now, lr))
        start, events = opening(now)
        events += [(start + 3 + i, "statistic", now,
                    encode({"epoch": i, "val_loss": rng.random(), "val_acc": rng.random()}))
                   for i in range(per_trial)]
        events.append((start + 3 + per_trial, "status", now + 60,
                       encode({"status": "completed", "exit_code": 0})))
        store.append_events(trial_id=trial_id, events=events)
    big_id = "b" * 64
    store.create_trial(doc=doc(big_id, trials, now, 0.1))
    start, events = opening(now)
    store.append_events(trial_id=big_id, events=events)
    seq = start + 3
    for low in range(0, big, 5000):
        batch = [(seq + i, "statistic", now, encode({"step": i, "epoch": i // 1000,
                                                     "loss": 1 / (1 + i), "acc": i / big}))
                 for i in range(low, min(big, low + 5000))]
        store.append_events(trial_id=big_id, events=batch)
        seq += len(batch)
    store.append_events(trial_id=big_id, events=[(seq, "status", now + 60,
                                                  encode({"status": "completed"}))])
print(big_id)
"""


def import_time(python: str) -> float:
    """Total ms of ``python -X importtime -c pass`` (the interpreter's own start-up)."""
    done = subprocess.run(
        [python, "-X", "importtime", "-c", "pass"], capture_output=True, text=True, check=True
    )
    total = 0
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+\s+\|\s+(\d+)\s+\|\s?(\S.*)$", line)
        if match and not match.group(2).startswith(" "):
            total += int(match.group(1))
    return total / 1000


def measure(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, int]:
    """(wall s, cpu s, peak KiB) of one run; os.wait4 gives this child's own rusage."""
    start = time.perf_counter()
    child = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    error = child.stderr.read().decode() if child.stderr else ""
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv[2:])} failed: {error.strip()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def report(name: str, runs: list[tuple[float, float, int]], rows: int) -> None:
    """One line: median wall time [spread], median CPU, largest peak, rows/s if any."""
    walls = [r[0] for r in runs]
    cpu = statistics.median(r[1] for r in runs)
    peak = max(r[2] for r in runs) / 1024
    rate = f"  {rows / statistics.median(walls) / 1000:6.0f} k rows/s" if rows else ""
    print(
        f"{name:55s} wall {statistics.median(walls) * 1000:7.0f} ms "
        f"[{min(walls) * 1000:.0f}-{max(walls) * 1000:.0f}]  cpu {cpu * 1000:6.0f} ms"
        f"  peak {peak:6.1f} MiB{rate}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--statistics", type=int, default=20)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--src", default=os.path.join(os.path.dirname(HERE), "src"))
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--db-dir", default=None, help="keep the journal here (reused)")
    parser.add_argument("--only", default=None, help="comma-separated command names")
    parser.add_argument("--against", default=None, help="another tree's src, alternated")
    parser.add_argument("--against-db-dir", default=None, help="its journal's directory")
    args = parser.parse_args()
    if args.against and not args.against_db_dir:
        parser.error("--against needs --against-db-dir (a journal that tree built)")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KLEIO_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PYTHONPATH"] = os.path.abspath(args.src)
    tmp = tempfile.mkdtemp(prefix="kleio-bench-")
    try:
        directory = args.db_dir or tmp
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "kleio.db")
        uri = "sqlite://" + path
        env["KLEIO_DB"] = uri
        env["HOME"] = tmp
        env["XDG_CONFIG_HOME"] = os.path.join(tmp, "config")
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        with open(os.path.join(work, "train.py"), "w") as handle:
            handle.write("print('train')\n")
        if not os.path.exists(path):
            started = time.perf_counter()
            subprocess.run(
                [
                    args.python,
                    "-c",
                    BUILD,
                    uri,
                    str(args.trials),
                    str(args.statistics),
                    str(args.big),
                ],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            print(
                f"journal: {args.trials} trials x {args.statistics} statistics + one of "
                f"{args.big} ({time.perf_counter() - started:.0f} s to build, "
                f"{os.path.getsize(path) / 2**20:.0f} MiB)"
            )
        big = "b" * 7
        kleio = [args.python, "-m", "kleio"]
        epoch = max(0, args.big // 2000)
        commands = {
            "ls --sort -val_acc --limit 50": ["ls", "--sort", "-val_acc", "--limit", "50"],
            "best --metric val_acc": ["best", "--metric", "val_acc"],
            "best (primary metric)": ["best"],
            "ls": ["ls"],
            "cat --statistics --json BIG": ["cat", "--statistics", "--json", big],
            "cat --statistics BIG": ["cat", "--statistics", big],
            f"branch --timestamp epoch={epoch} --no-run BIG": [
                "branch",
                "--timestamp",
                f"epoch={epoch}",
                "--no-run",
                "-q",
                big,
            ],
            "config (start-up alone)": ["config"],
        }
        only = set(args.only.split(",")) if args.only else None
        print(
            f"python -X importtime -c pass: {import_time(args.python):.1f} ms "
            f"({args.python}); src {args.src}; load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
            flush=True,
        )
        trees = [("", env)]
        if args.against:
            other = dict(
                env,
                PYTHONPATH=os.path.abspath(args.against),
                KLEIO_DB="sqlite://" + os.path.join(args.against_db_dir, "kleio.db"),
            )
            trees.append(("[against] ", other))
        for name, argv in commands.items():
            if only and not any(word in name for word in only):
                continue
            runs: dict[str, list[tuple[float, float, int]]] = {label: [] for label, _ in trees}
            for _ in range(args.runs):
                for label, tree_env in trees:  # alternated: the same load for both
                    runs[label].append(measure([*kleio, *argv], tree_env, work))
            for label, _ in trees:
                report(label + name, runs[label], args.big if name.startswith("cat") else 0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
