"""Shared machinery of the fault suite: real runs, polled conditions, exact counting.

Every case starts the real entry point (``python -m kleio``) as a subprocess, waits for
conditions the program reports through files (never for a fixed time), and counts what the
program was told was logged (acknowledged) against what the journal holds (stored).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any, Callable

#: Totals over the session, printed by the summary hook in this directory's conftest.
TOTALS: Counter[str] = Counter()

#: Generous deadlines: they only bound a hang, they never order events.
DEADLINE = 60.0

PR_SET_CHILD_SUBREAPER = 36


def wait_for(condition: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """Poll ``condition`` until it returns something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.005)


def report(directory: str, name: str, value: Any) -> None:
    """Write a report file atomically (what the programs do; never torn)."""
    tmp = os.path.join(directory, name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(value, handle)
    os.replace(tmp, os.path.join(directory, name))


def read_report(directory: str, name: str, default: Any = None) -> Any:
    try:
        with open(os.path.join(directory, name), encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


def kleio_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "kleio", *args]


class Run:
    """A ``kleio`` process started in the background, its output in files."""

    def __init__(
        self,
        args: Iterable[str],
        *,
        cwd: str,
        out_dir: str,
        env: dict | None = None,
        new_session: bool = False,
    ) -> None:
        self.out_path = os.path.join(out_dir, "kleio.out")
        self.err_path = os.path.join(out_dir, "kleio.err")
        # stdin is not a terminal: the program gets its own process group, as in CI.
        with open(self.out_path, "ab") as out, open(self.err_path, "ab") as err:
            self.proc = subprocess.Popen(
                kleio_argv(*args),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=new_session,
            )
        TOTALS["runs"] += 1

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float = DEADLINE) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"kleio did not end within {timeout:g} s; stderr:\n" + self.stderr
            ) from None

    def kill(self) -> None:
        """SIGKILL the runner and reap it."""
        os.kill(self.proc.pid, signal.SIGKILL)
        TOTALS["kills"] += 1
        self.proc.wait(DEADLINE)

    @property
    def stderr(self) -> str:
        with open(self.err_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    @property
    def stdout(self) -> str:
        with open(self.out_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()


def kleio(
    *args: str, cwd: str | None = None, env: dict | None = None, timeout: float = DEADLINE
) -> subprocess.CompletedProcess:
    """Run one kleio command to its end (stdin not a terminal)."""
    TOTALS["commands"] += 1
    return subprocess.run(
        kleio_argv(*args),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def json_lines(text: str) -> list[Any]:
    """Parse JSON lines strictly: RFC 8259 has no NaN or Infinity."""

    def refuse(token: str) -> Any:
        raise ValueError(f"not RFC 8259 JSON: {token}")

    return [json.loads(line, parse_constant=refuse) for line in text.splitlines() if line]


def statistics(trial: str, cwd: str | None = None) -> list[dict[str, Any]]:
    result = kleio("cat", trial, "--statistics", "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json_lines(result.stdout)


def info(trial: str, cwd: str | None = None) -> dict[str, Any]:
    result = kleio("info", trial, "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def exactly_once(values: list[int], acknowledged: int, what: str = "statistics") -> int:
    """Assert the stored ``values`` are ``0..k`` once each with ``k >= acknowledged - 1``.

    Returns the number stored. A passing check adds to the session totals; a failing one
    to the totals of failed checks (so the figures printed are those of passing cases).
    """
    counts = Counter(values)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    lost = sum(1 for i in range(acknowledged) if i not in counts)
    top = max(counts) if counts else -1
    gaps = [i for i in range(top + 1) if i not in counts]
    if lost or duplicates or gaps:
        TOTALS["failed_checks"] += 1
        TOTALS["lost_in_failed_checks"] += lost
    assert (lost, duplicates) == (0, 0), (
        f"{what}: {acknowledged} acknowledged, {len(values)} stored, lost {lost}, "
        f"duplicates {duplicates} (first duplicates: "
        f"{sorted(v for v, n in counts.items() if n > 1)[:5]}, first lost: "
        f"{[i for i in range(acknowledged) if i not in counts][:5]})"
    )
    assert not gaps, f"{what}: not contiguous, missing {gaps[:5]} below {top}"
    TOTALS["acknowledged"] += acknowledged
    return len(values)


def count_lost(
    acknowledged: Iterable[Any], stored: Iterable[Any], reported: int = 0
) -> tuple[int, int]:
    """(lost, duplicates) of acknowledged keys among stored keys, added to the totals.

    ``reported``: how many records the run's final status counts as dropped; that many
    missing records are not a failed check (the caller asserts the bound).
    """
    wanted = list(acknowledged)
    counts = Counter(stored)
    lost = sum(1 for key in wanted if key not in counts)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    if lost > reported or duplicates:
        TOTALS["failed_checks"] += 1
        TOTALS["lost_in_failed_checks"] += lost
    else:
        TOTALS["acknowledged"] += len(wanted)
        TOTALS["dropped_and_reported"] += lost
    return lost, duplicates


# -- processes the runner leaves behind ---------------------------------------------------


def set_subreaper(on: bool) -> bool:
    """Make this process adopt orphaned descendants (Linux), like a reaping init would."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return (
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0
        )
    except (OSError, AttributeError):
        return False


def proc_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return None


def gone(pid: int) -> bool:
    """True once ``pid`` is dead, reaping it when it is ours (an adopted orphan)."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    # Not our child: dead once it is gone or a zombie (it can write nothing more).
    state = proc_state(pid)
    if state is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return state in ("Z", "X")


def wait_gone(pid: int, what: str = "the program to end") -> None:
    wait_for(lambda: gone(pid), what)


def kill_quietly(pid: int, signo: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signo)
