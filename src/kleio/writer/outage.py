"""The writer when the journal fails: nothing received is lost, and the run goes on.

A batch the journal refuses for its content is stored event by event (:meth:`Outage._salvage`),
the refused ones counted; while the journal is unavailable events go to the spool
(:mod:`kleio.spool`), and when the disk refuses the spool too they wait in memory
(:meth:`Outage._hold`, at most :data:`MAX_BACKLOG`); every flush asks, at most every
``retry_interval`` seconds, whether the journal is back and replays (:meth:`Outage._retry`);
:meth:`Outage.finish` is the last replay. The normal path, one batch appended, is
:meth:`kleio.writer.thread.Writer.flush`.
"""

from __future__ import annotations

import time

from kleio.client.stderr import warn
from kleio.spool import Spool, store_each
from kleio.storage.base import NewEvent, Store

TYPE_CHECKING = False  # not imported from typing: that costs milliseconds on every run

#: Events held in memory when neither the journal nor the spool takes them (a full disk).
#: The ledger is not read meanwhile, so this holds output and socket records only.
MAX_BACKLOG = 200_000


class Outage:
    """The failure-handling half of :class:`~kleio.writer.thread.Writer` (a mixin)."""

    #: Seconds between two attempts to reach a journal that failed.
    retry_interval = 2.0

    # Set by the writer (kleio.writer.thread.Writer.__init__).
    store: Store
    trial_id: str
    spool: Spool
    store_ok: bool
    last_retry: float
    pending: list[NewEvent]
    backlog: list[NewEvent]
    problems: dict[str, int]
    _warned: set[str]

    if TYPE_CHECKING:  # provided by the writer; declared for the type checker only

        def problem(self, key: str, message: str, count: int = 1) -> None: ...

        def flush(self) -> None: ...

        def _append(self, batch: list[NewEvent]) -> None: ...

    def _salvage(self, batch: list[NewEvent]) -> list[NewEvent]:
        """The journal refused a batch for its content: store what it takes one by one.

        Returns what is left to spool if the journal went away meanwhile.
        """

        def refused(event: NewEvent, why: BaseException) -> None:
            self.problem(
                "unstorable_events",
                f"the journal refused a {event[1]} event ({why!r}); it is "
                "dropped and counted in the trial's final status",
            )

        _, rest, down = store_each(self.store, self.trial_id, batch, refused)
        if down is not None:
            self._down(down)
        return rest

    def _hold(self, batch: list[NewEvent], error: BaseException) -> None:
        self.problem(
            "spool_failures",
            f"cannot write the spool {self.spool.path} ({error}); "
            "events wait in memory until the journal or the disk takes them",
        )
        if len(batch) > MAX_BACKLOG:
            # Output is what can go (statistics and artifacts wait in the ledger meanwhile).
            kept = [e for e in batch if e[1] not in ("stdout", "stderr")][-MAX_BACKLOG:]
            dropped = len(batch) - len(kept)
            self.problem(
                "events_dropped",
                f"dropped {dropped} events (output first) that the "
                "journal and the spool could not take",
                dropped,
            )
            batch = kept
        self.backlog = batch

    def _down(self, error: BaseException) -> None:
        if self.store_ok and "down" not in self._warned:  # told once per run
            self._warned.add("down")
            warn(
                f"the journal is unavailable ({error}); events are kept in "
                f"{self.spool.path} and replayed when it returns"
            )
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
            warn(
                f"{len(self.backlog)} events of this run could be written neither to the "
                f"journal nor to the spool ({self.spool.directory}): {', '.join(kinds)}; "
                "output and status among them are lost, while statistics and artifacts "
                "still in the ledger are journalled by 'kleio sync' once there is space"
            )
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
