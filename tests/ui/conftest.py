"""Fixtures of the dashboard tests: journals, the app in-process, the real server, a browser.

Browser tests run in Debian's Chromium driven by Playwright (``executable_path``): they skip
with the reason when either is missing, unless ``KLEIO_REQUIRE_BROWSER=1`` (CI sets it),
which makes that a failure. A failed browser test leaves a screenshot, named in its report.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.ui.journal import sweep

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for candidate in (
        os.environ.get("KLEIO_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _missing(reason: str) -> None:
    if os.environ.get("KLEIO_REQUIRE_BROWSER", "") not in ("", "0"):
        pytest.fail(f"KLEIO_REQUIRE_BROWSER is set but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def sqlite_journal(tmp_path):
    """An SQLite journal holding the sweep of tests.ui.journal; (uri, ids)."""
    from kleio.storage import open_store

    uri = "sqlite://" + str(tmp_path / "journal" / "kleio.db")
    with open_store(uri) as store:
        ids = sweep(store)
    return uri, ids


@pytest.fixture
def client_for():
    """Build a Starlette TestClient for a journal (an opener of a store, or a URI)."""
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    import warnings

    with warnings.catch_warnings():  # Starlette 1.x would rather have httpx2; httpx works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from kleio.ui.readonly import ReadOnlyJournal
    from kleio.ui.server import create_app

    clients = []

    def make(uri=None, opener=None, **options):
        app = create_app(lambda: ReadOnlyJournal(uri, opener=opener), **options)
        client = TestClient(app, base_url="http://127.0.0.1:8765")
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install -e '.[test]' installs it)")
    path = chromium_path()
    if path is None:
        _missing("no Chromium found (apt-get install chromium, or set KLEIO_CHROMIUM)")
    manager = sync_playwright().start()
    try:
        instance = manager.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
    except Exception:
        manager.stop()
        raise
    yield instance
    instance.close()
    manager.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(browser, request, tmp_path_factory):
    """A new page; on failure a full-page screenshot is saved and named in the report."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.errors = errors
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        folder = tmp_path_factory.getbasetemp() / "screenshots"
        folder.mkdir(exist_ok=True)
        path = folder / (re.sub(r"[^\w.-]", "_", request.node.name) + ".png")
        try:
            tab.screenshot(path=str(path), full_page=True)
            sys.stderr.write(f"\nscreenshot of the failed page: {path}\n")
            report.sections.append(("screenshot", str(path)))
        except Exception as error:  # the page may be the reason it failed
            sys.stderr.write(f"\nno screenshot: {error}\n")
    context.close()


class Served:
    """A real ``kleio ui`` process on a free loopback port."""

    def __init__(self, uri: str, *extra: str) -> None:
        env = dict(os.environ, KLEIO_DB=uri)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kleio", "ui", "--port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        line = self.process.stdout.readline()
        match = re.search(r"at (http://\S+)", line)
        if match is None:
            self.stop()
            raise AssertionError(f"kleio ui did not start: {line!r} {self.process.stderr.read()!r}")
        self.url = match.group(1)
        self.base = self.url.split("?")[0].rstrip("/")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.stderr.read() if self.process.stderr else ""


@pytest.fixture
def serve():
    servers: list[Served] = []

    def start(uri: str, *extra: str) -> Served:
        server = Served(uri, *extra)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def wait_for(predicate, timeout=10.0, what="condition"):
    """Poll ``predicate`` until true (for states of another process; never to order events)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def serve_in_process():
    """The dashboard served by uvicorn in a thread of this process (so tests can change the
    module's settings); returns its base URL."""
    import socket
    import threading

    import uvicorn

    from kleio.ui.readonly import ReadOnlyJournal
    from kleio.ui.server import create_app

    running = []

    def start(uri: str) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        app = create_app(lambda: ReadOnlyJournal(uri))
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        running.append((server, thread, sock))
        wait_for(lambda: server.started, what="the server to start")
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, thread, sock in running:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
