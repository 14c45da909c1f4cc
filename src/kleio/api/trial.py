"""One trial as the reading commands see it: :class:`Trial` and :func:`execution_times`."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from kleio.metrics import Declarations, from_events
from kleio.storage.base import Event, Store, execution_of, first_seq, short_id

if TYPE_CHECKING:
    from kleio.api.journal import Journal

_ENDED = frozenset({"completed", "broken", "interrupted", "suspended"})


class Trial:
    """One trial as the reading commands see it (see the module docstring)."""

    def __init__(self, journal: Journal, doc: dict[str, Any]) -> None:
        self._journal = journal
        self.doc = doc
        self.id: str = doc["id"]
        self.short_id = short_id(self.id)
        parent = doc.get("parent") or None
        self.parent: str | None = parent["id"] if isinstance(parent, dict) else None
        self.command: list[str] = list(doc.get("argv") or doc.get("command") or [])
        self.project: str | None = doc.get("project")
        self.tags: list[str] = list(doc.get("tags") or [])
        self.note: str | None = doc.get("note")
        self.created_at: float | None = doc.get("created_at")
        self.ended_at: float | None = doc.get("ended_at")
        self.exit_code: int | None = doc.get("exit_code")
        config = doc.get("config") or {}
        self.options: dict[str, Any] = {k: v for k, v in config.items() if k != "_pos"}
        self.positionals: list[str] = list(config.get("_pos") or [])
        self._status: str | None = None
        self._timing: tuple[float | None, float | None] | None = None
        self._declarations: Declarations | None = None
        self._metrics: dict[str, dict[str, Any]] | None = None
        self._summary: dict[str, Any] | None = None
        # Read for a whole page by kleio.api.prefetch (None: not read, read alone if needed).
        self._status_events: list[Event] | None = None
        self._lineage_parts: list[dict[str, Any]] | None = None
        self._lineage_declared: list[Any] | None = None

    def __repr__(self) -> str:
        return f"<Trial {self.short_id} {self.status}>"

    @property
    def program(self) -> list[str]:
        """The command before its arguments: ``["python", "train.py"]``, as normalized."""
        from kleio.argv import split_program

        command = list(self.doc.get("command") or self.command)
        return command[: split_program(command)[1]]

    # -- lazily read ------------------------------------------------------------------------

    @property
    def status(self) -> str:
        if self._status is None:
            from kleio.reservation import ENDED, display_status, status_of

            if self._status_events is None:
                self._status = status_of(
                    self._journal.store,
                    self.doc,
                    host=self._journal.host,
                    stale_after=self._journal.stale_after,
                )
            else:  # status_of with the status events read for the page
                status = display_status(
                    self.doc, host=self._journal.host, stale_after=self._journal.stale_after
                )
                events = self._status_events
                final = events[-1].data.get("status") if events else None
                self._status = str(final) if status == "lost" and final in ENDED else status
        return self._status

    def _times(self) -> tuple[float | None, float | None]:
        if self._timing is None:
            self._timing = execution_times(
                self._journal.store, self.doc, self.status, events=self._status_events
            )
        return self._timing

    @property
    def started_at(self) -> float | None:
        """The first start of the trial (of any of its executions)."""
        return self._times()[0]

    @property
    def duration(self) -> float | None:
        """Seconds run over every execution (see :func:`execution_times`)."""
        return self._times()[1]

    @property
    def declarations(self) -> Declarations:
        if self._declarations is None:
            if self.parent is None:
                summary = self.own_summary()
                own = Declarations(summary["modes"], summary["primary"])
            elif self._lineage_declared is not None:  # read for the page
                own = from_events(self._lineage_declared)
            else:  # a branch inherits its ancestors' declarations, up to the cut
                own = from_events(
                    e.data
                    for e in self._journal.store.iter_lineage_events(
                        trial_id=self.id, kinds=("metrics",)
                    )
                )
            self._declarations = self._journal.reader.over(own.over(self._journal.configured))
        return self._declarations

    def own_summary(self) -> dict[str, Any]:
        """The store's summary of this trial's own statistics (see
        :meth:`kleio.storage.base.Store.read_summaries`), read once."""
        if self._summary is None:
            self._journal.prefetch([self])
        assert self._summary is not None
        return self._summary

    @property
    def primary(self) -> str | None:
        return self.declarations.primary

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        if self._metrics is None:
            # From the summaries the store keeps: no statistic is decoded here.
            from kleio.storage.summary import metric_entry

            declarations = self.declarations
            out = {}
            for name, entry in self._lineage_entries().items():
                mode = declarations.mode(name)
                if mode is not None and entry["count"]:
                    out[name] = metric_entry(entry, mode)
            self._metrics = out
        return self._metrics

    @metrics.setter
    def metrics(self, summary: dict[str, dict[str, Any]]) -> None:
        """Hand in summaries made by a reader that read the statistics itself (the dashboard
        folds them with :class:`kleio.metrics.Summarizer` while it reads its charts' columns),
        so they are not read twice."""
        self._metrics = summary

    def _lineage_entries(self) -> dict[str, dict[str, Any]]:
        """Summary entries over the lineage: each ancestor up to its cut, then our own."""
        if self.parent is None:
            return self.own_summary()["entries"]
        from kleio.storage.summary import merge

        merged: dict[str, dict[str, Any]] = {}
        if self._lineage_parts is not None:  # read for the page
            for known in self._lineage_parts:
                for name, entry in known["entries"].items():
                    merged[name] = merge(merged.get(name), entry)
            return merged
        store = self._journal.store
        for doc, upto in store.lineage(trial_id=self.id):
            part = store.read_summaries(trial_ids=[doc["id"]]).get(doc["id"])
            if part is None:
                continue
            last = part["last_stat_seq"]
            if upto is not None and last is not None and last > upto:
                # Cut before its last statistic: only the statistics up to the cut count.
                part = store.summarize_events(trial_id=doc["id"], upto=upto)
            for name, entry in part["entries"].items():
                merged[name] = merge(merged.get(name), entry)
        return merged

    def iter_statistics(self) -> Iterator[dict[str, Any]]:
        """The statistics of the lineage, oldest first, read in batches (bounded memory)."""
        for event in self._journal.store.iter_lineage_events(
            trial_id=self.id, kinds=("statistic",)
        ):
            yield event.data

    def statistics(self) -> list[dict[str, Any]]:
        """Every statistic of the lineage, oldest first (what ``kleio cat --statistics`` shows)."""
        return list(self.iter_statistics())

    def artifacts(self) -> list[dict[str, Any]]:
        """The artifacts of the lineage, oldest first."""
        return [
            {
                "filename": e.data.get("filename"),
                "metadata": e.data.get("metadata") or {},
                "sha256": e.data.get("sha256"),
                "size": e.data.get("size"),
                "time": e.time,
                "trial": e.trial_id,
            }
            for e in self._journal.store.iter_lineage_events(trial_id=self.id, kinds=("artifact",))
        ]

    def artifact(self, filename: str | None = None, **metadata: Any) -> bytes | None:
        """The bytes of the newest artifact of the lineage matching ``filename`` and metadata."""
        found = self._journal.store.find_artifact(
            trial_id=self.id, filename=filename, metadata=metadata
        )
        if found is None or not found.data.get("sha256"):
            return None
        with self._journal.store.open_blob(sha256=found.data["sha256"]) as handle:
            data: bytes = handle.read()
        return data

    # -- values by name ---------------------------------------------------------------------

    def value(self, name: str) -> Any:
        """The value of a field, an option or a metric (best; ``NAME.last`` for last)."""
        field = _field(self, name)
        if field is not _MISSING:
            return field
        if name in self.options:
            return self.options[name]
        metric, _, which = name.rpartition(".")
        if which in ("last", "best", "best_step", "count") and metric in self.metrics:
            return self.metrics[metric][which]
        entry = self.metrics.get(name)
        return entry["best"] if entry is not None else None

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``kleio ls --json`` and ``kleio export`` (kept stable)."""
        return {
            "id": self.id,
            "short_id": self.short_id,
            "status": self.status,
            "command": self.command,
            "project": self.project,
            "options": self.options,
            "tags": self.tags,
            "note": self.doc.get("note"),
            "metrics": {
                name: {
                    "mode": m["mode"],
                    "last": m["last"],
                    "best": m["best"],
                    "best_step": m["best_step"],
                    "step_key": m["step_key"],
                }
                for name, m in self.metrics.items()
            },
            "primary_metric": self.primary,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "last_started_at": self.doc.get("started_at"),
            "ended_at": self.ended_at,
            "duration": self.duration,
            "exit_code": self.exit_code,
            "problems": self.doc.get("problems"),
            "parent": self.parent,
        }


_MISSING = object()


def _field(trial: Trial, name: str) -> Any:
    if name == "id":
        return trial.id
    if name == "status":
        return trial.status
    if name == "project":
        return trial.project
    if name in ("tag", "tags"):
        return trial.tags
    if name == "command":
        import shlex

        return shlex.join(trial.command)
    if name == "created":
        return trial.created_at
    if name == "started":
        return trial.started_at
    if name == "ended":
        return trial.ended_at
    if name == "duration":
        return trial.duration
    if name == "parent":
        return trial.parent
    if name == "exit_code":
        return trial.exit_code
    return _MISSING


def execution_times(
    store: Store,
    doc: dict[str, Any],
    status: str,
    now: float | None = None,
    events: Sequence[Event] | None = None,
) -> tuple[float | None, float | None]:
    """``(first start, total seconds run)`` over every execution of a trial (not its parent's).

    An execution starts at its ``running`` status and ends at its final status (completed,
    broken, interrupted, suspended). One that has none: if a later execution exists, it ended
    with its last journalled event or its last heartbeat (which the later one's ``failover``
    status records), whichever is later; if it is the last one, it is still running (up to now)
    or, when its runner is lost, ended at the trial's last heartbeat or its last journalled
    event, whichever is later. ``events``: the trial's status events, when already read.
    """
    if events is None:
        events = store.read_events(trial_id=doc["id"], kinds=("status",))
    starts: dict[int, float] = {}
    ends: dict[int, float] = {}
    beats: dict[int, float] = {}  # an execution's last heartbeat, told by the one taking over
    for event in events:
        execution = execution_of(event.seq)
        state = event.data.get("status")
        if state == "running" and execution not in starts:
            starts[execution] = event.time
        elif state in _ENDED:
            ends[execution] = event.time
        elif state == "failover" and isinstance(event.data.get("heartbeat_at"), (int, float)):
            beats[execution - 1] = float(event.data["heartbeat_at"])
    if not starts:
        return None, None
    last = max(starts)
    total = 0.0
    for execution, start in starts.items():
        end = ends.get(execution)
        if end is None:
            if execution != last or status == "lost":
                # Its runner died between heartbeats: it ran at least until its last beat
                # (told by the execution that took over, else the trial's) and its last
                # journalled event, whichever came later.
                beat = beats.get(execution) if execution != last else doc.get("heartbeat_at")
                ran = _last_event_time(store, doc["id"], execution)
                end = max(float(beat or start), ran or start)
            elif status in ("running", "reserved"):
                end = now if now is not None else time.time()
            else:
                end = float(doc.get("ended_at") or doc.get("heartbeat_at") or start)
        total += max(0.0, float(end) - start)
    return min(starts.values()), total


def _last_event_time(store: Store, trial_id: str, execution: int) -> float | None:
    """The time of the last event journalled by one execution of a trial, if any."""
    tail = store.read_events(
        trial_id=trial_id,
        after=first_seq(execution),
        upto=first_seq(execution + 1) - 1,
        limit=1,
        reverse=True,
    )
    return tail[0].time if tail else None
