"""The live MongoDB server of the test suite: a real one, or the nx-27017 wire server.

``KLEIO_TEST_MONGODB_URI`` names a real server (a replica set, Atlas) and always takes
precedence. Without it, and when the ``nx-27017`` package is importable (the ``test`` extra
installs it on Python >= 3.10), :class:`WireServer` starts that MongoDB wire-protocol server
(pure Python, SQLite-backed) on a free loopback port. It is a second real peer over pymongo's
socket code, not the reference: where it departs from MongoDB's documented behaviour, tests
are marked with the ``capability`` they need (see :func:`capabilities`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time

LIVE_URI_VARIABLE = "KLEIO_TEST_MONGODB_URI"
_LISTENING = re.compile(rb"Listening on 127\.0\.0\.1:(\d+)")
_START = (
    "import sys; from nx_27017.nx_27017 import main; sys.argv[0] = 'nx-27017'; sys.exit(main())"
)


def _die_with_parent() -> None:
    """In the server's child: SIGKILL it if the test process dies without stopping it."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def configured_uri() -> str | None:
    """The real server named by ``KLEIO_TEST_MONGODB_URI``, if any."""
    return os.environ.get(LIVE_URI_VARIABLE) or None


def wire_server_installed() -> bool:
    return importlib.util.find_spec("nx_27017") is not None


def live_available() -> bool:
    """Tell whether the live MongoDB tests can run (a configured server or the wire server)."""
    return configured_uri() is not None or wire_server_installed()


class WireServer:
    """One nx-27017 process serving ``directory/nx.db`` on 127.0.0.1.

    ``start()`` picks a free port the first time (the server binds port 0 and logs the port
    it got) and reuses it on a restart, so clients holding the URI reconnect to the same
    data: :meth:`stop` then :meth:`start` is an outage.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._starts = 0

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        if self.process is not None:
            return
        self._starts += 1
        log = os.path.join(self.directory, f"server-{self._starts}.log")
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _START,
                    "--db",
                    os.path.join(self.directory, "nx.db"),
                    "--host",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "--log-file",
                    os.path.join(self.directory, "nx.log"),
                    "--pid-file",
                    os.path.join(self.directory, "nx.pid"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # a test's Ctrl-C or killpg does not reach it
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while True:
            with open(log, "rb") as handle:
                match = _LISTENING.search(handle.read())
            if match:
                self.port = int(match.group(1))
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                self.process = None
                with open(log, "rb") as handle:
                    tail = handle.read()[-2000:].decode("utf-8", "replace")
                raise RuntimeError(f"the nx-27017 wire server did not start:\n{tail}")
            time.sleep(0.02)  # waiting for the server's own log line, not ordering events

    def stop(self) -> None:
        """Stop the server (SIGKILL: an outage as a crash or a cut cable leaves it)."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.directory, "nx.pid"))


class Missing(dict):
    """{capability: why it is missing}; the costly probes run when a test first asks."""

    def __init__(self, uri: str, found: dict[str, str]) -> None:
        super().__init__(found)
        self.uri = uri
        self.pending = {"document-limit": _probe_document_limit}

    def _probe(self, name: object) -> None:
        probe = self.pending.pop(name, None) if isinstance(name, str) else None
        if probe is not None:
            reason = probe(self.uri)
            if reason is not None:
                self[name] = reason

    def __contains__(self, name: object) -> bool:
        self._probe(name)
        return super().__contains__(name)

    def __getitem__(self, name: str) -> str:
        self._probe(name)
        return super().__getitem__(name)


def _probe_document_limit(uri: str) -> str | None:
    """MongoDB refuses a document over 16 MiB (maxBsonObjectSize) with a write error."""
    import pymongo

    client: pymongo.MongoClient = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    name = f"kleio_probe_{os.getpid()}_{time.monotonic_ns()}"
    try:
        client[name].probe.insert_one({"_id": 1, "v": "x" * (16 << 20)})
    except (pymongo.errors.OperationFailure, pymongo.errors.DocumentTooLarge):
        return None
    finally:
        with contextlib.suppress(Exception):
            client.drop_database(name)
        client.close()
    return "it stores a document of more than 16 MiB, which MongoDB refuses"


def capabilities(uri: str) -> dict[str, str]:
    """Probe the server at ``uri``; return {capability: why it is missing} for those it lacks.

    Capabilities are MongoDB behaviours some tests rely on:

    * ``explain``: ``explain()`` answers with ``queryPlanner.winningPlan`` as MongoDB's tree
      of stages (``IXSCAN``, ``FETCH``, ``SORT``...).
    * ``null-equality``: ``{field: null}`` matches documents where the field is missing or
      null, and ``{field: {"$ne": null}}`` the others, as MongoDB documents.
    * ``nan``: a document holding NaN and infinite doubles is stored and read back, as BSON
      doubles allow (the nx-27017 wire server keeps documents as JSON and refuses them).
    * ``document-limit``: a document over 16 MiB is refused with a write error, as MongoDB
      does (probed on first use: the probe sends 16 MiB).
    * ``exact-doubles``: a double set by an update reads back exactly, as BSON keeps it (the
      nx-27017 wire server keeps 15 significant digits of an updated value).
    """
    import pymongo

    missing: dict[str, str] = {}
    client: pymongo.MongoClient = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    name = f"kleio_probe_{os.getpid()}_{time.monotonic_ns()}"
    try:
        probe = client[name].probe
        probe.insert_many([{"_id": 1, "v": 1.0}, {"_id": 2, "v": None}, {"_id": 3}])
        probe.create_index("v")
        try:
            plan = probe.find({"v": {"$gte": 0}}).explain()
            winning = (plan.get("queryPlanner") or {}).get("winningPlan")
            if not (isinstance(winning, dict) and "stage" in winning):
                missing["explain"] = (
                    f"explain() answers winningPlan {str(winning)[:60]}, not MongoDB's stages"
                )
        except Exception as error:  # the server may not know the command at all
            missing["explain"] = f"explain() fails: {error}"
        third = 1 / 3
        probe.update_one({"_id": 1}, {"$set": {"v": third}})
        back = (probe.find_one({"_id": 1}) or {}).get("v")
        if back != third:
            missing["exact-doubles"] = f"an update of 1/3 read back {back!r}"
        probe.update_one({"_id": 1}, {"$set": {"v": 1.0}})
        nulls = sorted(doc["_id"] for doc in probe.find({"v": None}))
        not_null = sorted(doc["_id"] for doc in probe.find({"v": {"$ne": None}}))
        if nulls != [2, 3] or not_null != [1]:
            missing["null-equality"] = (
                f"{{v: null}} matched {nulls} and {{v: {{$ne: null}}}} matched {not_null}, "
                "where MongoDB matches [2, 3] and [1]"
            )
        try:
            probe.insert_one({"_id": 4, "v": float("nan"), "w": float("-inf")})
            back = probe.find_one({"_id": 4}) or {}
            if not (back.get("v") != back.get("v") and back.get("w") == float("-inf")):
                missing["nan"] = f"NaN and -inf came back as {back.get('v')!r}, {back.get('w')!r}"
        except pymongo.errors.PyMongoError as error:
            missing["nan"] = f"it refuses a document holding NaN ({error})"
    finally:
        with contextlib.suppress(Exception):
            client.drop_database(name)
        client.close()
    return Missing(uri, missing)
