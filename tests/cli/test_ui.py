"""``kleio ui`` through the real entry point: start-up, refusals, the token, MongoDB."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.conftest import run_kleio
from tests.ui import conftest as dashboard
from tests.ui.journal import sweep

pytest.importorskip("starlette")

# The dashboard tests' fixtures (tests/ui/conftest.py): a journal, and a real kleio ui.
serve = dashboard.serve
sqlite_journal = dashboard.sqlite_journal


def fetch(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_ui_refuses_a_journal_that_does_not_exist_and_creates_none(tmp_path):
    path = tmp_path / "missing" / "kleio.db"
    result = run_kleio("ui", "--db", "sqlite://" + str(path), "--port", "0")
    assert result.returncode == 71
    assert result.stderr == (
        f"error: there is no journal at {path}. Point --db or KLEIO_DB "
        "at an existing journal, or run a trial first (e.g. 'kleio "
        "python train.py').\n"
    )
    assert not path.parent.exists()


def test_ui_leaves_an_empty_file_alone_as_no_journal(tmp_path):
    path = tmp_path / "e.db"
    path.touch()
    result = run_kleio("ui", "--db", str(path), "--port", "0")
    assert result.returncode == 71 and "(the file is empty)" in result.stderr
    assert path.stat().st_size == 0


def test_ui_names_the_extra_when_starlette_is_missing(sqlite_journal):
    code = (
        "import sys; sys.modules['starlette'] = None; from kleio.cli import main; "
        f"sys.exit(main(['ui', '--db', {sqlite_journal[0]!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 76
    assert result.stderr == (
        "error: kleio ui needs starlette, which is not installed. "
        "Install it with: pip install 'kleio[ui]'.\n"
    )


def test_ui_serves_loopback_without_a_token(serve, sqlite_journal):
    uri, ids = sqlite_journal
    server = serve(uri)
    assert server.url.startswith("http://127.0.0.1:") and "token" not in server.url
    status, body = fetch(server.base + "/api/trials")
    assert status == 200 and len(json.loads(body)["rows"]) == 4
    status, body = fetch(server.base + "/")
    assert status == 200 and b"/static/app.js" in body


def test_ui_with_host_prints_a_token_and_requires_it(serve, sqlite_journal):
    uri, _ = sqlite_journal
    server = serve(uri, "--host", "127.0.0.1")
    assert "?token=" in server.url
    token = server.url.split("?token=", 1)[1]
    assert len(token) >= 32
    assert fetch(server.base + "/api/trials")[0] == 401
    assert fetch(server.base + "/api/trials", {"Authorization": "Bearer nope"})[0] == 401
    assert fetch(server.base + "/api/trials", {"Authorization": f"Bearer {token}"})[0] == 200
    assert fetch(server.base + "/api/trials", {"Cookie": f"kleio_token={token}"})[0] == 200


def test_ui_port_in_use_is_one_clear_line(serve, sqlite_journal):
    uri, _ = sqlite_journal
    server = serve(uri)
    port = server.base.rsplit(":", 1)[1]
    result = run_kleio("ui", "--db", uri, "--port", port)
    assert result.returncode == 64
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert result.stderr.endswith("Pick another with --port N (0 picks a free one).\n")
    assert run_kleio("ui", "--port", "70000").returncode == 64


def test_ui_on_mongodb_serves_and_refuses_an_empty_database(serve, mongodb_db_uri):
    result = run_kleio("ui", "--db", mongodb_db_uri, "--port", "0")
    assert result.returncode == 71
    assert "there is no kleio journal in" in result.stderr and result.stderr.count("\n") == 1
    from kleio.storage import open_store

    with open_store(mongodb_db_uri) as store:
        ids = sweep(store)
    server = serve(mongodb_db_uri)
    status, body = fetch(server.base + "/api/trials?sort=-val_acc")
    rows = json.loads(body)["rows"]
    assert status == 200 and {r["id"] for r in rows} == set(ids.values())
    best = rows[0]["metrics"]["val_acc"]["best"]
    assert best == max(r["metrics"]["val_acc"]["best"] for r in rows)
