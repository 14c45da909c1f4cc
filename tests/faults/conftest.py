"""Fixtures of the fault suite (the root conftest isolates HOME, XDG_* and KLEIO_*)."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field

import pytest

from tests.faults import helpers


@dataclass
class Lab:
    """One test's repository, journal, report directory and the pids to clean up."""

    repo: str
    state: str
    db: str
    tmp: str
    pids: list[int] = field(default_factory=list)

    def program(self, name: str, text: str) -> str:
        path = os.path.join(self.repo, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path


@pytest.fixture
def lab(git_repo, db_uri, tmp_path):
    """A repository and journal; orphans of a killed runner are adopted and reaped here."""
    state = tmp_path / "state"
    state.mkdir()
    adopted = helpers.set_subreaper(True)
    created = Lab(str(git_repo), str(state), db_uri, str(tmp_path))
    try:
        yield created
    finally:
        for pid in created.pids:
            helpers.kill_quietly(pid, signal.SIGKILL)
        for pid in created.pids:
            helpers.wait_gone(pid, f"process {pid} to end")
        if adopted:
            helpers.set_subreaper(False)


def pytest_terminal_summary(terminalreporter):
    totals = helpers.TOTALS
    if not totals:
        return
    terminalreporter.write_line(
        "fault suite: {runs} kleio runs, {commands} other kleio commands, {kills} SIGKILLs; "
        "passing checks: {acknowledged} records acknowledged, 0 lost, 0 duplicated "
        "({dropped_and_reported} dropped and told: in the final status, or on stderr when no "
        "status can be journalled)".format(
            **{
                k: totals.get(k, 0)
                for k in ("runs", "commands", "kills", "acknowledged", "dropped_and_reported")
            }
        )
    )
    if totals.get("failed_checks"):
        terminalreporter.write_line(
            "fault suite: {failed_checks} failed or xfailed checks lost {lost_in_failed_checks} "
            "acknowledged records".format(
                **{k: totals.get(k, 0) for k in ("failed_checks", "lost_in_failed_checks")}
            )
        )
