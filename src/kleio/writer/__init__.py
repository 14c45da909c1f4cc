"""The writer of a runner: the only thread that talks to the store during a run.

One module a concern: :mod:`kleio.writer.messages` (what the other threads ask it),
:mod:`kleio.writer.thread` (the thread: numbering, batches, ledger records, artifacts),
:mod:`kleio.writer.outage` (when the journal fails: the spool, the backlog, retries),
:mod:`kleio.writer.lease` (heartbeats, ``kleio stop``, takeovers, self-fencing) and
:mod:`kleio.writer.queries` (the program's questions). What it tells the user goes through
:func:`kleio.client.stderr.warn`. Every name is importable from here.
"""

from __future__ import annotations

from kleio.client.stderr import warn
from kleio.writer.messages import Artifact, Events, Heartbeat, LedgerChunk, Query, Status, Stop
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
