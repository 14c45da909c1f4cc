"""The ledger's directories: one per execution, who wrote them, and when they go.

Layout, under ``<spool_dir>/ledger/`` (private: 0700)::

    <trial id>-<execution>-<runner pid>/   one directory per execution of a trial
        runner.json                        the runner's pid and start stamp
        <pid>-<token>.log                  one file per process of the program
        <pid>-<token>-<n>.blob             the bytes of one artifact

On the runner's start path: this module imports nothing slow.
"""

from __future__ import annotations

import os

from kleio.cjson import dumps, loads
from kleio.private import private_dir
from kleio.reservation import pid_alive, process_start
from kleio.storage.base import short_id

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any

    from kleio.ledger.reader import LedgerReader


def ledger_root(spool_dir: str) -> str:
    return os.path.join(spool_dir, "ledger")


def create_execution_dir(spool_dir: str, trial_id: str, execution: int, journal: str) -> str:
    """Make the private directory of one execution and record its runner and journal."""
    private_dir(spool_dir, "spool directory")
    root = private_dir(ledger_root(spool_dir), "ledger directory")
    pid = os.getpid()
    path = os.path.join(root, f"{trial_id}-{execution}-{pid}")
    os.mkdir(path, 0o700)
    fd = os.open(os.path.join(path, "runner.json"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "w", encoding="utf-8") as handle:  # ASCII, without a codec to import
        handle.write(
            dumps(
                {
                    "pid": pid,
                    "pid_start": process_start(pid),
                    "journal": journal,
                    "host": os.uname().nodename,
                }
            )
        )
    return path


def writer_pid(name: str) -> int | None:
    """The pid of the process that wrote a ``.log`` or ``.blob`` file, from its name."""
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def runner_info(directory: str) -> dict[str, Any]:
    try:
        with open(os.path.join(directory, "runner.json"), encoding="utf-8") as handle:
            info = loads(handle.read())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def runner_alive(info: dict[str, Any]) -> bool:
    """Tell whether the runner an execution directory's ``runner.json`` names is at work."""
    host = os.uname().nodename
    if info.get("host", host) != host:
        return True  # a spool shared between hosts (an NFS home): only its own host can tell
    try:
        pid = int(info["pid"])
    except (ValueError, KeyError, TypeError):
        return False
    if pid == os.getpid():
        return True
    if not pid_alive(pid):
        return False
    started = info.get("pid_start")
    return started is None or process_start(pid) in (None, started)


class Leftover:
    """The ledger of an execution whose runner is gone."""

    __slots__ = ("directory", "execution", "journal", "trial_id")

    def __init__(self, directory: str, trial_id: str, execution: int, journal: str) -> None:
        self.directory, self.trial_id, self.execution = directory, trial_id, execution
        self.journal = journal  # the (masked) URI of the journal the records belong to

    def __repr__(self) -> str:
        return f"Leftover({self.directory!r}, {short_id(self.trial_id)}, {self.execution})"


def leftovers(spool_dir: str, trial_id: str | None = None) -> list[Leftover]:
    """Execution directories whose runner is gone, oldest execution first.

    Each belongs to one journal: recover it only into a store opened with that URI.
    """
    root = ledger_root(spool_dir)
    try:
        names = os.listdir(root)
    except OSError:
        return []
    found = []
    for name in names:
        parts = name.rsplit("-", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        if trial_id is not None and parts[0] != trial_id:
            continue
        path = os.path.join(root, name)
        if not os.path.isdir(path):
            continue
        info = runner_info(path)
        if not runner_alive(info):
            found.append(Leftover(path, parts[0], int(parts[1]), str(info.get("journal") or "")))
    found.sort(key=lambda item: (item.trial_id, item.execution))
    return found


def pending_bytes(directory: str) -> int:
    total = 0
    try:
        for name in os.listdir(directory):
            if name.endswith((".log", ".blob")):
                total += os.path.getsize(os.path.join(directory, name))
    except OSError:
        pass
    return total


def remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def remove_if_done(directory: str) -> None:
    """Remove an execution directory once no ``.log`` file is left in it."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    if any(name.endswith(".log") for name in names):
        return
    for name in names:
        remove(os.path.join(directory, name))
    try:
        os.rmdir(directory)
    except OSError:
        pass


def finish(directory: str, reader: LedgerReader | None, *, complete: bool) -> None:
    """After a run: delete what was journalled; keep what a later sync must still read.

    ``complete`` says every record read was made durable (journal or spool). A file whose
    writer is still alive (a grandchild that outlived the program) is kept for ``sync``.
    """
    if reader is not None:
        for name, ledger_file in reader.files.items():
            if complete and ledger_file.at_end() and not pid_alive(writer_pid(name)):
                remove(ledger_file.path)
        reader.close()
    if complete:
        remove_if_done(directory)
