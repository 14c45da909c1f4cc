"""Wall time of `kleio python trivial.py` against bare `python trivial.py`.

    python benchmarks/wrapper_overhead.py [--runs 30] [--db URI] [--module]

Runs ``kleio`` as users do, through its console script (the ``kleio`` next to this
interpreter; ``--module``: ``python -m kleio`` instead). Runs both commands alternately in a
fresh temporary git repository, each trial run once (kleio resumes nothing: every run uses a
new option value, so every run is a new trial, the realistic case), and prints medians and
their ratio. The package-list cache is warmed first, as it is on any machine after the first
run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(argv: list[str], cwd: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--db", default=None, help="journal URI (default: a temporary SQLite)")
    parser.add_argument("--module", action="store_true", help="run python -m kleio")
    parser.add_argument(
        "--against",
        metavar="KLEIO",
        help="another kleio console script (say, an older version's, in its "
        "own virtual environment), timed in the same alternation",
    )
    args = parser.parse_args()
    python = sys.executable
    script = os.path.join(os.path.dirname(python), "kleio")
    kleio = [python, "-m", "kleio"] if args.module or not os.path.exists(script) else [script]
    print(f"kleio command: {' '.join(kleio)}")
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["git", "init", "-q"], cwd=work, check=True)
        with open(os.path.join(work, "trivial.py"), "w") as handle:
            handle.write("import sys\n")
        env = dict(os.environ)
        env["KLEIO_DB"] = args.db or "sqlite://" + os.path.join(work, "kleio.db")
        env["XDG_CACHE_HOME"] = os.path.join(work, "cache")
        env["XDG_STATE_HOME"] = os.path.join(work, "state")
        # Installed packages ship compiled bytecode; measure that, not the compiler.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        import kleio as package

        subprocess.run(
            [python, "-m", "compileall", "-q", os.path.dirname(package.__file__)],
            check=True,
            env=env,
        )
        timed([*kleio, "python", "trivial.py", "--warmup"], work, env)
        # The other version has its own journal: the two versions' schemas may differ.
        env_other = {**env, "KLEIO_DB": env["KLEIO_DB"] + ".other"}
        if args.against:
            timed([args.against, "python", "trivial.py", "--warmup"], work, env_other)
        bare, wrapped, other = [], [], []
        for i in range(args.runs):
            bare.append(timed([python, "trivial.py", f"--run={i}"], work, env))
            wrapped.append(
                timed([*kleio, "run", "-q", python, "trivial.py", f"--run={i}"], work, env)
            )
            if args.against:
                other.append(
                    timed(
                        [args.against, "run", "-q", python, "trivial.py", f"--run={i}"],
                        work,
                        env_other,
                    )
                )
    b, k = statistics.median(bare), statistics.median(wrapped)
    site = (
        subprocess.run([python, "-X", "importtime", "-c", "pass"], capture_output=True, text=True)
        .stderr.strip()
        .splitlines()
    )
    print(f"python -X importtime -c pass: {site[-1] if site else '?'}")
    spread = (
        f"(bare {min(bare) * 1000:.1f}-{max(bare) * 1000:.1f}, kleio "
        f"{min(wrapped) * 1000:.1f}-{max(wrapped) * 1000:.1f} ms)"
    )
    quartiles = statistics.quantiles(wrapped, n=4) if len(wrapped) > 1 else [k, k, k]
    print(
        f"spread {spread}; kleio quartiles {quartiles[0] * 1000:.1f} / {quartiles[2] * 1000:.1f} ms"
    )
    print(f"bare python trivial.py         median {b * 1000:7.1f} ms")
    print(f"kleio run python trivial.py    median {k * 1000:7.1f} ms")
    print(f"added by kleio                        {(k - b) * 1000:7.1f} ms")
    print(f"ratio                                 {k / b:7.2f}x  (target <= 4x)")
    if other:
        o = statistics.median(other)
        print(
            f"{args.against} run python trivial.py  median {o * 1000:7.1f} ms "
            f"({min(other) * 1000:.1f}-{max(other) * 1000:.1f}), ratio {o / b:.2f}x"
        )


if __name__ == "__main__":
    main()
