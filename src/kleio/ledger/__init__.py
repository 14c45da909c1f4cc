"""The ledger: what a program logged, on local disk, until it is in the journal.

Acknowledged means durable against the death of *any* process of a trial, the runner's
included. So the client does not hand a statistic to the runner: it appends it to a file of
its own, with one ``write`` per call, and returns. What the kernel accepted survives the
program's crash and the runner's ``kill -9`` alike (no fsync is needed for that; a power cut
is another matter, see docs/reliability.rst). The runner tails the files and journals what
they hold; whoever comes next on the host (a resume, a failover, ``kleio sync``, a worker)
journals what a dead runner left.

Each ``.log`` line is one record in the wire format of :mod:`kleio.client`: ``S<json>`` a
statistic, ``B<json>`` an artifact whose bytes are in the ``.blob`` named by the record,
``M<json>`` a metric declaration (a ``metrics`` event).

One module a concern:

* :mod:`kleio.ledger.directories`: the layout, one directory per execution, its runner, and
  its removal once journalled;
* :mod:`kleio.ledger.reader`: the ``.log`` files read as they grow, complete records only;
* :mod:`kleio.ledger.events`: records as journal events, exactly once (``ledger`` markers),
  and a dead runner's files journalled again by their markers;
* :mod:`kleio.ledger.recovery`: whose leftovers, when and by whom (spool first, one process
  at a time, the right journal only).

Every name is importable from here too; a submodule is loaded when one of its names is first
asked for, so the runner's start loads the directories only.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from kleio.ledger.directories import (
        Leftover,
        create_execution_dir,
        finish,
        ledger_root,
        leftovers,
        pending_bytes,
        runner_alive,
        writer_pid,
    )
    from kleio.ledger.events import append_marked, chunk_events
    from kleio.ledger.reader import (
        MAX_RECORD,
        READ_CHUNK,
        Chunk,
        LedgerFile,
        LedgerReader,
        open_regular,
    )
    from kleio.ledger.recovery import recover, recover_all, recover_trial

#: The variables the runner gives the program: its ledger directory, the statistic size limit.
LEDGER_ENV = "KLEIO_LEDGER"
MAX_STATISTIC_ENV = "KLEIO_MAX_STATISTIC_SIZE"

_MODULES = {
    "directories": (
        "Leftover",
        "create_execution_dir",
        "finish",
        "leftovers",
        "ledger_root",
        "pending_bytes",
        "runner_alive",
        "writer_pid",
    ),
    "events": ("append_marked", "chunk_events"),
    "reader": ("MAX_RECORD", "READ_CHUNK", "Chunk", "LedgerFile", "LedgerReader", "open_regular"),
    "recovery": ("recover", "recover_all", "recover_trial"),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    """Load the submodule that defines ``name`` (PEP 562), once."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    qualified = f"{__name__}.{module}"
    __import__(qualified)  # not importlib: the start path does without it
    value = getattr(sys.modules[qualified], name)
    globals()[name] = value
    return value


__all__ = [
    "Chunk",
    "LEDGER_ENV",
    "LedgerFile",
    "LedgerReader",
    "Leftover",
    "MAX_RECORD",
    "MAX_STATISTIC_ENV",
    "READ_CHUNK",
    "append_marked",
    "chunk_events",
    "create_execution_dir",
    "finish",
    "ledger_root",
    "leftovers",
    "open_regular",
    "pending_bytes",
    "recover",
    "recover_all",
    "recover_trial",
    "runner_alive",
    "writer_pid",
]
