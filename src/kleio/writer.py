"""The writer thread of a runner: the only code that talks to the store during a run.

It numbers events, writes them in batches, journals the records of the ledger
(:mod:`kleio.ledger`), answers the client's queries, applies ``kleio stop`` requests and
notices a takeover at each heartbeat, and spools to a local file whenever the store fails,
replaying it when the store returns. A storage failure never changes the program's exit code
and never ends this thread: every failure is caught, told once on stderr, counted, and the
counts are journalled with the final status (``problems``).
"""

from __future__ import annotations

import _socket
import os
import queue
import signal
import sys
import threading
import time
from itertools import repeat

from kleio.client import reply as encode_reply
from kleio.errors import StoreUnavailable
from kleio.ledger import Chunk, chunk_events, open_regular
from kleio.process import kill_quietly
from kleio.spool import Spool, split_markers, store_each
from kleio.storage.base import NewEvent, Store, copy_hashing, encode, execution_of, first_seq
from kleio.trial import short_id

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any

BATCH = 5000
#: Events held in memory when neither the journal nor the spool takes them (a full disk).
#: The ledger is not read meanwhile, so this holds output and socket records only.
MAX_BACKLOG = 200_000


# -- messages: what the other threads ask the writer, one class per request -----------------


class Events:
    """Events of one kind, numbered in order by the writer (output lines, statistics)."""

    __slots__ = ("datas", "kind", "when")

    def __init__(self, kind: str, when: float, datas: list[str]) -> None:
        self.kind, self.when, self.datas = kind, when, datas


class LedgerChunk:
    """Records read from a ledger file (:class:`kleio.ledger.Chunk`)."""

    __slots__ = ("chunk",)

    def __init__(self, chunk: Chunk) -> None:
        self.chunk = chunk


class Heartbeat:
    """Renew the lease: ``when`` is the time stamp, ``taken`` its monotonic time."""

    __slots__ = ("taken", "when")

    def __init__(self, when: float, taken: float | None = None) -> None:
        self.when, self.taken = when, taken


class Status:
    """A status event, and the trial's cached fields to set with it."""

    __slots__ = ("data", "fields", "status", "when")

    def __init__(self, status: str, when: float, data: dict[str, Any],
                 fields: dict[str, Any]) -> None:
        self.status, self.when, self.data, self.fields = status, when, data, fields


class Artifact:
    """An artifact whose bytes a client sent over the socket (staged in ``path``)."""

    __slots__ = ("header", "path", "when")

    def __init__(self, path: str, header: dict[str, Any], when: float) -> None:
        self.path, self.header, self.when = path, header, when


class Query:
    """A client's question, answered on its connection."""

    __slots__ = ("conn", "request")

    def __init__(self, conn: _socket.socket, request: dict[str, Any]) -> None:
        self.conn, self.request = conn, request


class Stop:
    """Flush everything and end the thread."""

    __slots__ = ()


TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

    #: Everything the writer's queue carries.
    Message = Union[Events, LedgerChunk, Heartbeat, Status, Artifact, Query, Stop]


def warn(message: str) -> None:
    try:
        sys.stderr.write(f"kleio: warning: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _same_runner(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a) and all(a.get(key) == b.get(key) for key in ("host", "pid", "since"))


class Writer(threading.Thread):
    """The only thread that talks to the store."""

    #: Seconds between two attempts to reach a journal that failed.
    retry_interval = 2.0

    def __init__(self, store: Store, trial_id: str, next_seq: int, spool: Spool,
                 flush_interval: float, *, runner_info: dict[str, Any] | None = None,
                 ledger_dir: str | None = None) -> None:
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
        #: Self-fencing (docs/reliability.rst, "Leases"): the monotonic time at which the
        #: heartbeat stamp the journal last confirmed was taken, and whether the program is
        #: paused for want of a newer one. The runner's main thread fences (:meth:`fence`),
        #: this thread resumes or yields (:meth:`_reclaim`); the lock orders the two.
        self.renewed = time.monotonic()
        self.fenced = False
        self._fence_lock = threading.Lock()
        self._fenced_group = False
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
        handlers: dict[type, Any] = {Heartbeat: self._heartbeat, Status: self._status,
                                     Artifact: self._artifact, Query: self._query}
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
                self.problem("errors", f"journal operation {type(item).__name__} failed: "
                             f"{error!r}")

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
        self.pending.extend(zip(range(seq, self.next_seq), repeat(item.kind),
                                repeat(item.when), item.datas))
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
            except Exception as error:
                batch = self._salvage(batch, error)
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

    def _salvage(self, batch: list[NewEvent], error: BaseException) -> list[NewEvent]:
        """The journal refused a batch for its content: store what it takes one by one.

        Returns what is left to spool if the journal went away meanwhile.
        """
        def refused(event: NewEvent, why: BaseException) -> None:
            self.problem("unstorable_events",
                         f"the journal refused a {event[1]} event ({why!r}); it is "
                         "dropped and counted in the trial's final status")

        _, rest, down = store_each(self.store, self.trial_id, batch, refused)
        if down is not None:
            self._down(down)
        return rest

    def _hold(self, batch: list[NewEvent], error: BaseException) -> None:
        self.problem("spool_failures", f"cannot write the spool {self.spool.path} ({error}); "
                     "events wait in memory until the journal or the disk takes them")
        if len(batch) > MAX_BACKLOG:
            # Output is what can go (statistics and artifacts wait in the ledger meanwhile).
            kept = [e for e in batch if e[1] not in ("stdout", "stderr")][-MAX_BACKLOG:]
            dropped = len(batch) - len(kept)
            self.problem("events_dropped", f"dropped {dropped} events (output first) that the "
                         "journal and the spool could not take", dropped)
            batch = kept
        self.backlog = batch

    def _down(self, error: BaseException) -> None:
        if self.store_ok and "down" not in self._warned:  # told once per run
            self._warned.add("down")
            warn(f"the journal is unavailable ({error}); events are kept in "
                  f"{self.spool.path} and replayed when it returns")
        self.store_ok = False
        self.last_retry = time.monotonic()

    def _retry(self, force: bool = False) -> None:
        """Is the journal back? Replay the spool, or write what memory holds, or ask."""
        if not force and time.monotonic() - self.last_retry < self.retry_interval:
            return
        self.last_retry = time.monotonic()
        try:
            if self.spool.pending:
                self.spool.replay(self.store)
            elif self.backlog:
                self._append(self.backlog)
                self.backlog = []
            elif not self.store_ok:
                self.store.last_seq(trial_id=self.trial_id)
        except Exception:
            return
        if not self.store_ok and "back" not in self._warned:
            self._warned.add("back")
            warn("the journal is back; spooled events were replayed")
        self.store_ok = True

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
            self.problem("spool_failures", f"cannot write the spool {self.spool.path} "
                         f"({error}); the trial's cached fields are set when the journal "
                         "returns")
        return False

    def _heartbeat(self, beat: Heartbeat) -> None:
        """Renew the lease, answer ``kleio stop``, notice a takeover."""
        when, taken = beat.when, beat.taken
        monitor = self._checks()
        if monitor is not None:
            monitor.tick(when)
        if self.fenced:
            self._reclaim()
            return
        if self._fields({"heartbeat_at": when}) and taken is not None:
            with self._fence_lock:
                if not self.fenced:
                    self.renewed = max(self.renewed, taken)
        if not self.store_ok:
            self._retry()
            return
        # `kleio stop ID`, from any machine sharing the journal, asks through the trial's
        # document; the runner answers at its next heartbeat by stopping the program.
        try:
            doc = self.store.get_trial(trial_id=self.trial_id) or {}
        except Exception as error:
            self._down(error)
            return
        request = doc.get("stop_requested")
        if request and self.stop_request is None and self.child_pid is not None:
            self.stop_request = dict(request)
            self._terminate()
        holder = doc.get("runner") or {}
        mine = self.runner_info
        if (self.displaced is None and mine and self.child_pid is not None and holder
                and (holder.get("host"), holder.get("pid"), holder.get("since"))
                != (mine.get("host"), mine.get("pid"), mine.get("since"))):
            # Another runner took the trial over (this one looked dead: a heartbeat older
            # than its stale_after). Two runs of one trial must not go on: stop ours.
            self.displaced = dict(holder)
            warn(f"trial {short_id(self.trial_id)} was taken over by a runner on "
                  f"{holder.get('host')} (pid {holder.get('pid')}); stopping this run")
            self._terminate()

    def fence(self, lease: float, group: bool) -> bool:
        """Pause the program: no heartbeat was confirmed for ``lease`` seconds (main thread).

        Another host may take the trial over once its heartbeat is older than stale_after;
        the lease is shorter, so this run is paused before that can happen. ``group``: the
        program has its own process group, which is paused whole. True if paused now.
        """
        with self._fence_lock:
            if (self.fenced or self.child_pid is None or self.displaced is not None
                    or time.monotonic() - self.renewed < lease):
                return False
            self.fenced, self._fenced_group = True, group
            self._signal_program(signal.SIGSTOP)
        warn(f"the journal has confirmed no heartbeat of trial {short_id(self.trial_id)} for "
             f"{lease:g} s; its program is paused so that no other host runs it at the same "
             "time, and resumes if the journal returns before the trial is taken over")
        return True

    def _signal_program(self, signo: int) -> None:
        if self.child_pid is None:
            return
        if self._fenced_group:
            try:
                os.killpg(self.child_pid, signo)
                return
            except OSError:
                pass
        kill_quietly(self.child_pid, signo)

    def _reclaim(self) -> None:
        """Fenced, and the journal may be back: claim the next execution, or yield the trial.

        The claim is the compare-and-append of reservations (:mod:`kleio.reservation`): of
        this runner and any host taking the trial over, exactly one inserts the first event
        of the next execution. This runner's own events, spooled meanwhile, keep their
        execution's numbers, so replaying them never overwrites the new holder's status.
        """
        if not self.store_ok:
            self._retry()
            if not self.store_ok:
                return
        execution = execution_of(self.next_seq) + 1
        seq = first_seq(execution)
        when, taken = time.time(), time.monotonic()
        mine = self.runner_info
        event = (seq, "status", when,
                 encode({"status": "running", "runner": mine, "resumed": "lease renewed"}))
        fields = {"status": "running", "status_at": when, "heartbeat_at": when, "runner": mine}
        try:
            won = self.store.try_append(trial_id=self.trial_id, event=event, fields=fields)
            holder: dict[str, Any] = {}
            if not won:
                # Our own claim, if the reply to an insert that succeeded was lost.
                found = self.store.read_events(trial_id=self.trial_id, after=seq - 1, upto=seq)
                data = found[0].data if found else {}
                claimer = data.get("runner") or {}
                # A takeover's first event is a 'failover' naming this runner as the old one.
                won = data.get("resumed") is not None and _same_runner(claimer, mine)
                if won:
                    self.store.update_trial(trial_id=self.trial_id, fields=fields)
                else:
                    doc = self.store.get_trial(trial_id=self.trial_id) or {}
                    holder = data.get("by") or doc.get("runner") or {}
        except Exception as error:
            self._down(error)
            return
        with self._fence_lock:
            self.fenced = False
            if won:
                self.next_seq = seq + 1
                self.spool.execution = execution
                self.renewed = taken
            else:
                self.displaced = dict(holder)
                self._terminate()  # pending until the program continues, just below
            self._signal_program(signal.SIGCONT)
        if won:
            warn(f"the journal is back and trial {short_id(self.trial_id)} was not taken over; "
                 "its program resumes")
        else:
            warn(f"trial {short_id(self.trial_id)} was taken over by a runner on "
                 f"{holder.get('host')} (pid {holder.get('pid')}) while this one was cut off; "
                 "stopping this run")

    def _terminate(self) -> None:
        if self.child_pid is not None:
            kill_quietly(self.child_pid, signal.SIGTERM)
            if self.term_sent_at is None:
                self.term_sent_at = time.monotonic()

    def _status(self, message: Status) -> None:
        status, when, data, fields = message.status, message.when, message.data, message.fields
        if "exit_code" in data and self.monitor is not None:
            self.monitor.end(status)  # its findings go before the final status
        if "exit_code" in data and self.problems:
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
        marker, events = chunk_events(chunk, seq, time.time(), self.ledger_dir or "",
                                      self._ledger_blob)
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
            self.problem("missing_artifacts", f"the bytes of artifact "
                         f"{header.get('filename')!r} cannot be read from the ledger ({error})")
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
            self.problem("spool_failures", f"cannot spool artifact bytes ({error}); they stay "
                         f"in {path} for 'kleio sync'")
        return claimed

    def _query(self, message: Query) -> None:
        conn, request = message.conn, message.request
        try:
            reply, payload = self._answer(request)
        except Exception as error:
            reply, payload = {"error": f"query failed: {error}"}, None
        try:
            conn.sendall(encode_reply(reply))
            if payload is not None:
                with payload:
                    for chunk in iter(lambda: payload.read(1 << 20), b""):
                        conn.sendall(chunk)
        except OSError:
            pass

    def _answer(self, request: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        op = request.get("op")
        if op == "statistics":
            stats = [e.data for e in self.store.iter_lineage_events(
                trial_id=self.trial_id, kinds=("statistic",))]
            return {"statistics": stats}, None
        if op == "artifact":
            event = self.store.find_artifact(trial_id=self.trial_id,
                                             filename=request.get("filename"),
                                             metadata=request.get("metadata") or {})
            if event is None:
                return {"found": False}, None
            match = event.data
            handle = self.store.open_blob(sha256=match["sha256"])
            return {"found": True, "filename": match["filename"],
                    "metadata": match.get("metadata") or {}, "size": match["size"]}, handle
        return {"error": f"unknown query {op!r}"}, None

    def finish(self, patience: float = 10.0) -> bool:
        """Called after the thread stopped: last replay; True if nothing is left spooled.

        Events only memory holds (the journal and the spool both refused them: one full
        disk) get ``patience`` seconds for space to come back; then they are lost, and said
        so, since no place is left to count them in.
        """
        deadline = time.monotonic() + patience
        while self.backlog:
            self.last_retry = 0.0
            self.flush()
            if not self.backlog or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if self.backlog:
            kinds = sorted({event[1] for event in self.backlog})
            warn(f"{len(self.backlog)} events of this run could be written neither to the "
                 f"journal nor to the spool ({self.spool.directory}): {', '.join(kinds)}; "
                 "output and status among them are lost, while statistics and artifacts "
                 "still in the ledger are journalled by 'kleio sync' once there is space")
            if self.problems:  # the final status that counts them cannot be journalled
                counted = ", ".join(f"{key} {count}" for key, count in self.problems.items())
                warn(f"counted during this run: {counted}")
        if self.spool.pending:
            self._retry(force=True)
        return not self.spool.pending

    @property
    def durable(self) -> bool:
        """True when everything received is in the journal or the spool (none in memory)."""
        return not self.backlog and not self.pending
