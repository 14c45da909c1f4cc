"""The writer of a runner: the only thread that talks to the store during a run.

One module a concern: :mod:`kleio.writer.messages` (what the other threads ask it),
:mod:`kleio.writer.thread` (the thread: numbering, batches, spool, ledger records,
artifacts), :mod:`kleio.writer.lease` (heartbeats, ``kleio stop``, takeovers, self-fencing),
:mod:`kleio.writer.queries` (the program's questions) and :mod:`kleio.writer.stderr` (what it
tells the user). Every name is importable from here.
"""

from __future__ import annotations

from kleio.writer.messages import Artifact, Events, Heartbeat, LedgerChunk, Query, Status, Stop
from kleio.writer.stderr import warn
from kleio.writer.thread import BATCH, MAX_BACKLOG, Writer

__all__ = [
    "BATCH",
    "MAX_BACKLOG",
    "Artifact",
    "Events",
    "Heartbeat",
    "LedgerChunk",
    "Query",
    "Status",
    "Stop",
    "Writer",
    "warn",
]
