"""``kleio plot``: learning curves through the real entry point, and the panels behind them."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from tests.conftest import run_kleio, write
from tests.ui.journal import add_trial, sweep

pytest.importorskip("matplotlib")

TRAIN = """\
import argparse
from kleio.client.logger import kleio_logger

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
for epoch in range(1, 6):
    kleio_logger.log_statistic(epoch=epoch, loss=args.lr / epoch + 0.01 * args.seed,
                               acc=1 - 1 / (epoch + 1))
"""


def run_trial(*args):
    result = run_kleio("python", "train.py", *args)
    assert result.returncode == 0, result.stderr
    return result.stderr.split("trial reserved with id: ", 1)[1].split()[0]


@pytest.fixture
def two_trials(git_repo, db_uri):
    write(git_repo / "train.py", TRAIN)
    return run_trial("--lr", "0.1"), run_trial("--lr", "0.5")


def test_plot_writes_png_svg_and_pdf_by_extension(two_trials, tmp_path):
    a, b = two_trials
    for name, magic in (
        ("curves.png", b"\x89PNG"),
        ("curves.svg", b"<?xml"),
        ("curves.pdf", b"%PDF"),
    ):
        out = tmp_path / name
        result = run_kleio("plot", a, b, "--y", "loss", "--y", "acc", "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert result.stderr == f"wrote {out}\n"
        assert out.read_bytes().startswith(magic)
    svg = (tmp_path / "curves.svg").read_text()
    # One panel per metric, one line per trial named by its short id and differing option.
    assert f"{a} lr=0.1" in svg and f"{b} lr=0.5" in svg
    assert ">loss<" in svg.replace("</tspan>", "<") or "loss" in svg


def test_plot_without_output_writes_png_to_a_pipe_and_a_file_on_a_terminal(two_trials, git_repo):
    a, b = two_trials
    result = subprocess.run(
        [sys.executable, "-m", "kleio", "plot", a, "--y", "loss"], capture_output=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.startswith(b"\x89PNG")
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "kleio", "plot", a, b, "--y", "loss"],
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    printed = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the program ended
            break
        if not chunk:
            break
        printed += chunk
    assert process.wait(timeout=60) == 0, process.stderr.read()
    os.close(leader)
    path = printed.decode().strip()
    assert path == str(git_repo / f"kleio-plot-{a}-{b}-loss.png")
    with open(path, "rb") as handle:
        assert handle.read(4) == b"\x89PNG"


def test_plot_errors_are_one_line_with_a_distinct_code(two_trials, tmp_path):
    a, _ = two_trials
    result = run_kleio("plot", a, "--y", "loss", "-o", str(tmp_path / "curves.jpg"))
    assert result.returncode == 64
    assert result.stderr == (
        "error: cannot tell the image format of "
        f"'{tmp_path / 'curves.jpg'}' from its extension. End the file "
        "name with one of .png, .svg, .pdf.\n"
    )
    result = run_kleio("plot", a, "--y", "val_loss")
    assert result.returncode == 64 and result.stderr.count("\n") == 1
    assert "logged a statistic 'val_loss'" in result.stderr and "acc, epoch, loss" in result.stderr
    result = run_kleio("plot", a, "--y", "loss", "--x", "step")
    assert result.returncode == 64 and "'step' (given with --x)" in result.stderr
    result = run_kleio("plot", "ffffffff", "--y", "loss")
    assert result.returncode == 66
    result = run_kleio("plot", a)
    assert result.returncode == 64 and "--y" in result.stderr


def test_plot_names_the_extra_when_matplotlib_is_missing(two_trials):
    a, _ = two_trials
    code = (
        "import sys; sys.modules['matplotlib'] = None; from kleio.cli import main; "
        f"sys.exit(main(['plot', '{a}', '--y', 'loss', '-o', 'x.png']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 76
    assert result.stderr == (
        "error: kleio plot needs matplotlib, which is not installed. "
        "Install it with: pip install 'kleio[plot]'.\n"
    )
    assert not os.path.exists("x.png")


# -- the panels -----------------------------------------------------------------------------


@pytest.fixture
def journal(tmp_path):
    from kleio.api import open_journal
    from kleio.storage import open_store

    uri = "sqlite://" + str(tmp_path / "j" / "kleio.db")
    with open_store(uri) as store:
        ids = sweep(store)
        parent = ids["lr0.1-s0"]
        ids["branch"] = add_trial(
            store,
            "branch",
            options={"lr": 0.05, "seed": 0},
            stats=[{"epoch": 4, "loss": 0.001}],
            parent=(parent, (1 << 32) + 3),
        )
    with open_journal(uri) as journal:
        yield journal, ids


def test_a_branch_continues_its_parents_curve_up_to_the_cut(journal):
    from kleio.plot import panels_for

    journal, ids = journal
    trials = [journal.trial(ids["branch"]), journal.trial(ids["lr0.1-s0"])]
    (panel,) = panels_for(journal, trials, ["loss"], None)
    assert panel.xlabel == "epoch"
    branch, parent = panel.lines
    assert list(branch.xs) == [1, 2, 3, 4] and branch.ys[-1] == 0.001
    assert list(branch.ys[:3]) == list(parent.ys[:3])
    assert branch.label == f"{ids['branch'][:7]} lr=0.05"


def test_groups_differing_only_in_the_seed_are_a_mean_with_a_std_band(journal):
    from kleio.plot import Panel, panels_for, render

    journal, ids = journal
    trials = [journal.trial(ids[k]) for k in ("lr0.1-s0", "lr0.1-s1", "lr0.5-s0", "lr0.5-s1")]
    panels = panels_for(journal, trials, ["loss", "val_acc"], "epoch", ["seed"])
    assert [p.metric for p in panels] == ["loss", "val_acc"]
    low, high = panels[0].lines
    assert (low.label, high.label) == ("lr=0.1 (n=2)", "lr=0.5 (n=2)")
    seed0, seed1 = (1 / 2) * 1.1, (1 / 2) * 1.1 + 0.01
    assert low.ys[0] == pytest.approx((seed0 + seed1) / 2)
    std = ((seed0 - low.ys[0]) ** 2 + (seed1 - low.ys[0]) ** 2) ** 0.5
    assert low.upper[0] - low.ys[0] == pytest.approx(std)
    assert low.ys[0] - low.lower[0] == pytest.approx(std)
    import io

    out = io.BytesIO()
    render([*panels, Panel("empty", "epoch", [])], out, "png", title="sweep")
    assert out.getvalue().startswith(b"\x89PNG")


def test_series_helpers_downsample_and_aggregate():
    from kleio.ui.series import Series, aggregate, downsample

    xs = [float(i) for i in range(100000)]
    ys = [1.0] * 100000
    ys[31337] = -7.0
    small = downsample(Series(xs, ys), 1000)
    assert len(small.xs) <= 1000 and -7.0 in small.ys and small.xs == sorted(small.xs)
    assert small.xs[0] == 0 and small.xs[-1] == 99999
    assert downsample(Series([1.0], [2.0]), 1000) == Series([1.0], [2.0])
    band = aggregate([Series([1, 2], [1.0, 3.0]), Series([2, 3], [5.0, 7.0])])
    assert band.xs == [1, 2, 3] and band.mean == [1.0, 4.0, 7.0]
    assert band.counts == [1, 2, 1] and band.std[0] == 0 and band.std[1] == pytest.approx(2**0.5)


def test_plot_reads_a_mongodb_journal(mongodb_db_uri, tmp_path):
    from kleio.storage import open_store

    with open_store(mongodb_db_uri) as store:
        ids = sweep(store)
    out = tmp_path / "sweep.svg"
    chosen = [ids[k][:8] for k in ("lr0.1-s0", "lr0.1-s1", "lr0.5-s0", "lr0.5-s1")]
    result = run_kleio(
        "--db",
        mongodb_db_uri,
        "plot",
        *chosen,
        "--y",
        "loss",
        "--group-by-except",
        "seed",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    svg = out.read_text()
    assert "lr=0.1 (n=2)" in svg and "lr=0.5 (n=2)" in svg
