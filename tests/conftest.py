"""Shared fixtures: every test runs with its own HOME, XDG directories and no KLEIO_* leak."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

# A suite started in the background by a non-interactive shell (``bash .ci/run &``, some CI
# runners) inherits SIGINT ignored, and so would every kleio and program a test starts (kleio
# keeps a signal it was started with ignored, as it must): the tests that press Ctrl-C need
# SIGINT as a terminal gives it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Isolate HOME, XDG dirs and every KLEIO_* variable in ``tmp_path``."""
    for name in list(os.environ):
        if name.startswith("KLEIO_") and name != "KLEIO_TEST_MONGODB_URI":
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    # A seed in the environment: kleio's before-run warning about trials without a seed
    # would be on every test's stderr (tests/cli/test_launch.py checks the warning itself).
    monkeypatch.setenv("KLEIOTEST_SEED", "0")

    monkeypatch.setenv("GIT_AUTHOR_NAME", "kleio test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@kleio.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "kleio test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@kleio.invalid")
    return home


def git(cwd, *args):
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def git_repo(tmp_path, monkeypatch):
    """A clean git repository with one commit holding ``train.py``; cwd is set to it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", "https://example.invalid/team/project.git")
    (repo / "train.py").write_text("import sys\nprint('args', sys.argv[1:])\n", encoding="utf-8")
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "initial")
    monkeypatch.chdir(repo)
    return repo


@pytest.fixture
def db_uri(tmp_path, monkeypatch):
    """An SQLite journal in tmp_path, exported as KLEIO_DB for subprocesses."""
    uri = "sqlite://" + str(tmp_path / "journal" / "kleio.db")
    monkeypatch.setenv("KLEIO_DB", uri)
    return uri


@pytest.fixture(scope="session")
def mongodb_uri(tmp_path_factory):
    """The base URI of a live MongoDB server for the whole session.

    ``KLEIO_TEST_MONGODB_URI`` (a real server) takes precedence; otherwise the nx-27017 wire
    server is started on a free loopback port and stopped at the end. Skips when neither.
    """
    from tests.mongodb.server import WireServer, configured_uri, wire_server_installed

    uri = configured_uri()
    if uri is not None:
        yield uri
        return
    if not wire_server_installed():
        pytest.skip("set KLEIO_TEST_MONGODB_URI or install nx-27017 (the test extra does)")
    server = WireServer(str(tmp_path_factory.mktemp("mongodb")))
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongodb_missing(mongodb_uri):
    """{capability: reason} for the MongoDB behaviours the live server lacks."""
    from tests.mongodb.server import capabilities

    return capabilities(mongodb_uri)


@pytest.fixture
def mongodb_db_uri(request, mongodb_uri):
    """A URI naming a fresh database on the live server; the database is dropped after.

    A test marked ``capability("name")`` is skipped, with the reason, on a server without it.
    """
    import uuid

    from kleio.storage.mongodb import with_database

    missing = request.getfixturevalue("mongodb_missing")
    for mark in request.node.iter_markers("capability"):
        for name in mark.args:
            if name in missing:
                pytest.skip(f"the live MongoDB server lacks {name}: {missing[name]}")
    uri = with_database(mongodb_uri, f"kleio_test_{uuid.uuid4().hex[:12]}")
    yield uri
    import pymongo

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(client.get_default_database().name)
    finally:
        client.close()


def write(path, text):
    """Write ``text`` (dedented) to ``path`` and return the path."""
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def run_kleio(*args, cwd=None, env=None, timeout=60, input=None):
    """Run the real ``kleio`` entry point as a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "kleio", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )
