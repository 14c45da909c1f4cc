"""The dashboard as a person sees it: the real ``kleio ui`` server, driven in headless Chromium.

Each test opens the page the server prints, and waits on what the page shows (Playwright's
waits), never on time.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import write
from tests.ui.journal import add_trial

pytest.importorskip("starlette")

#: Counts the drawn (non-transparent) pixels of every chart's canvases.
DRAWN_PIXELS = """() => Array.from(document.querySelectorAll('.chart canvas')).map((c) => {
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) n++;
  return n;
})"""


def rows(page):
    return page.locator("#trials tbody tr")


def column(page, name):
    return [
        cell.inner_text() for cell in page.locator(f"#trials tbody td[data-column='{name}']").all()
    ]


def test_table_sorts_filters_searches_and_opens_a_trial_with_its_chart(page, serve, sqlite_journal):
    uri, ids = sqlite_journal
    server = serve(uri)
    page.goto(server.url)
    page.wait_for_selector("#trials")
    assert rows(page).count() == 4
    # Sort by a metric: best first (val_acc is maximized), then worst first.
    page.click("#trials th[data-sort='val_acc']")
    page.wait_for_selector("#trials th.sorted-desc[data-sort='val_acc']")
    values = [float(v) for v in column(page, "val_acc")]
    assert values == sorted(values, reverse=True)
    page.click("#trials th[data-sort='val_acc']")
    page.wait_for_selector("#trials th.sorted-asc[data-sort='val_acc']")
    values = [float(v) for v in column(page, "val_acc")]
    assert values == sorted(values)
    # Filter, then search within it.
    page.fill("#where", "lr<0.3")
    page.press("#where", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#trials tbody tr').length === 2")
    assert set(column(page, "lr")) == {"0.1"}
    page.fill("#search", "seed=1")
    page.wait_for_function("() => document.querySelectorAll('#trials tbody tr').length === 1")
    # Open the trial: its header, options and a chart drawn for each numeric statistic.
    page.click("#trials tbody tr a")
    page.wait_for_selector("#trial-id")
    assert page.inner_text("#trial-id") == ids["lr0.1-s1"]
    page.wait_for_selector(".chart[data-title='loss'][data-points='10']")
    page.wait_for_selector(".chart[data-title='val_acc'][data-points='10']")
    drawn = page.evaluate(DRAWN_PIXELS)
    assert drawn and all(n > 200 for n in drawn), drawn
    assert "seed" in page.inner_text("#options") and "epoch 10 loss" in page.inner_text("#output")
    assert page.errors == []


def test_an_artifact_downloads_from_the_trial_page(page, serve, sqlite_journal, tmp_path):
    uri, ids = sqlite_journal
    server = serve(uri)
    page.goto(f"{server.base}/#/trial/{ids['lr0.5-s0'][:8]}")
    page.wait_for_selector("#artifacts a.artifact")
    with page.expect_download() as info:
        page.click("#artifacts a.artifact")
    download = info.value
    assert download.suggested_filename == "model.txt"
    target = tmp_path / "downloaded"
    download.save_as(str(target))
    assert target.read_bytes() == b"weights lr=0.5"


def test_hostile_output_and_names_are_shown_as_text(page, serve, sqlite_journal):
    uri, _ = sqlite_journal
    from kleio.storage import open_store

    hostile = (
        "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
    )
    with open_store(uri) as store:
        tid = add_trial(
            store,
            "hostile",
            options={"note": hostile},
            tags=[hostile],
            stats=[{"epoch": 1, "loss": 1.0}],
            stdout=[hostile],
            command=["python", hostile],
        )
    server = serve(uri)
    page.goto(server.url)
    page.wait_for_selector("#trials")
    assert hostile in page.inner_text("#trials")
    page.goto(f"{server.base}/#/trial/{tid}")
    page.wait_for_selector("#output")
    assert page.inner_text("#output") == hostile
    assert "<img src=x onerror=" in page.inner_text("#command")  # shell-quoted, as text
    assert page.locator("img").count() == 0 and page.title() == "kleio"
    assert page.errors == []


def test_comparison_of_a_group_draws_mean_and_band(page, serve, sqlite_journal):
    uri, ids = sqlite_journal
    server = serve(uri)
    page.goto(server.url)
    page.wait_for_selector("#trials")
    for box in page.locator("#trials tbody input[type=checkbox]").all():
        box.check()
    page.click("#compare-groups")
    page.wait_for_selector("#compare-table")
    assert page.locator("#compare-table tr").count() == 3  # a header and two groups
    assert "lr=0.1 (n=2)" in page.inner_text("#compare-table")
    page.wait_for_selector(".chart[data-title='val_acc'][data-points='20']")
    assert all(n > 200 for n in page.evaluate(DRAWN_PIXELS))
    page.click("text=show trials one by one")
    page.wait_for_selector(".chart[data-title='val_acc'][data-points='40']")
    assert page.locator("#compare-table tbody tr, #compare-table tr").count() >= 5


LIVE_PROGRAM = """\
import os, sys, time
from kleio.client.logger import kleio_logger

kleio_logger.log_statistic(step=1, loss=1.0)
print("step 1", flush=True)
# Go on when the test says so (it creates the file), then log the second point.
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
kleio_logger.log_statistic(step=2, loss=0.5)
print("step 2", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.02)
"""


def _run_live(tmp_path, git_repo, env):
    write(git_repo / "live.py", LIVE_PROGRAM)
    go, end = tmp_path / "go", tmp_path / "end"
    process = subprocess.Popen(
        [sys.executable, "-m", "kleio", "python", "live.py", str(go), str(end)],
        cwd=git_repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The runner tells the id on stderr; the program prints "step 1" once its first point is
    # logged.
    first = process.stderr.readline()
    assert "trial reserved with id" in first, first
    assert process.stdout.readline().strip() == "step 1"
    return process, first.split()[-1], go, end


@pytest.mark.parametrize("backend", ["sqlite", "mongodb"])
def test_a_running_trial_gains_points_and_output_live(
    page, serve, tmp_path, git_repo, backend, request
):
    if backend == "sqlite":
        uri = "sqlite://" + str(tmp_path / "live" / "kleio.db")
    else:
        uri = request.getfixturevalue("mongodb_db_uri")
    env = dict(os.environ, KLEIO_DB=uri)
    process, short, go, end = _run_live(tmp_path, git_repo, env)
    try:
        server = serve(uri)
        page.goto(f"{server.base}/#/trial/{short}")
        page.wait_for_selector(".chart[data-title='loss'][data-points='1']", timeout=20000)
        page.wait_for_selector("#live.on")
        drawn_before = page.evaluate(DRAWN_PIXELS)
        go.write_text("go")
        # Pushed by the server within about a second of the journal holding it.
        page.wait_for_selector(".chart[data-title='loss'][data-points='2']", timeout=15000)
        page.wait_for_function(
            "() => document.getElementById('output').textContent.includes('step 2')", timeout=15000
        )
        assert page.evaluate(DRAWN_PIXELS) != drawn_before
        end.write_text("end")
        assert process.wait(timeout=60) == 0
        page.wait_for_selector(".status-completed", timeout=15000)
    except BaseException:
        sys.stderr.write("kleio ui said: " + server.stop() + "\n")
        raise
    finally:
        end.write_text("end")
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_long_trial_shows_a_preview_then_every_point(
    page, serve_in_process, sqlite_journal, monkeypatch
):
    from kleio.storage import open_store
    from kleio.ui import views

    uri, _ = sqlite_journal
    monkeypatch.setattr(views, "PREVIEW_OVER", 1000)
    with open_store(uri) as store:
        tid = add_trial(
            store, "long", stats=[{"step": i, "loss": 1.0 / (i + 1)} for i in range(3000)]
        )
    base = serve_in_process(uri)
    page.goto(f"{base}/#/trial/{tid}")
    page.wait_for_selector("#charts[data-complete]")
    # Whichever answer came first, the page ends with every point and the metrics.
    page.wait_for_selector("#charts[data-complete='true']", timeout=30000)
    points = page.get_attribute(".chart[data-title='loss']", "data-points")
    assert 900 <= int(points) <= 2000  # min-max decimation of 3000 points, on the server
    page.wait_for_selector("#metrics")
    assert page.inner_text("#statistics-note") == "3000 logged, against step"
    assert page.errors == []
