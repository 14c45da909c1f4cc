"""Sustained ``log_statistic`` throughput into the journal, and the runner's memory.

    python benchmarks/log_statistic_throughput.py [--count 1000000] [--db URI]
        [--runs 5] [--against OTHER/src]

With ``--against``, runs of this tree and of another kleio source tree (an older commit
checked out with ``git worktree add``) alternate, and medians and spreads are printed side by
side, so that a change is measured under the same machine load as what it replaces.

A child logs ``--count`` statistics as fast as it can under ``kleio run``. Reported:

* the child's own rate (how long the training loop was held by the calls);
* the end-to-end rate: every statistic written to the journal, runner exited;
* the runner's peak RSS (``ru_maxrss`` of the children), to show memory stays bounded.

Each statistic is safe once ``log_statistic`` returns, from a crash of the child or of the
runner: it is in the process's ledger file (see docs/reliability.rst). For MongoDB figures,
pass ``--db`` with a real server's URI: mongomock is not a measure of anything.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time

CHILD = textwrap.dedent("""
    import sys, time
    from kleio.client.logger import kleio_logger
    n = int(sys.argv[1])
    log = kleio_logger.log_statistic
    start = time.perf_counter()
    for i in range(n):
        log(step=i, loss=0.5, acc=0.75)
    elapsed = time.perf_counter() - start
    print(f"CHILD {elapsed}")
""")


def run_once(count: int, db: str | None, src: str | None) -> tuple[float, float, int, float, float]:
    """One benchmark run; returns (child rate, end-to-end rate, stored, peak RSS MiB, CPU
    seconds of kleio run and the program together)."""
    with tempfile.TemporaryDirectory() as work:
        script = os.path.join(work, "logger.py")
        with open(script, "w") as handle:
            handle.write(CHILD)
        env = dict(os.environ)
        env["KLEIO_DB"] = db or "sqlite://" + os.path.join(work, "kleio.db")
        env["XDG_CACHE_HOME"] = os.path.join(work, "cache")
        env["XDG_STATE_HOME"] = os.path.join(work, "state")
        if src:
            env["PYTHONPATH"] = src
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        before, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "kleio", "run", "-q", sys.executable, script, str(count)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        total = time.perf_counter() - start
        child = float(result.stdout.split("CHILD ")[1])
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        rss_kib = max(before, usage.ru_maxrss)
        cpu = usage.ru_utime + usage.ru_stime - cpu
        listing = subprocess.run(
            [sys.executable, "-m", "kleio", "ls", "--json"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        trial = json.loads(listing.stdout)[0]["id"]
        stats = subprocess.run(
            [sys.executable, "-m", "kleio", "info", trial, "--json"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        stored = json.loads(stats.stdout)["counts"]["statistic"]
    return count / child, count / total, stored, rss_kib / 1024, cpu


def _summary(values: list[float]) -> str:
    import statistics

    return f"{statistics.median(values):10,.0f}/s  (min {min(values):,.0f}, max {max(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--db", default=None)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--against", default=None, metavar="SRC", help="another kleio source tree to alternate with"
    )
    args = parser.parse_args()
    bare = (
        subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True
        )
        .stderr.strip()
        .splitlines()
    )
    print(
        f"python -X importtime -c pass: {bare[-1] if bare else '?'} (us; an inflated "
        "interpreter slows every figure); load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    trees = [("this tree", None)] + ([("against", args.against)] if args.against else [])
    results: dict[str, list[tuple[float, float, int, float, float]]] = {
        name: [] for name, _ in trees
    }
    for _ in range(args.runs):
        for name, src in trees:  # alternated: both see the same machine load
            results[name].append(run_once(args.count, args.db, src))
    for name, _ in trees:
        runs = results[name]
        print(
            f"[{name}] statistics logged {args.count}, in the journal "
            f"{', '.join(str(r[2]) for r in runs)}"
        )
        print(f"[{name}] child loop      {_summary([r[0] for r in runs])}  (target >= 150,000/s)")
        print(
            f"[{name}] end to end      {_summary([r[1] for r in runs])}"
            "  (target >= 100,000/s, includes start-up)"
        )
        print(f"[{name}] peak RSS        {max(r[3] for r in runs):10.1f} MiB")
        cpus = sorted(r[4] for r in runs)
        print(
            f"[{name}] CPU (run+program) {cpus[len(cpus) // 2]:8.2f} s  (min {cpus[0]:.2f},"
            f" max {cpus[-1]:.2f}; {args.count / cpus[len(cpus) // 2]:,.0f} statistics per"
            " CPU second)"
        )
    print(
        "peers on this kind of machine: MLflow log_metric into SQLite 260/s, "
        "Sacred log_scalar (in memory) 127,000/s"
    )


if __name__ == "__main__":
    main()
