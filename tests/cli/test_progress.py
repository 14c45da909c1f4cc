"""Progress bars: the latest state of a line not ended yet reaches the journal, once."""

from __future__ import annotations

import json

from kleio.cli.cat import ended_lines
from kleio.storage import open_store
from kleio.storage.base import Event
from tests.conftest import run_kleio, write

# Draws a bar with '\r', waits (on a condition, not a clock) until kleio has journalled the
# unfinished line, then ends it.
PROGRESS = """
import os, sys, time
from kleio.storage import open_store
sys.stdout.write("\\rstep 1/3")
sys.stdout.flush()
deadline = time.monotonic() + 30
with open_store(os.environ["KLEIO_DB"]) as store:
    while time.monotonic() < deadline:
        events = store.read_events(trial_id=os.environ["KLEIO_TRIAL_ID"], kinds=("stdout",))
        if any(e.data.get("partial") for e in events):
            break
        time.sleep(0.02)
    else:
        sys.exit("no partial line was journalled")
for i in (2, 3):
    sys.stdout.write(f"\\rstep {i}/3")
sys.stdout.write("\\ndone\\n")
"""


def test_an_unfinished_line_is_journalled_as_partial_and_superseded(git_repo, db_uri):
    write(git_repo / "bar.py", PROGRESS)
    result = run_kleio("python", "bar.py", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    # The terminal got every redraw (text mode reads each '\r' as a line end).
    assert result.stdout == "\nstep 1/3\nstep 2/3\nstep 3/3\ndone\n"

    trial = result.stderr.split()[-1]
    with open_store(db_uri) as store:
        [doc] = store.find_trials(id_prefix=trial)
        lines = [e.data for e in store.read_events(trial_id=doc["id"], kinds=("stdout",))]
    assert lines == [{"line": "step 1/3", "partial": True}, {"line": "step 3/3"}, {"line": "done"}]
    # Readers show what the terminal ended up showing: no redraw twice.
    assert run_kleio("cat", trial, cwd=git_repo).stdout == "step 3/3\ndone\n"
    records = [
        json.loads(line)
        for line in run_kleio("tail", "--json", trial, cwd=git_repo).stdout.splitlines()
    ]
    assert [r["line"] for r in records] == ["step 3/3", "done"]


def test_a_line_still_unfinished_at_the_end_is_kept():
    def event(seq, **data):
        return Event("t", seq, "stdout", 0.0, data)

    shown = list(
        ended_lines(
            [
                event(1, line="a"),
                event(2, line="1%", partial=True),
                event(3, line="b"),
                event(4, line="50%", partial=True),
                event(5, line="70%", partial=True),
            ]
        )
    )
    assert [e.data["line"] for e in shown] == ["a", "b", "70%"]
