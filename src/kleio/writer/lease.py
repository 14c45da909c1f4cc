"""The writer's lease on its trial: heartbeats, ``kleio stop``, takeovers and self-fencing.

The heartbeat is a lease (docs/reliability.rst, "Leases"): a runner whose heartbeat the
journal has not confirmed for its lease pauses its program (:meth:`Lease.fence`) before the
time at which another host may take the trial over, and at the next heartbeat either claims
the trial back or yields it (:meth:`Lease._reclaim`). A runner that finds another holder
named in the trial's document stops its program: two live runs of one trial never go on.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from kleio.client.stderr import warn
from kleio.process import kill_quietly
from kleio.storage.base import Store, encode, execution_of, first_seq
from kleio.trial import short_id

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any

    from kleio.spool import Spool
    from kleio.writer.messages import Heartbeat


def _same_runner(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a) and all(a.get(key) == b.get(key) for key in ("host", "pid", "since"))


class Lease:
    """The lease-keeping half of :class:`~kleio.writer.thread.Writer` (a mixin).

    The runner's main thread fences (:meth:`fence`); the writer thread renews, resumes or
    yields (:meth:`_renew`, :meth:`_reclaim`); :attr:`_fence_lock` orders the two.
    """

    # Set by the writer (kleio.writer.thread.Writer.__init__).
    store: Store
    trial_id: str
    next_seq: int
    spool: Spool
    store_ok: bool
    child_pid: int | None
    stop_request: dict[str, Any] | None
    runner_info: dict[str, Any]
    displaced: dict[str, Any] | None
    term_sent_at: float | None

    def _init_lease(self) -> None:
        #: The monotonic time at which the heartbeat stamp the journal last confirmed was
        #: taken, and whether the program is paused for want of a newer one.
        self.renewed = time.monotonic()
        self.fenced = False
        self._fence_lock = threading.Lock()
        self._fenced_group = False

    if TYPE_CHECKING:  # provided by the writer and its outage half; for the type checker only

        def _fields(self, fields: dict[str, Any]) -> bool: ...

        def _retry(self, force: bool = False) -> None: ...

        def _down(self, error: BaseException) -> None: ...

    def _renew(self, beat: Heartbeat) -> None:
        """Renew the lease, answer ``kleio stop``, notice a takeover."""
        when, taken = beat.when, beat.taken
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
        if (
            self.displaced is None
            and mine
            and self.child_pid is not None
            and holder
            and (holder.get("host"), holder.get("pid"), holder.get("since"))
            != (mine.get("host"), mine.get("pid"), mine.get("since"))
        ):
            # Another runner took the trial over (this one looked dead: a heartbeat older
            # than its stale_after). Two runs of one trial must not go on: stop ours.
            self.displaced = dict(holder)
            warn(
                f"trial {short_id(self.trial_id)} was taken over by a runner on "
                f"{holder.get('host')} (pid {holder.get('pid')}); stopping this run"
            )
            self._terminate()

    def fence(self, lease: float, group: bool) -> bool:
        """Pause the program: no heartbeat was confirmed for ``lease`` seconds (main thread).

        Another host may take the trial over once its heartbeat is older than stale_after;
        the lease is shorter, so this run is paused before that can happen. ``group``: the
        program has its own process group, which is paused whole. True if paused now.
        """
        with self._fence_lock:
            if (
                self.fenced
                or self.child_pid is None
                or self.displaced is not None
                or time.monotonic() - self.renewed < lease
            ):
                return False
            self.fenced, self._fenced_group = True, group
            self._signal_program(signal.SIGSTOP)
        warn(
            f"the journal has confirmed no heartbeat of trial {short_id(self.trial_id)} for "
            f"{lease:g} s; its program is paused so that no other host runs it at the same "
            "time, and resumes if the journal returns before the trial is taken over"
        )
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
        event = (
            seq,
            "status",
            when,
            encode({"status": "running", "runner": mine, "resumed": "lease renewed"}),
        )
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
            warn(
                f"the journal is back and trial {short_id(self.trial_id)} was not taken over; "
                "its program resumes"
            )
        else:
            warn(
                f"trial {short_id(self.trial_id)} was taken over by a runner on "
                f"{holder.get('host')} (pid {holder.get('pid')}) while this one was cut off; "
                "stopping this run"
            )

    def _terminate(self) -> None:
        """Ask the program to stop (SIGTERM); the runner escalates from :attr:`term_sent_at`."""
        if self.child_pid is not None:
            kill_quietly(self.child_pid, signal.SIGTERM)
            if self.term_sent_at is None:
                self.term_sent_at = time.monotonic()
