"""Cost of ``import kleio.client.logger`` in a program, against bare python.

    python benchmarks/import_time.py [--runs 40]

Both commands run alternately in fresh interpreters with compiled bytecode, as installed
packages have it; medians are printed with the difference (target: at most 20 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for name in ("KLEIO_CHANNEL", "KLEIO_TRIAL_ID"):
        env.pop(name, None)
    import kleio

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", os.path.dirname(kleio.__file__)],
        check=True,
        env=env,
    )
    bare, client = [], []
    for _ in range(args.runs):
        bare.append(timed([sys.executable, "-c", "pass"], env))
        client.append(timed([sys.executable, "-c", "import kleio.client.logger"], env))
    b, c = statistics.median(bare), statistics.median(client)
    print(f"python -c pass                         median {b * 1000:6.1f} ms")
    print(f"python -c 'import kleio.client.logger'  median {c * 1000:6.1f} ms")
    print(
        f"added by the import                           {(c - b) * 1000:6.1f} ms  (target <= 20 ms)"
    )


if __name__ == "__main__":
    main()
