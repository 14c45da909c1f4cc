"""Sustained ``log_statistic`` throughput into the journal, and the runner's memory.

    python benchmarks/log_statistic_throughput.py [--count 1000000] [--db URI]

A child logs ``--count`` statistics as fast as it can under ``kleio run``. Reported:

* the child's own rate (how long the training loop was held by the calls);
* the end-to-end rate: every statistic written to the journal, runner exited;
* the runner's peak RSS (``ru_maxrss`` of the children), to show memory stays bounded.

Each statistic is safe from a child crash once ``log_statistic`` returns (it is in the
runner's hands or the kernel's socket buffer). For MongoDB figures, pass ``--db`` with a real
server's URI: mongomock is not a measure of anything.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        script = os.path.join(work, "logger.py")
        with open(script, "w") as handle:
            handle.write(CHILD)
        env = dict(os.environ)
        env["KLEIO_DB"] = args.db or "sqlite://" + os.path.join(work, "kleio.db")
        env["XDG_CACHE_HOME"] = os.path.join(work, "cache")
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "kleio", "run", "-q", sys.executable, script,
             str(args.count)], cwd=work, env=env, capture_output=True, text=True, check=True)
        total = time.perf_counter() - start
        child = float(result.stdout.split("CHILD ")[1])
        rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        count = subprocess.run(
            [sys.executable, "-m", "kleio", "ls", "--json"], cwd=work, env=env,
            capture_output=True, text=True, check=True)
        trial = json.loads(count.stdout)[0]["id"]
        stats = subprocess.run(
            [sys.executable, "-m", "kleio", "info", trial, "--json"], cwd=work, env=env,
            capture_output=True, text=True, check=True)
        stored = json.loads(stats.stdout)["counts"]["statistic"]
    print(f"statistics logged            {args.count}")
    print(f"statistics in the journal    {stored}")
    print(f"child loop                   {args.count / child:12,.0f} statistics/s")
    print(f"end to end (incl. start-up)  {args.count / total:12,.0f} statistics/s"
          "  (target >= 150,000/s)")
    print(f"peak RSS of a child process  {rss_kib / 1024:12.1f} MiB")
    print("peers on this kind of machine: MLflow log_metric into SQLite 260/s, "
          "Sacred log_scalar (in memory) 127,000/s")


if __name__ == "__main__":
    main()
