"""The writer thread of a runner: the only code that talks to the store during a run.

It numbers events, writes them in batches, journals the records of the ledger
(:mod:`kleio.ledger`) and the artifacts sent over the socket, and spools to a local file
whenever the store fails, replaying it when the store returns. A storage failure never
changes the program's exit code and never ends this thread: every failure is caught, told
once on stderr, counted, and the counts are journalled with the final status
(``problems``). What happens when the journal fails is :mod:`kleio.writer.outage`, the
lease is kept by :mod:`kleio.writer.lease`, queries answered by :mod:`kleio.writer.queries`.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from itertools import repeat

from kleio.client.stderr import warn
from kleio.errors import StoreUnavailable
from kleio.ledger import Chunk, chunk_events, open_regular
from kleio.spool import Spool, as_outage, split_markers
from kleio.storage.base import NewEvent, Store, copy_hashing, encode
from kleio.writer.lease import Lease
from kleio.writer.messages import Artifact, Events, Heartbeat, LedgerChunk, Query, Status, Stop
from kleio.writer.outage import MAX_BACKLOG, Outage
from kleio.writer.queries import send as answer_query

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any

    from kleio.writer.messages import Message

BATCH = 5000

__all__ = ["BATCH", "MAX_BACKLOG", "Writer"]


class Writer(Outage, Lease, threading.Thread):
    """The only thread that talks to the store.

    Outage comes before Lease: Lease's stubs of ``_down`` and ``_retry`` must not hide
    Outage's methods.
    """

    def __init__(
        self,
        store: Store,
        trial_id: str,
        next_seq: int,
        spool: Spool,
        flush_interval: float,
        *,
        runner_info: dict[str, Any] | None = None,
        ledger_dir: str | None = None,
    ) -> None:
        super().__init__(name="kleio-writer", daemon=True)
        self.store = store
        self.trial_id = trial_id
        self.next_seq = next_seq
        self.spool = spool
        self.flush_interval = flush_interval
        # Bounded: when the store is slower than the program, the I/O thread blocks, the
        # socket buffer fills, and the program waits instead of memory growing.
        self.queue: queue.Queue[Message] = queue.Queue(maxsize=16)
        self.pending: list[NewEvent] = []
        self.store_ok = True
        self.last_retry = 0.0
        self.child_pid: int | None = None
        self.stop_request: dict[str, Any] | None = None
        self.runner_info: dict[str, Any] = dict(runner_info or {})
        self.displaced: dict[str, Any] | None = None
        self._init_lease()  # self-fencing: kleio.writer.lease
        self.ledger_dir = ledger_dir
        # Events neither the journal nor the spool took: retried at every flush.
        self.backlog: list[NewEvent] = []
        self.problems: dict[str, int] = {}
        self._warned: set[str] = set()
        #: When the program was asked to stop (monotonic): the runner escalates to SIGKILL.
        self.term_sent_at: float | None = None
        #: The run's checks (:class:`kleio.checks.live.Monitor`), told of each numbered batch
        #: in this thread; it never raises and keeps to a small share of the time.
        self.monitor: Any = None
        #: Makes :attr:`monitor` on the first thing to check (None: no checks, or made).
        self.make_monitor: Any = None
        #: Called once, at the program's first record (a statistic, a metric declaration,
        #: an artifact): what is told only to programs that log (kleio.checks.before).
        self.on_first_record: Any = None

    # -- API used by the other threads ----------------------------------------------------

    def events(self, kind: str, when: float, datas: list[str]) -> None:
        self.queue.put(Events(kind, when, datas))

    def send(self, message: Message) -> None:
        """Queue a request for the writer thread (waits while its queue is full)."""
        self.queue.put(message)

    def accepting(self) -> bool:
        """Tell whether new ledger records should be handed over now (flow control)."""
        return self.store_ok and not self.backlog and self.queue.qsize() < 8

    def problem(self, key: str, message: str, count: int = 1) -> None:
        """Count a failure; tell it on stderr the first time."""
        self.problems[key] = self.problems.get(key, 0) + count
        if key not in self._warned:
            self._warned.add(key)
            warn(message)

    # -- the thread -----------------------------------------------------------------------

    def run(self) -> None:
        handlers: dict[type, Any] = {
            Heartbeat: self._heartbeat,
            Status: self._status,
            Artifact: self._artifact,
            Query: self._query,
        }
        deadline: float | None = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self.queue.get(timeout=timeout)
            except queue.Empty:
                self.flush()
                deadline = None
                continue
            try:
                if isinstance(item, (Events, LedgerChunk)):
                    # Numbered now, written in batches: at most every flush_interval.
                    if isinstance(item, Events):
                        self._events(item)
                    else:
                        self._ledger(item.chunk)
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self.flush_interval
                    if len(self.pending) >= BATCH or now >= deadline:
                        self.flush()
                        deadline = None
                    continue
                self.flush()
                deadline = None
                if isinstance(item, Stop):
                    return
                handlers[type(item)](item)
            except Exception as error:  # storage must never kill the run, nor this thread
                self.problem("errors", f"journal operation {type(item).__name__} failed: {error!r}")

    def _checks(self) -> Any:
        """The run's checks, made (by :attr:`make_monitor`) when there is a first thing to
        check: a statistic, a line, a heartbeat. In this thread, not the main one: neither
        the program's start nor the 'running' status waits for their import, no event is
        numbered before they see it, and a run with nothing to check never loads them."""
        if self.make_monitor is not None:
            make, self.make_monitor = self.make_monitor, None
            self.monitor = make()
        return self.monitor

    def _events(self, item: Events) -> None:
        seq = self.next_seq
        self.next_seq = seq + len(item.datas)
        self.pending.extend(
            zip(range(seq, self.next_seq), repeat(item.kind), repeat(item.when), item.datas)
        )
        monitor = self._checks()
        if monitor is not None:
            monitor.events(item.kind, seq, item.when, item.datas)

    def flush(self) -> None:
        """Write what is pending: to the journal, else the spool, else keep it in memory."""
        if not self.store_ok:
            self._retry()
        if not self.pending and not self.backlog:
            return
        batch = self.backlog + self.pending if self.backlog else self.pending
        self.pending, self.backlog = [], []
        if self.store_ok:
            try:
                self._append(batch)
                return
            except StoreUnavailable as error:
                self._down(error)
            except OSError as error:  # this process's trouble (descriptors, memory map, disk)
                self._down(as_outage(error))
            except Exception:  # refused for its content: each event is tried on its own
                batch = self._salvage(batch)
                if not batch:
                    return
        try:
            self.spool.add_events(batch)
        except Exception as error:
            self._hold(batch, error)

    def _append(self, batch: list[NewEvent]) -> None:
        # A ledger marker goes in before its events (its own insert): see kleio.ledger.
        markers, rest = split_markers(batch)
        if markers:
            self.store.append_events(trial_id=self.trial_id, events=markers)
        self.store.append_events(trial_id=self.trial_id, events=rest)

    def _fields(self, fields: dict[str, Any]) -> bool:
        """Set the trial's cached fields, else spool them; True if the journal took them.

        Fenced, they are spooled: the spool sets them only if no other execution started.
        """
        if self.displaced is not None:
            return False  # the trial's document now describes its new runner's execution
        if self.store_ok and not self.fenced:
            try:
                self.store.update_trial(trial_id=self.trial_id, fields=fields)
                return True
            except Exception as error:
                self._down(error)
        try:
            self.spool.add_fields(fields)
        except Exception as error:
            self.problem(
                "spool_failures",
                f"cannot write the spool {self.spool.path} "
                f"({error}); the trial's cached fields are set when the journal "
                "returns",
            )
        return False

    def _heartbeat(self, beat: Heartbeat) -> None:
        """Tell the checks the time, then renew the lease (:meth:`Lease._renew`)."""
        monitor = self._checks()
        if monitor is not None:
            monitor.tick(beat.when)
        self._renew(beat)

    def _status(self, message: Status) -> None:
        status, when, data, fields = message.status, message.when, message.data, message.fields
        if "exit_code" in data and self.monitor is not None:
            self.monitor.end(status)  # its findings go before the final status
        if "exit_code" in data:  # the execution's problems, also on the trial (ls --json)
            fields = {**fields, "problems": dict(self.problems) or None}
            if self.problems:
                data = {**data, "problems": dict(self.problems)}
        event = (self.next_seq, "status", when, encode({"status": status, **data}))
        self.next_seq += 1
        self.pending.append(event)
        self.flush()
        self._fields({"status": status, "status_at": when, **fields})

    def _artifact(self, message: Artifact) -> None:
        path, header, when = message.path, message.header, message.when
        with open(path, "rb") as handle:
            sha256, size = copy_hashing(handle)
        stored = False
        if self.store_ok:
            try:
                with open(path, "rb") as handle:
                    self.store.put_blob(fileobj=handle)
                stored = True
            except Exception as error:
                self._down(error)
        if stored:
            os.remove(path)
        else:
            self.spool.add_blob(path)
        data = {**header, "sha256": sha256, "size": size}
        self.pending.append((self.next_seq, "artifact", when, encode(data)))
        self.next_seq += 1
        self.flush()

    def _ledger(self, chunk: Chunk) -> None:
        seq = self.next_seq
        self.next_seq = seq + len(chunk.lines) + 1
        marker, events = chunk_events(
            chunk, seq, time.time(), self.ledger_dir or "", self._ledger_blob
        )
        self.pending.append(marker)
        self.pending.extend(events)
        if events and self.on_first_record is not None:
            hook, self.on_first_record = self.on_first_record, None
            hook()
        if events and self._checks() is not None:
            self.monitor.records(events)

    def _ledger_blob(self, path: str, header: dict[str, Any]) -> tuple[str, int] | None:
        """Store the bytes of a ledger artifact, or spool them; None if they are gone."""
        try:
            fd = open_regular(path)
        except OSError as error:
            self.problem(
                "missing_artifacts",
                f"the bytes of artifact "
                f"{header.get('filename')!r} cannot be read from the ledger ({error})",
            )
            return None
        claimed = (str(header.get("sha256")), int(header.get("size") or 0))
        with os.fdopen(fd, "rb") as handle:
            if self.store_ok:
                try:
                    stored = self.store.put_blob(fileobj=handle)
                    os.remove(path)
                    return stored
                except OSError as error:
                    self.problem("errors", f"cannot read artifact bytes {path}: {error}")
                    return None
                except Exception as error:
                    self._down(error)
        # Moved beside the spool, which replays (then removes) it before the event.
        kept = os.path.join(self.spool.directory, "blob-" + os.path.basename(path))
        try:
            os.makedirs(self.spool.directory, mode=0o700, exist_ok=True)
            os.replace(path, kept)
            self.spool.add_blob(kept)
        except OSError as error:
            self.problem(
                "spool_failures",
                f"cannot spool artifact bytes ({error}); they stay in {path} for 'kleio sync'",
            )
        return claimed

    def _query(self, message: Query) -> None:
        answer_query(message.conn, message.request, self.store, self.trial_id)
