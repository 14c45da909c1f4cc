"""The MongoDB backend over loopback next to SQLite: ``log_statistic`` end to end and ``ls``.

    python benchmarks/mongodb_backend.py [--count 20000] [--trials 100000] [--runs 5]
        [--db mongodb://HOST/DATABASE]

Without ``--db`` the benchmark starts the nx-27017 wire server (``pip install nx-27017``) on a
free loopback port and stops it at the end. **That server's own speed limits every MongoDB
figure**: it is pure Python over SQLite, one process, and it decodes each document, so the
figures say what kleio costs against a slow peer, not what MongoDB does. Give ``--db`` a real
server's URI (a database the benchmark may fill and drop) to measure one.

1. ``log_statistic`` end to end: a child logs ``--count`` statistics under ``kleio run``;
   the figure is statistics per second of the whole ``kleio run`` (start-up, snapshot,
   reservation, every statistic in the journal, runner exited), SQLite and MongoDB runs
   alternated so both see the same machine load.
2. ``kleio ls --limit 50`` (and the commands it sends MongoDB, counted with pymongo's
   command monitoring for ``--limit 5`` and ``50``) over ``--trials`` completed trials, the
   newest ``--with-events`` of them (1,000) with their four status events. ``ls`` reads the
   events of the trials it shows, which MongoDB finds through the ``_id`` and
   ``trial_kind_seq`` indexes whatever the other trials hold; the wire server's reads slow
   down with every event document it holds (with the events of all 100,000 trials one ``ls``
   took over three minutes). The journal is filled outside the timed part (SQLite through
   the store; MongoDB with pymongo's bulk ``insert_many`` of the documents ``MongoDBStore``
   writes, from one trial document made by ``kleio.trial.build_trial``), then only the
   ``kleio`` command is timed, as a whole process: wall time and CPU time (user + system of
   that process).

Medians and spreads (min-max) of ``--runs`` runs are printed. Run it with an interpreter
that no ``.pth`` file slows (a plain venv with ``pymongo psutil PyYAML filelock nx-27017``)
and ``PYTHONPATH=src``: whole-process timings include the interpreter's start-up.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
SRC_USED = [SRC]  # --src: another kleio source tree (a commit exported elsewhere)

CHILD = textwrap.dedent("""
    import sys
    from kleio.client.logger import kleio_logger
    log = kleio_logger.log_statistic
    for i in range(int(sys.argv[1])):
        log(step=i, loss=0.5, acc=0.75)
""")


def kleio_env(work: str, db: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KLEIO_DB=db,
        PYTHONPATH=SRC_USED[0],
        HOME=work,
        XDG_CACHE_HOME=os.path.join(work, "cache"),
        XDG_STATE_HOME=os.path.join(work, "state"),
        XDG_CONFIG_HOME=os.path.join(work, "config"),
        XDG_DATA_HOME=os.path.join(work, "data"),
        KLEIOTEST_SEED="0",
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed(argv: list[str], cwd: str, env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``argv`` as a whole process: (wall seconds, CPU seconds, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


def kleio(*args: str) -> list[str]:
    return [sys.executable, "-m", "kleio", *args]


# -- log_statistic end to end ---------------------------------------------------------------


def log_statistic_once(db: str, count: int) -> float:
    """Statistics per second of one whole ``kleio run`` of the child."""
    with tempfile.TemporaryDirectory() as work:
        script = os.path.join(work, "logger.py")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(CHILD)
        env = kleio_env(work, db)
        wall, _, _ = timed(kleio("run", "-q", sys.executable, script, str(count)), work, env)
        _, _, listing = timed(kleio("ls", "--json"), work, env)
        import json

        rows = json.loads(listing)
        if len(rows) != 1:
            raise SystemExit(f"{db}: expected one trial, listed {listing}")
        [row] = rows
        _, _, info = timed(kleio("info", row["id"], "--json"), work, env)
        stored = json.loads(info)["counts"]["statistic"]
        if stored != count:
            raise SystemExit(f"{db}: {stored} statistics in the journal, not {count}")
    return count / wall


# -- ls --limit 50 over many trials ---------------------------------------------------------


def trial_template(work: str) -> dict:
    from kleio.config import load_config
    from kleio.trial import build_trial

    script = os.path.join(work, "train.py")
    with open(script, "w", encoding="utf-8") as handle:
        handle.write("print('train')\n")
    doc, _ = build_trial(["python", script, "--lr", "0.1"], work, load_config())
    return doc


def trial_docs(template: dict, trials: int):
    """``trials`` completed trials made from ``template``, created a second apart."""
    base = template["created_at"] - trials
    for index in range(trials):
        created = base + index
        yield {
            **template,
            "id": hashlib.sha256(b"%d" % index).hexdigest(),
            "argv": [*template["argv"][:-1], str(index)],
            "command": [*template["command"][:-1], str(index)],
            "config": {"lr": index},
            "created_at": created,
            "status": "completed",
            "status_at": created + 0.5,
            "started_at": created + 0.01,
            "heartbeat_at": created + 0.5,
            "ended_at": created + 0.5,
            "exit_code": 0,
        }


def status_events(doc: dict) -> list:
    """The four status events of a trial run once, as the runner journals them."""
    from kleio.storage.base import encode

    created, started, ended = doc["created_at"], doc["started_at"], doc["ended_at"]
    runner = {"host": "bench", "pid": 1, "since": started}
    return [
        (0, "status", created, encode({"status": "new"})),
        (1, "status", started, encode({"status": "reserved", "runner": runner})),
        (2, "status", started, encode({"status": "running", "execution": 1})),
        (3, "status", ended, encode({"status": "completed", "exit_code": 0})),
    ]


def fill_sqlite(uri: str, template: dict, trials: int, with_events: int) -> None:
    from kleio.storage import open_store

    with open_store(uri) as store:
        for index, doc in enumerate(trial_docs(template, trials)):
            store.create_trial(doc=doc)
            if index >= trials - with_events:
                store.append_events(trial_id=doc["id"], events=status_events(doc))


def fill_mongodb(uri: str, template: dict, trials: int, with_events: int) -> None:
    import pymongo

    from kleio.storage.mongodb import MongoDBStore

    MongoDBStore(uri).close()  # the meta document and the indexes, as kleio makes them
    client: pymongo.MongoClient = pymongo.MongoClient(uri)
    try:
        db = client.get_default_database()
        batch, events = [], []
        for index, doc in enumerate(trial_docs(template, trials)):
            fields = {key: value for key, value in doc.items() if key != "id"}
            # _sum: the summary state MongoDBStore gives every trial it creates (without it
            # a reader takes the trial for one of an older kleio and summarizes its events).
            batch.append(
                {
                    "_id": doc["id"],
                    **MongoDBStore._to_mongo(fields),
                    "_sum": {"last_stat_seq": None, "runs_ok": True},
                }
            )
            if index >= trials - with_events:
                events += [
                    MongoDBStore._event_doc(doc["id"], event) for event in status_events(doc)
                ]
            if len(batch) == 1000:
                db.trials.insert_many(batch, ordered=False)
                batch = []
            if len(events) >= 1000:
                db.events.insert_many(events, ordered=False)
                events = []
        # insert_many raises if any document is refused
        if batch:
            db.trials.insert_many(batch, ordered=False)
        if events:
            db.events.insert_many(events, ordered=False)
    finally:
        client.close()


def round_trips(uri: str, limit: int) -> dict[str, int]:
    """The commands one ``kleio ls --limit LIMIT`` sends the server, by name, counted with
    pymongo's command monitoring (in this process, on the kleio of ``--src``)."""
    import contextlib
    import io

    import pymongo
    from pymongo import monitoring

    import kleio.cli.ls as ls
    import kleio.storage
    from kleio.storage.mongodb import MongoDBStore

    sent: dict[str, int] = {}

    class Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            if event.command_name not in ("hello", "ismaster", "isMaster", "endSessions"):
                sent[event.command_name] = sent.get(event.command_name, 0) + 1

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    client: pymongo.MongoClient = pymongo.MongoClient(uri, event_listeners=[Listener()])
    real = kleio.storage.open_store
    kleio.storage.open_store = lambda _: MongoDBStore(uri, client=client)  # type: ignore
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    try:
        with contextlib.redirect_stdout(out):
            ls.main(["--limit", str(limit)], {"db": uri})
    finally:
        kleio.storage.open_store = real
        client.close()
    return sent


def drop(base: str, used: list[str]) -> None:
    """Drop the databases in ``used`` (the wire server shares collections between databases
    of one name, so each measurement starts from an empty server)."""
    if not used:
        return
    import pymongo

    from kleio.storage.mongodb import database_from_uri

    client: pymongo.MongoClient = pymongo.MongoClient(base)
    try:
        for uri in used:
            client.drop_database(database_from_uri(uri))
    finally:
        client.close()
    used.clear()


def summary(values: list[float], unit: str, scale: float = 1.0, fmt: str = ",.0f") -> str:
    scaled = [value * scale for value in values]
    return (
        f"{statistics.median(scaled):{fmt}} {unit} "
        f"(min {min(scaled):{fmt}}, max {max(scaled):{fmt}}, n={len(scaled)})"
    )


def main() -> None:  # noqa: C901 - a benchmark script
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--count", type=int, default=20_000, help="statistics per kleio run (default 20,000)"
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=100_000,
        help="trials in the journal kleio ls lists (default 100,000)",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--with-events",
        type=int,
        default=1_000,
        metavar="N",
        help="the newest N trials get their status events (default 1,000; see the module's help)",
    )
    parser.add_argument(
        "--db",
        default=None,
        metavar="MONGODB_URI",
        help="a real server's database to fill and drop, instead of nx-27017",
    )
    parser.add_argument(
        "--src", default=SRC, help="the kleio source tree to run (default: this checkout's src)"
    )
    parser.add_argument("--skip-statistics", action="store_true")
    parser.add_argument("--skip-ls", action="store_true")
    args = parser.parse_args()
    SRC_USED[0] = os.path.abspath(args.src)
    sys.path[:0] = [SRC_USED[0], ROOT]
    from kleio.storage.mongodb import with_database

    server = None
    with tempfile.TemporaryDirectory() as work:
        if args.db is None:
            from tests.mongodb.server import WireServer

            server = WireServer(os.path.join(work, "nx"))
            server.start()
            base, peer = server.uri, "nx-27017 wire server on loopback"
        else:
            base, peer = args.db, "the server of --db"
        print(f"MongoDB: {peer}; SQLite: a file in {tempfile.gettempdir()}")
        if server is not None:
            print(
                "The wire server's own speed limits the MongoDB figures (pure Python over "
                "SQLite, one process): they bound kleio's cost from above, they do not "
                "measure MongoDB."
            )
        used: list[str] = []
        try:
            if not args.skip_statistics:
                rates: dict[str, list[float]] = {"sqlite": [], "mongodb": []}
                for run in range(args.runs):
                    sqlite_uri = "sqlite://" + os.path.join(work, f"stat-{run}", "kleio.db")
                    mongo_uri = with_database(base, f"kleio_bench_{uuid.uuid4().hex[:8]}")
                    used.append(mongo_uri)
                    rates["sqlite"].append(log_statistic_once(sqlite_uri, args.count))
                    rates["mongodb"].append(log_statistic_once(mongo_uri, args.count))
                    drop(base, used)
                for name, values in rates.items():
                    print(
                        f"log_statistic end to end, {args.count:,} statistics, {name:7}: "
                        f"{summary(values, 'statistics/s')}"
                    )
            if not args.skip_ls:
                template = trial_template(work)
                sqlite_uri = "sqlite://" + os.path.join(work, "ls", "kleio.db")
                mongo_uri = with_database(base, f"kleio_bench_ls_{uuid.uuid4().hex[:8]}")
                used.append(mongo_uri)
                for name, uri, fill in (
                    ("sqlite", sqlite_uri, fill_sqlite),
                    ("mongodb", mongo_uri, fill_mongodb),
                ):
                    start = time.perf_counter()
                    fill(uri, template, args.trials, min(args.trials, args.with_events))
                    print(
                        f"filled {name} with {args.trials:,} trials in "
                        f"{time.perf_counter() - start:.1f} s (not timed below)"
                    )
                walls: dict[str, list[float]] = {"sqlite": [], "mongodb": []}
                cpus: dict[str, list[float]] = {"sqlite": [], "mongodb": []}
                env_work = os.path.join(work, "ls-cwd")
                os.makedirs(env_work, exist_ok=True)
                for _ in range(args.runs):
                    for name, uri in (("sqlite", sqlite_uri), ("mongodb", mongo_uri)):
                        wall, cpu, out = timed(
                            kleio("ls", "--limit", "50"), env_work, kleio_env(env_work, uri)
                        )
                        if len(out.splitlines()) < 51:
                            raise SystemExit(f"kleio ls on {name} listed too few rows:\n{out}")
                        walls[name].append(wall)
                        cpus[name].append(cpu)
                        shown = out.splitlines()[:2]
                print("kleio ls shows, first row:\n  " + "\n  ".join(shown))
                for limit in (5, 50):
                    sent = round_trips(mongo_uri, limit)
                    print(
                        f"kleio ls --limit {limit} on mongodb: {sum(sent.values())} commands "
                        f"({', '.join(f'{k} {v}' for k, v in sorted(sent.items()))})"
                    )
                for name in walls:
                    print(
                        f"kleio ls --limit 50 over {args.trials:,} trials, {name:7}: wall "
                        f"{summary(walls[name], 'ms', 1000)}; CPU "
                        f"{summary(cpus[name], 'ms', 1000)}"
                    )
            _, cpu, _ = timed([sys.executable, "-c", "pass"], work, kleio_env(work, "x"))
            print(f"for scale: {sys.executable} -c pass costs {cpu * 1000:.0f} ms of CPU")
        finally:
            drop(base, used)
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
