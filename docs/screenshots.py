"""Make the dashboard screenshots of docs/ui.rst again, from real runs of the current code.

    python docs/screenshots.py                  # writes docs/images/kleio-ui-*.png

In a directory of its own (``/tmp/kleio-demo``, a neutral name, since paths show in the
pictures) it commits a copy of ``examples/logistic_regression.py`` to a new git repository,
runs a small sweep of it under kleio (three learning rates, two seeds each, so the comparison
has means and standard deviations to show) into a new SQLite journal, serves that journal with
``kleio ui`` and photographs the trials table, one trial and the comparison of the sweep's
groups in the system's Chromium, driven by Playwright as the browser tests drive it. Every
wait is on what the page shows (rows, drawn charts, the live dot), never on time, and a page
showing an error stops the script. The directory is removed at the end (``--keep`` keeps it).

It needs the ``ui`` and ``test`` extras (Starlette, uvicorn, Playwright) and ``chromium``
(``apt-get install chromium``, or ``KLEIO_CHROMIUM`` naming another Chromium).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:
    raise SystemExit("docs/screenshots.py needs Playwright: pip install playwright") from None

DOCS = Path(__file__).resolve().parent
EXAMPLE = DOCS.parent / "examples" / "logistic_regression.py"
SCRIPT = EXAMPLE.name

#: The sweep: every learning rate with every seed, 30 epochs each.
LEARNING_RATES = ("0.05", "0.2", "1.0")
SEEDS = ("0", "1")
EPOCHS = "30"
#: The trial the trial page shows (learning rate, seed).
SHOWN = ("0.2", "0")
#: The statistics the example logs besides ``epoch``: a chart each on the trial page.
STATISTICS = ("loss", "acc", "val_loss", "val_acc")
#: The metrics it declares: the columns of the table and the charts of the comparison.
METRICS = ("val_loss", "val_acc")

#: Viewport of each picture (the size of the image), as the pictures had before.
VIEWPORTS = {
    "kleio-ui-trials.png": (1200, 560),
    "kleio-ui-trial.png": (1200, 1100),
    "kleio-ui-compare.png": (1200, 640),
}

#: Chromium's flags, as tests/ui/conftest.py launches it.
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

#: Counts the drawn (non-transparent) pixels of every chart's canvases (as tests/ui does).
DRAWN_PIXELS = """() => Array.from(document.querySelectorAll('.chart canvas')).map((c) => {
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) n++;
  return n;
})"""

#: The date of the example's commit in the new repository.
COMMIT_DATE = "2026-01-01T00:00:00+00:00"
#: Waits are on the page; this only bounds how long a page that never gets there may take.
TIMEOUT_MS = 30_000


def clean_env() -> dict[str, str]:
    """This environment without kleio's own variables (the journal is named on the command
    line) and with a fixed git identity and date, so the user's settings do not reach the
    pictures and the example's commit (hence each trial's id) is the same on every run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KLEIO_", "GIT_"))}
    env.update(
        GIT_AUTHOR_NAME="kleio docs",
        GIT_AUTHOR_EMAIL="docs@kleio.invalid",
        GIT_COMMITTER_NAME="kleio docs",
        GIT_COMMITTER_EMAIL="docs@kleio.invalid",
        GIT_AUTHOR_DATE=COMMIT_DATE,
        GIT_COMMITTER_DATE=COMMIT_DATE,
        PYTHONUNBUFFERED="1",
    )
    return env


def make_project(root: Path, env: dict[str, str]) -> None:
    """A git repository holding the example, committed, so the trials' code is clean."""
    root.mkdir(parents=True)
    shutil.copy2(EXAMPLE, root / SCRIPT)
    (root / ".gitignore").write_text("/journal/\n", encoding="utf-8")
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", SCRIPT, ".gitignore"],
        ["git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "logistic regression example"],
    ):
        subprocess.run(command, cwd=root, env=env, check=True)


def run_sweep(root: Path, uri: str, env: dict[str, str]) -> None:
    """Every learning rate with every seed, each a trial of its own, run to completion."""
    for lr in LEARNING_RATES:
        for seed in SEEDS:
            command = ["python", SCRIPT, "--epochs", EPOCHS, "--lr", lr, "--seed", seed]
            subprocess.run(
                [sys.executable, "-m", "kleio", "--db", uri, *command],
                cwd=root,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,  # the example's own lines; kleio's go to stderr
            )


@contextlib.contextmanager
def serve(root: Path, uri: str, env: dict[str, str]) -> Iterator[str]:
    """``kleio ui`` on a free loopback port; yields its URL once it has printed it."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "kleio", "--db", uri, "ui", "--port", "0"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        try:
            yield read_url(process.stdout, errors)
        finally:
            stop(process)


def read_url(stdout: IO[str] | None, errors: IO[str]) -> str:
    """The address ``kleio ui`` prints on its first line (``... at http://...``)."""
    line = stdout.readline() if stdout is not None else ""
    match = re.search(r" at (http://\S+)", line)
    if match is None:
        errors.seek(0)
        raise SystemExit(f"kleio ui did not start: {line!r}\n{errors.read()}")
    return match.group(1).split("?")[0].rstrip("/")


def stop(process: subprocess.Popen[str]) -> None:
    """Stop the server as Ctrl-C would (SIGTERM), and make sure it is gone."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def trial_ids(base: str) -> dict[tuple[str, str], str]:
    """The sweep's trial ids by (learning rate, seed), from the dashboard's own API."""
    page = get_json(base + "/api/trials?limit=50")
    return {(str(r["options"]["lr"]), str(r["options"]["seed"])): r["id"] for r in page["rows"]}


def chromium_path() -> str:
    for candidate in (
        os.environ.get("KLEIO_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("no Chromium found (apt-get install chromium, or set KLEIO_CHROMIUM)")


def open_page(browser: Browser, name: str) -> tuple[Page, list[str]]:
    """A page of the picture's size; the errors its scripts raise are collected."""
    width, height = VIEWPORTS[name]
    context = browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=1,
        timezone_id="UTC",
        locale="en-US",
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    return page, errors


def charts_drawn(page: Page, count: int) -> None:
    """Wait until ``count`` charts have each drawn pixels on their canvases."""
    page.wait_for_function(
        f"() => document.querySelectorAll('.chart[data-points]').length === {count} && "
        f"({DRAWN_PIXELS})().filter((n) => n > 0).length >= {count}"
    )


def shoot(page: Page, errors: list[str], path: Path, full_page: bool = False) -> None:
    """The picture of the viewport (or of the whole page, when it is taller than that), unless
    the page shows or raised an error."""
    shown = page.locator(".error").all_inner_texts()
    if shown or errors:
        raise SystemExit(f"{path.name}: the page shows an error: {shown + errors}")
    page.mouse.move(0, 0)  # no hover highlight in the picture
    page.screenshot(path=str(path), full_page=full_page)
    print(f"wrote {path}")
    page.context.close()


def trials_picture(browser: Browser, base: str, out: Path) -> None:
    """The table of the sweep, sorted by the primary metric, best first."""
    name = "kleio-ui-trials.png"
    page, errors = open_page(browser, name)
    page.goto(base + "/#/?sort=-val_acc")
    page.wait_for_selector("#trials th.sorted-desc[data-sort='val_acc']")
    total = len(LEARNING_RATES) * len(SEEDS)
    page.wait_for_function(
        f"() => document.querySelectorAll('#trials tbody tr').length === {total}"
    )
    for metric in METRICS:
        page.wait_for_selector(f"#trials th[data-sort='{metric}']")
    page.wait_for_function("() => document.getElementById('journal').textContent !== ''")
    shoot(page, errors, out / name)


def trial_picture(browser: Browser, base: str, trial_id: str, out: Path) -> None:
    """One trial's page, connected (the live dot on), its charts drawn and output shown."""
    name = "kleio-ui-trial.png"
    page, errors = open_page(browser, name)
    page.goto(f"{base}/#/trial/{trial_id}")
    for key in STATISTICS:
        page.wait_for_selector(f".chart[data-title='{key}'][data-points='{EPOCHS}']")
    charts_drawn(page, len(STATISTICS))
    page.wait_for_selector("#metrics")
    page.wait_for_selector("#live.on")
    page.wait_for_function(
        f"() => document.getElementById('output').textContent.includes('epoch  {EPOCHS}')"
    )
    page.wait_for_function("() => document.getElementById('journal').textContent !== ''")
    shoot(page, errors, out / name, full_page=True)


def compare_picture(browser: Browser, base: str, ids: list[str], out: Path) -> None:
    """The sweep compared as groups (every seed of a learning rate): mean ± std."""
    name = "kleio-ui-compare.png"
    page, errors = open_page(browser, name)
    page.goto(f"{base}/#/compare?ids={','.join(ids)}&group=seed")
    page.wait_for_function(
        f"() => document.querySelectorAll('#compare-table tr').length === {len(LEARNING_RATES) + 1}"
    )
    charts_drawn(page, len(STATISTICS))
    page.wait_for_function("() => document.getElementById('journal').textContent !== ''")
    shoot(page, errors, out / name, full_page=True)


def take_pictures(base: str, out: Path) -> None:
    ids = trial_ids(base)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            trials_picture(browser, base, out)
            trial_picture(browser, base, ids[SHOWN], out)
            compare_picture(browser, base, sorted(ids.values()), out)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "kleio-demo",
        help="directory to make (it must not exist; its path shows in the "
        "pictures; default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DOCS / "images",
        help="where to write the pictures (default: %(default)s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the directory afterwards")
    args = parser.parse_args(argv)
    if args.workdir.exists():
        parser.error(f"{args.workdir} exists: remove it, or name another --workdir")
    env = clean_env()
    root = args.workdir.resolve()
    uri = "sqlite://" + str(root / "journal" / "kleio.db")
    try:
        make_project(root, env)
        run_sweep(root, uri, env)
        with serve(root, uri, env) as base:
            take_pictures(base, args.out.resolve())
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"failed (exit {error.returncode}): {shlex.join(error.cmd)}") from None
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
