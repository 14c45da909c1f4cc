"""The writer thread of a runner: the only code that talks to the store during a run.

It numbers events, writes them in batches, answers the client's queries, applies
``kleio stop`` requests and notices a takeover at each heartbeat, and spools to a local file
whenever the store fails, replaying it when the store returns. A storage failure never
changes the program's exit code: the writer catches everything.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import sys
import threading
import time
from itertools import repeat
from typing import Any

from kleio.spool import Spool
from kleio.storage.base import NewEvent, Store, encode

BATCH = 5000


def warn(message: str) -> None:
    try:
        sys.stderr.write(f"kleio: warning: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def kill_quietly(pid: int, signo: int) -> None:
    try:
        os.kill(pid, signo)
    except ProcessLookupError:
        pass


class Writer(threading.Thread):
    """The only thread that talks to the store."""

    def __init__(self, store: Store, trial_id: str, next_seq: int, spool: Spool,
                 flush_interval: float) -> None:
        super().__init__(name="kleio-writer", daemon=True)
        self.store = store
        self.trial_id = trial_id
        self.next_seq = next_seq
        self.spool = spool
        self.flush_interval = flush_interval
        # Bounded: when the store is slower than the program, the I/O thread blocks, the
        # socket buffer fills, and the program waits instead of memory growing.
        self.queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=16)
        self.pending: list[NewEvent] = []
        self.store_ok = True
        self.last_retry = 0.0
        self.retry_interval = 2.0
        self.child_pid: int | None = None
        self.stop_request: dict[str, Any] | None = None
        self.runner_info: dict[str, Any] = {}
        self.displaced: dict[str, Any] | None = None

    # -- API used by the other threads ----------------------------------------------------

    def events(self, kind: str, when: float, datas: list[str]) -> None:
        self.queue.put(("events", kind, when, datas))

    def call(self, op: str, *args: Any) -> None:
        self.queue.put((op, *args))

    # -- the thread -----------------------------------------------------------------------

    def run(self) -> None:
        deadline: float | None = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self.queue.get(timeout=timeout)
            except queue.Empty:
                self.flush()
                deadline = None
                continue
            op = item[0]
            if op == "events":
                _, kind, when, datas = item
                seq = self.next_seq
                self.next_seq = seq + len(datas)
                self.pending.extend(
                    zip(range(seq, self.next_seq), repeat(kind), repeat(when), datas))
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.flush_interval
                if len(self.pending) >= BATCH or now >= deadline:
                    self.flush()
                    deadline = None
                continue
            self.flush()
            deadline = None
            if op == "stop":
                return
            try:
                getattr(self, "_op_" + op)(*item[1:])
            except Exception as error:  # storage must never kill the run
                warn(f"journal operation {op!r} failed: {error}")

    def flush(self) -> None:
        if not self.pending:
            if not self.store_ok:
                self._retry()
            return
        batch, self.pending = self.pending, []
        if self.store_ok:
            try:
                self.store.append_events(trial_id=self.trial_id, events=batch)
                return
            except Exception as error:
                self._down(error)
        self.spool.add_events(batch)
        self._retry()

    def _down(self, error: BaseException) -> None:
        if self.store_ok:
            warn(f"the journal is unavailable ({error}); events are kept in "
                  f"{self.spool.path} and replayed when it returns")
        self.store_ok = False
        self.last_retry = time.monotonic()

    def _retry(self, force: bool = False) -> None:
        if not force and time.monotonic() - self.last_retry < self.retry_interval:
            return
        self.last_retry = time.monotonic()
        try:
            self.spool.replay(self.store)
        except Exception:
            return
        if not self.store_ok:
            warn("the journal is back; spooled events were replayed")
        self.store_ok = True

    def _fields(self, fields: dict[str, Any]) -> None:
        if self.displaced is not None:
            return  # the trial's document now describes its new runner's execution
        if self.store_ok:
            try:
                self.store.update_trial(trial_id=self.trial_id, fields=fields)
                return
            except Exception as error:
                self._down(error)
        self.spool.add_fields(fields)

    def _op_heartbeat(self, when: float) -> None:
        self._fields({"heartbeat_at": when})
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
            kill_quietly(self.child_pid, signal.SIGTERM)
        holder = doc.get("runner") or {}
        mine = self.runner_info
        if (self.displaced is None and mine and self.child_pid is not None and holder
                and (holder.get("host"), holder.get("pid"), holder.get("since"))
                != (mine.get("host"), mine.get("pid"), mine.get("since"))):
            # Another runner took the trial over (this one looked dead: a heartbeat older
            # than its stale_after). Two runs of one trial must not go on: stop ours.
            self.displaced = dict(holder)
            warn(f"trial {self.trial_id[:7]} was taken over by a runner on "
                  f"{holder.get('host')} (pid {holder.get('pid')}); stopping this run")
            kill_quietly(self.child_pid, signal.SIGTERM)

    def _op_status(self, status: str, when: float, data: dict[str, Any],
                   fields: dict[str, Any]) -> None:
        event = (self.next_seq, "status", when, encode({"status": status, **data}))
        self.next_seq += 1
        self.pending.append(event)
        self.flush()
        self._fields({"status": status, "status_at": when, **fields})

    def _op_artifact(self, path: str, header: dict[str, Any], when: float) -> None:
        import hashlib

        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
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
        data = {**header, "sha256": digest.hexdigest(), "size": size}
        self.pending.append((self.next_seq, "artifact", when, encode(data)))
        self.next_seq += 1
        self.flush()

    def _op_query(self, conn: socket.socket, request: dict[str, Any]) -> None:
        try:
            reply, payload = self._answer(request)
        except Exception as error:
            reply, payload = {"error": f"query failed: {error}"}, None
        try:
            conn.sendall(json.dumps(reply).encode("ascii") + b"\n")
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
            wanted = request.get("metadata") or {}
            filename = request.get("filename")
            match = None
            for event in self.store.iter_lineage_events(trial_id=self.trial_id,
                                                         kinds=("artifact",)):
                data = event.data
                meta = data.get("metadata") or {}
                if filename is not None and data.get("filename") != filename:
                    continue
                if all(k in meta and meta[k] == v for k, v in wanted.items()):
                    match = data
            if match is None:
                return {"found": False}, None
            handle = self.store.open_blob(sha256=match["sha256"])
            return {"found": True, "filename": match["filename"],
                    "metadata": match.get("metadata") or {}, "size": match["size"]}, handle
        return {"error": f"unknown query {op!r}"}, None

    def finish(self) -> bool:
        """Called after the thread stopped: last replay; True if nothing is left spooled."""
        if self.spool.pending:
            self._retry(force=True)
        return not self.spool.pending
