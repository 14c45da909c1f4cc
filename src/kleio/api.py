"""Read trials from Python: for notebooks, scripts, ``kleio ls``/``best``/``export`` and plots.

Everything here only *reads* the journal (SQLite or MongoDB); nothing is ever written.

Quick start::

    import kleio.api as ka

    runs = ka.trials(where=["status=completed", "lr<0.1"], sort="-val_acc", limit=10)
    best = runs[0]
    best.id, best.short_id, best.status, best.options["lr"], best.metrics["val_acc"]["best"]
    rows = best.statistics()            # [{"epoch": 1, "val_acc": 0.8, ...}, ...] (lineage)
    for group in ka.groups(runs, except_=("seed",)):
        print(group.options, group.n, group.mean("val_acc"), group.std("val_acc"))
    frame = ka.to_dataframe(runs)       # needs pandas (pip install 'kleio[pandas]')

    with ka.open_journal("sqlite:///path/kleio.db") as journal:   # one connection, many calls
        journal.trials(tags=["sweep"]); journal.trial("4eda"); journal.statistics("4eda")

Module functions (``trials``, ``trial``, ``statistics``, ``best``) open the journal named by
``db`` (a URI or an SQLite path; default: the configured one, as ``kleio --db``/``KLEIO_DB``/
``kleio.yaml`` would choose) and close it before returning.

:class:`Trial` (one record, attributes read lazily and cached):

* ``id``, ``short_id`` (7 characters), ``status`` (as ``kleio ls`` shows it: ``lost`` for a
  trial whose runner died), ``command`` (list), ``project``, ``tags`` (list), ``note`` (text
  or None, set by ``kleio note``), ``parent`` (id
  or None), ``created_at``, ``started_at`` (the *first* start of any execution, epoch
  seconds or None), ``ended_at``, ``duration`` (seconds over every execution; a lost execution
  counts up to its last journalled event or heartbeat; a running one up to now),
  ``exit_code``, ``program`` (the command before its arguments), ``doc`` (the raw trial
  document);
* ``options``: ``{name: value}`` from the parsed command line (``--lr 0.1`` gives
  ``{"lr": "0.1"}``: values as typed, strings; a flag gives ``True``; a repeated option a
  list). ``positionals``: the other arguments;
* ``metrics``: ``{name: {"mode", "last", "best", "best_step", "step_key", "count"}}`` over
  the trial's **lineage** (a branch continues its parent's statistics up to the cut); see
  :mod:`kleio.metrics` for modes and the name rule;
* ``declarations``: the :class:`kleio.metrics.Declarations` in effect (command line over
  the trial's own over ``kleio.yaml``); ``primary``: the primary metric's name or None;
* ``statistics()`` (list of dicts, lineage, oldest first), ``iter_statistics()`` (a
  generator, bounded memory), ``artifacts()`` (list of ``{"filename", "metadata", "sha256",
  "size", "time", "trial"}``), ``artifact(filename=None, **metadata)`` (bytes of the newest
  match, or None);
* ``value(name)``: the value a column, ``--where`` or ``--sort`` uses for ``name`` (see
  below); ``to_json()``: the stable JSON object of ``kleio ls --json``.

Filters (keyword arguments of ``trials``; all combine with AND):

* ``where``: a list of conditions ``NAME OP VALUE``, ``OP`` one of ``= == != < <= > >=``;
  e.g. ``"lr<0.1"``, ``"status=completed"``, ``"val_acc>=0.9"``, ``"val_loss.last<0.3"``.
  ``NAME`` is a field (``id``, ``status``, ``project``, ``tag``, ``command``, ``created``,
  ``started``, ``ended``, ``duration``, ``parent``), else an option, else a metric (its best;
  ``NAME.last`` for its last value). Values compare as numbers when both sides are numbers,
  else as text; a trial without ``NAME`` never matches (``!=`` included). A malformed
  condition raises :class:`kleio.errors.UsageError`.
* ``status`` (list), ``tags`` (every one), ``project`` (substring of the project),
  ``since`` (seconds since the epoch, or text such as ``"2d"``, ``"3h"``, ``"30m"``,
  ``"2024-05-01"``: created at or after), ``ids`` (id prefixes).
* ``sort``: ``NAME`` or ``-NAME`` (descending); any name ``where`` accepts; a metric sorts on
  its best value; trials without the value come last in both directions. Default
  ``-created``. ``limit``: at most this many (after filtering and sorting).
* ``metrics``: ``["val_acc:max", "val_loss"]``: declarations of the reader, over the trials'
  own; the first is the primary metric.

Status, tags, id prefixes, ``since``, ``project`` and the conditions ``status=``,
``created>``/``>=`` and ``tag=`` are filtered by the database; so are the sort and the limit
when no other filter needs Python. Metrics come from the per-trial summaries the store keeps
as statistics are appended (:mod:`kleio.storage.summary`; one query per 200 trials, no
statistic decoded), and a sort on a metric is ranked by the store (a branch, whose lineage
decides, is ranked here and merged in), so ``sort="-val_acc", limit=50`` reads 50 trials
whatever the journal's size.

:func:`groups` puts together trials whose options are equal except the given ones (seeds):
each :class:`Group` has ``options`` (shared), ``trials``, ``n``, ``values(name, which)``,
``mean(name, which="best")`` and ``std(name, which="best")`` (sample standard deviation,
0.0 for one trial), ``to_json()``.

:func:`to_dataframe` and :func:`statistics_dataframe` need pandas (the ``kleio[pandas]``
extra); without it they raise ImportError naming the install command.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from kleio.errors import UsageError
from kleio.metrics import Declarations, from_config, from_events, from_specs, is_number
from kleio.storage.base import STATUSES, Store, execution_of, first_seq

#: Fields every trial has, by the names ``where``/``sort``/``--columns`` use.
FIELDS = ("id", "status", "project", "tag", "tags", "command", "created", "started", "ended",
          "duration", "parent", "exit_code")
#: Fields sorted by the database (name -> trial document field).
STORE_SORTS = {"created": "created_at", "id": "id", "status": "status"}
_ENDED = frozenset({"completed", "broken", "interrupted", "suspended"})
_CONDITION = re.compile(r"^\s*([^<>=!\s][^<>=!]*?)\s*(==|!=|<=|>=|=|<|>)\s*(.*?)\s*$", re.S)
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


# -- conditions ----------------------------------------------------------------------------


class Condition:
    """One ``NAME OP VALUE`` of ``where``."""

    __slots__ = ("name", "op", "text", "number")

    def __init__(self, spec: str) -> None:
        match = _CONDITION.match(spec) if isinstance(spec, str) else None
        if match is None or not match.group(3):
            raise UsageError(
                f"cannot read the condition {str(spec)[:60]!r}",
                "write NAME OP VALUE with OP one of = != < <= > >=, e.g. --where 'lr<0.1' "
                "or --where status=completed",
            )
        self.name, op, self.text = match.group(1), match.group(2), match.group(3)
        self.op = "=" if op == "==" else op
        self.number = _number(self.text)

    def matches(self, value: Any) -> bool:
        if value is None:
            return False
        if isinstance(value, (list, tuple)):  # tags, a repeated option: any element
            if self.op == "!=":
                return not any(self._equal(item) for item in value)
            return any(self.matches(item) for item in value)
        number = _number(value)
        if number is not None and self.number is not None:
            left, right = number, self.number
            if left != left:
                return False
        elif self.op in ("=", "!="):
            return self._equal(value) == (self.op == "=")
        else:
            left, right = str(value), self.text  # type: ignore[assignment]
        return {"=": left == right, "!=": left != right, "<": left < right,
                "<=": left <= right, ">": left > right, ">=": left >= right}[self.op]

    def _equal(self, value: Any) -> bool:
        number = _number(value)
        if number is not None and self.number is not None:
            return number == self.number
        if isinstance(value, bool):
            return self.text.lower() == str(value).lower()
        return str(value) == self.text

    def __repr__(self) -> str:
        return f"Condition({self.name}{self.op}{self.text})"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) or value.strip().lower() in (
            "inf", "-inf", "+inf") else None
    return None


def parse_since(since: Any, now: float | None = None) -> float:
    """``since`` as epoch seconds: a number, ``"2d"``/``"3h"``/``"30m"``/``"1w"``, or an ISO date.

    Raises:
        UsageError: text that is none of these.
    """
    if is_number(since):
        return float(since)
    text = str(since)
    match = _SINCE.match(text)
    if match:
        return (now if now is not None else time.time()) - float(match.group(1)) * _UNITS[
            match.group(2).lower()]
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise UsageError(f"cannot read --since {text[:40]!r}",
                         "give a duration like 2d, 3h, 30m, or a date like 2024-05-01") from None


def parse_sort(spec: str) -> tuple[str, bool]:
    """``-NAME`` -> ``("NAME", True)``.

    Raises:
        UsageError: an empty name or one holding control characters.
    """
    descending = spec.startswith("-")
    name = spec[1:] if descending else spec
    if not name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name) or name == "-":
        raise UsageError(f"cannot sort by {spec[:40]!r}",
                         "give a field (created, started, ended, status, id, duration), an "
                         "option or a metric, '-' prefixed for descending")
    return name, descending


# -- trials --------------------------------------------------------------------------------


class Trial:
    """One trial as the reading commands see it (see the module docstring)."""

    def __init__(self, journal: Journal, doc: dict[str, Any]) -> None:
        self._journal = journal
        self.doc = doc
        self.id: str = doc["id"]
        self.short_id = self.id[:7]
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

    def __repr__(self) -> str:
        return f"<Trial {self.short_id} {self.status}>"

    @property
    def program(self) -> list[str]:
        """The command before its arguments: ``["python", "train.py"]``, as normalized."""
        from kleio.argv import split_program

        command = list(self.doc.get("command") or self.command)
        return command[:split_program(command)[1]]

    # -- lazily read ------------------------------------------------------------------------

    @property
    def status(self) -> str:
        if self._status is None:
            from kleio.reservation import status_of

            self._status = status_of(self._journal.store, self.doc, host=self._journal.host,
                                     stale_after=self._journal.stale_after)
        return self._status

    def _times(self) -> tuple[float | None, float | None]:
        if self._timing is None:
            self._timing = execution_times(self._journal.store, self.doc, self.status)
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
            else:  # a branch inherits its ancestors' declarations, up to the cut
                own = from_events(e.data for e in self._journal.store.iter_lineage_events(
                    trial_id=self.id, kinds=("metrics",)))
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

        store = self._journal.store
        merged: dict[str, dict[str, Any]] = {}
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
        for event in self._journal.store.iter_lineage_events(trial_id=self.id,
                                                             kinds=("statistic",)):
            yield event.data

    def statistics(self) -> list[dict[str, Any]]:
        """Every statistic of the lineage, oldest first (what ``kleio cat --statistics`` shows)."""
        return list(self.iter_statistics())

    def artifacts(self) -> list[dict[str, Any]]:
        """The artifacts of the lineage, oldest first."""
        return [{"filename": e.data.get("filename"), "metadata": e.data.get("metadata") or {},
                 "sha256": e.data.get("sha256"), "size": e.data.get("size"), "time": e.time,
                 "trial": e.trial_id}
                for e in self._journal.store.iter_lineage_events(trial_id=self.id,
                                                                 kinds=("artifact",))]

    def artifact(self, filename: str | None = None, **metadata: Any) -> bytes | None:
        """The bytes of the newest artifact of the lineage matching ``filename`` and metadata."""
        found = self._journal.store.find_artifact(trial_id=self.id, filename=filename,
                                                  metadata=metadata)
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
            "metrics": {name: {"mode": m["mode"], "last": m["last"], "best": m["best"],
                               "best_step": m["best_step"], "step_key": m["step_key"]}
                        for name, m in self.metrics.items()},
            "primary_metric": self.primary,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "last_started_at": self.doc.get("started_at"),
            "ended_at": self.ended_at,
            "duration": self.duration,
            "exit_code": self.exit_code,
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


def execution_times(store: Store, doc: dict[str, Any], status: str,
                    now: float | None = None) -> tuple[float | None, float | None]:
    """``(first start, total seconds run)`` over every execution of a trial (not its parent's).

    An execution starts at its ``running`` status and ends at its final status (completed,
    broken, interrupted, suspended). One that has none: if a later execution exists, it ended
    with its last journalled event; if it is the last one, it is still running (up to now)
    or, when its runner is lost, ended at the trial's last heartbeat.
    """
    events = store.read_events(trial_id=doc["id"], kinds=("status",))
    starts: dict[int, float] = {}
    ends: dict[int, float] = {}
    for event in events:
        execution = execution_of(event.seq)
        state = event.data.get("status")
        if state == "running" and execution not in starts:
            starts[execution] = event.time
        elif state in _ENDED:
            ends[execution] = event.time
    if not starts:
        return None, None
    last = max(starts)
    total = 0.0
    for execution, start in starts.items():
        end = ends.get(execution)
        if end is None:
            if execution == last:
                if status == "lost":
                    end = float(doc.get("heartbeat_at") or start)
                elif status in ("running", "reserved"):
                    end = now if now is not None else time.time()
                else:
                    end = float(doc.get("ended_at") or doc.get("heartbeat_at") or start)
            else:
                tail = store.read_events(trial_id=doc["id"], after=first_seq(execution),
                                         upto=first_seq(execution + 1) - 1, limit=1,
                                         reverse=True)
                end = tail[0].time if tail else start
        total += max(0.0, float(end) - start)
    return min(starts.values()), total


# -- the journal ---------------------------------------------------------------------------


class Journal:
    """A read-only view of one journal; open with :func:`open_journal`.

    The connection opens on first use and again after :meth:`close`, so the trials it
    returned can still read their statistics later.
    """

    def __init__(self, uri: str | None = None, *, metrics: Sequence[str] = (),
                 cwd: str | None = None) -> None:
        from kleio.config import load_config

        config = load_config({"db": uri}, cwd=cwd)
        self.uri = config.db
        self.config = config
        from kleio.reservation import hostname

        self.host = hostname(config.hostname)
        self.stale_after = config.stale_after
        self.configured = from_config(config.metrics)
        try:
            self.reader = from_specs(metrics)
        except ValueError as error:
            raise UsageError(str(error), "write --metric NAME or NAME:min / NAME:max") from None
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            from kleio.storage import open_store, scheme_of, sqlite_path

            if scheme_of(self.uri) == "sqlite":
                import os

                path = sqlite_path(self.uri)
                if not os.path.exists(path):
                    from kleio.errors import NoJournal

                    raise NoJournal(
                        f"there is no journal at {path} yet",
                        "run a trial first (e.g. 'kleio python train.py'), or point --db or "
                        "KLEIO_DB at an existing journal")
            self._store = open_store(self.uri)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------

    def trial(self, trial_id: str) -> Trial:
        """The trial whose id starts with ``trial_id``.

        Raises:
            TrialNotFound, AmbiguousId: no trial, or several, match.
        """
        from kleio.trial import resolve_trial

        return Trial(self, resolve_trial(self.store, trial_id))

    def statistics(self, trial_id: str) -> list[dict[str, Any]]:
        """The statistics of a trial's lineage, oldest first."""
        return self.trial(trial_id).statistics()

    def prefetch(self, trials: Sequence[Trial]) -> None:
        """Read the stored summaries of these trials in one query (instead of one each)."""
        wanted = [t for t in trials if t._summary is None]
        if not wanted:
            return
        found = self.store.read_summaries(trial_ids=[t.id for t in wanted])
        for trial in wanted:
            trial._summary = found.get(trial.id) or {"entries": {}, "modes": {},
                                                     "primary": None, "last_stat_seq": None,
                                                     "runs_ok": False}

    def _prefetched(self, trials: Iterable[Trial], size: int = 200) -> Iterator[Trial]:
        chunk: list[Trial] = []
        for trial in trials:
            chunk.append(trial)
            if len(chunk) >= size:
                self.prefetch(chunk)
                yield from chunk
                chunk = []
        self.prefetch(chunk)
        yield from chunk

    def _ranked(self, name: str, descending: bool, pushed: dict[str, Any],
                page: int) -> Iterator[Trial]:
        """Every trial matching the pushed filters, by the best value of metric ``name``
        (missing last, ties newest first): the store ranks trials that are not branches by
        their summaries; branches (whose lineage decides) are ranked here and merged in."""
        import heapq

        mode = self.reader.modes.get(name)
        default = self.configured.mode(name)

        def stored() -> Iterator[tuple[tuple[float, float], Trial]]:
            offset, size = 0, page
            while True:
                rows = self.store.rank_trials(metric=name, mode=mode, default_mode=default,
                                              descending=descending, offset=offset,
                                              limit=size, **pushed)
                trials = [Trial(self, doc) for doc, _ in rows]
                self.prefetch(trials)
                for (_, best), trial in zip(rows, trials):
                    yield (_order(best, descending), -(trial.created_at or 0)), trial
                if len(rows) < size:
                    return
                offset, size = offset + size, min(size * 4, 20000)

        branches = [Trial(self, doc) for doc in self.store.find_trials(branches=True,
                                                                       **pushed)]
        placed = []
        for trial in branches:
            value = trial.value(name)
            if is_number(value) and value == value:
                placed.append(((_order(value, descending), -(trial.created_at or 0)), trial))
        placed.sort(key=lambda item: item[0])
        seen: set[str] = set()
        for _, trial in heapq.merge(stored(), placed, key=lambda item: item[0]):
            seen.add(trial.id)
            yield trial
        # Then the trials without a value, newest first.
        for trial in self._prefetched(Trial(self, doc) for doc in self.store.find_trials(
                sort="-created_at", **pushed)):
            if trial.id not in seen:
                yield trial

    def iter_trials(
        self,
        *,
        where: Iterable[str] = (),
        status: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        project: str | None = None,
        since: Any = None,
        ids: Sequence[str] | None = None,
        sort: str | None = None,
        limit: int | None = None,
    ) -> Iterator[Trial]:
        """Like :meth:`trials`, as a generator (unsorted listings stream)."""
        conditions = [Condition(spec) for spec in where]
        name, descending = parse_sort(sort or "-created")
        wanted = set(status or ())
        unknown = [s for s in wanted if s not in STATUSES and s != "lost"]
        if unknown:
            raise UsageError(f"unknown status {unknown[0]!r}",
                             f"use one of {', '.join(STATUSES)}, lost")
        statuses = None
        if wanted:  # a lost trial is held (running/reserved) in the database
            statuses = sorted({("running" if s == "lost" else s) for s in wanted}
                              | ({"reserved"} if "lost" in wanted else set()))
        threshold = parse_since(since) if since is not None else None
        in_store = name in STORE_SORTS
        store_sort = ("-" if descending else "") + STORE_SORTS.get(name, "created_at")
        # Conditions on fields the database holds are asked of it (as well as checked here).
        for condition in conditions:
            if condition.op == "=" and condition.name == "status" and not wanted \
                    and condition.text in STATUSES and condition.text not in (
                        "running", "reserved"):
                statuses = [condition.text]
            elif condition.op in (">", ">=") and condition.name == "created" \
                    and condition.number is not None:
                threshold = max(threshold or condition.number, condition.number)
            elif condition.op in ("=", "==") and condition.name in ("tag", "tags"):
                tags = [*(tags or ()), condition.text]
        # With every other filter answered by the database, the limit is too.
        # A held trial may show as lost: such a status filter is checked here, not there.
        pushed = in_store and not conditions and not ids \
            and not (wanted & {"lost", "running", "reserved"})
        filters: dict[str, Any] = {"statuses": statuses, "tags": tags, "since": threshold,
                                   "project": project or None}
        docs: Iterable[Any]
        ranked = not ids and ranked_sort(name)
        if ids:
            found: dict[str, dict[str, Any]] = {}
            for prefix in ids:
                for doc in self.store.find_trials(id_prefix=prefix.lower(), sort="id"):
                    found[doc["id"]] = doc
            docs = list(found.values())
        elif ranked:
            docs = self._ranked(name, descending, filters, max(64, (limit or 0) + 1))
        else:
            docs = self.store.find_trials(**filters, sort=store_sort,
                                          limit=limit if pushed else None)

        def candidates() -> Iterator[Trial]:
            for doc in docs:
                if isinstance(doc, Trial):
                    yield doc
                    continue
                if threshold is not None and (doc.get("created_at") or 0) < threshold:
                    continue
                if project and project not in str(doc.get("project") or ""):
                    continue
                if ids and tags and not set(tags) <= set(doc.get("tags") or ()):
                    continue
                yield Trial(self, doc)

        def selected() -> Iterator[Trial]:
            for trial in self._prefetched(candidates()):
                if wanted and trial.status not in wanted:
                    continue
                if all(c.matches(trial.value(c.name)) for c in conditions):
                    yield trial

        if ranked or (in_store and not ids):
            for index, trial in enumerate(selected()):
                if limit is not None and index >= limit:
                    return
                yield trial
            return
        chosen = list(selected())
        chosen = sort_trials(chosen, name, descending)
        yield from (chosen if limit is None else chosen[:limit])

    def best(self, metric: str | None = None, **filters: Any) -> Trial:
        """The best trial by ``metric`` among those matching ``filters`` (see :func:`best`).

        With a metric whose mode the reader, ``kleio.yaml`` or the name rule gives, the store
        ranks the trials and one is read; otherwise every candidate is compared here.
        """
        from kleio.metrics import parse_spec

        name = parse_spec(metric)[0] if metric else None
        if name is None:
            found = self._primaries(filters)
            if found is None:  # a condition only checked here: compare every candidate
                return best_of(self.trials(**filters), metric)
            if len(found) != 1:  # none (or no candidate) or several: best_of says which
                return best_of(self.trials(**{**filters, "limit": 1}) if not found else
                               self.trials(**filters), metric)
            name = found.pop()
        mode = None
        if name is not None:
            mode = self.reader.modes.get(name) or self.configured.mode(name)
        if mode is None:
            return best_of(self.trials(**filters), metric)
        filters.pop("sort", None)
        filters.pop("limit", None)
        top = self.trials(**filters, sort=("-" if mode == "max" else "") + str(name), limit=1)
        return best_of(top, metric)

    def _primaries(self, filters: dict[str, Any]) -> set[str] | None:
        """The primary metrics of the candidates (as :func:`best_of` collects them), from the
        summaries: the store's declared primaries, the branches' read here. None when that
        takes reading every candidate (a condition only checked here)."""
        if self.reader.primary:
            return {self.reader.primary}
        if filters.get("where") or filters.get("ids") or {"lost", "running", "reserved"} & set(
                filters.get("status") or ()):
            return None
        since = filters.get("since")
        pushed: dict[str, Any] = {
                  "statuses": list(filters["status"]) if filters.get("status") else None,
                  "tags": filters.get("tags"),
                  "since": parse_since(since) if since is not None else None,
                  "project": filters.get("project") or None}
        names, lacking = self.store.declared_primaries(**pushed)
        for doc in self.store.find_trials(branches=True, **pushed):
            primary = Trial(self, doc).declarations.primary
            if primary:
                names.add(primary)
            else:
                lacking = True
        if lacking and self.configured.primary:
            names.add(self.configured.primary)
        return names

    def trials(self, **filters: Any) -> list[Trial]:
        """The trials matching every filter, sorted and limited (see the module docstring)."""
        return list(self.iter_trials(**filters))

    def count(self, **filters: Any) -> int:
        """How many trials match (``limit`` ignored)."""
        filters.pop("limit", None)
        filters["sort"] = "-created"
        return sum(1 for _ in self.iter_trials(**filters))


def ranked_sort(name: str) -> bool:
    """Tell whether a sort on ``name`` is a metric's best, ranked by the store's summaries
    (not a field, not ``NAME.last`` and the like, which are sorted here)."""
    return name not in FIELDS and name not in STORE_SORTS and not name.endswith(
        (".last", ".best", ".best_step", ".count"))


def _order(value: float, descending: bool) -> float:
    return -value if descending else value


def sort_trials(trials: list[Trial], name: str, descending: bool) -> list[Trial]:
    """Sort by ``name`` (a field, option or metric's best); missing values last both ways.

    Numbers sort as numbers and before text; ties keep the newest first.
    """
    present: list[tuple[Any, Trial]] = []
    missing: list[Trial] = []
    for trial in trials:
        value = trial.value(name)
        number = _number(value) if not isinstance(value, (list, tuple)) else None
        if number is not None and number == number:
            present.append(((0, number, ""), trial))
        elif value is None or isinstance(value, float):
            missing.append(trial)
        else:
            present.append(((1, 0.0, str(value)), trial))
    present.sort(key=lambda item: -(item[1].created_at or 0))
    present.sort(key=lambda item: item[0], reverse=descending)
    return [trial for _, trial in present] + missing


def known(trials: Iterable[Trial], name: str) -> bool:
    """Tell whether ``name`` is a field, or an option or metric of one of ``trials``."""
    base = name.rpartition(".")[0] if name.endswith((".last", ".best", ".best_step",
                                                      ".count")) else name
    if name in FIELDS:
        return True
    return any(name in t.options or base in t.metrics for t in trials)


# -- groups --------------------------------------------------------------------------------


class Group:
    """Trials whose options are equal except some (seeds): one setting, several trials."""

    def __init__(self, options: dict[str, Any], trials: list[Trial]) -> None:
        self.options = options
        self.trials = trials

    @property
    def n(self) -> int:
        return len(self.trials)

    def values(self, name: str, which: str = "best") -> list[float]:
        """The numeric ``which`` (best, last) of metric ``name`` of each trial having it."""
        out = []
        for trial in self.trials:
            entry = trial.metrics.get(name)
            value = entry.get(which) if entry else None
            if is_number(value) and value == value:
                out.append(float(value))  # type: ignore[arg-type]
        return out

    def mean(self, name: str, which: str = "best") -> float | None:
        values = self.values(name, which)
        return sum(values) / len(values) if values else None

    def std(self, name: str, which: str = "best") -> float | None:
        values = self.values(name, which)
        if not values:
            return None
        if len(values) == 1:
            return 0.0
        mean = sum(values) / len(values)
        return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))

    def metric_names(self) -> list[str]:
        names: dict[str, None] = {}
        for trial in self.trials:
            names.update(dict.fromkeys(trial.metrics))
        return list(names)

    def to_json(self) -> dict[str, Any]:
        metrics = {}
        for name in self.metric_names():
            mode = next(t.metrics[name]["mode"] for t in self.trials if name in t.metrics)
            metrics[name] = {"mode": mode, "n": len(self.values(name)),
                             **{f"{which}_{stat}": getattr(self, stat)(name, which)
                                for which in ("best", "last") for stat in ("mean", "std")}}
        return {"options": self.options, "n": self.n, "ids": [t.id for t in self.trials],
                "metrics": metrics}


def groups(trials: Iterable[Trial], except_: Sequence[str] = ("seed",)) -> list[Group]:
    """Group trials of one project and program (``python train.py``) whose options and
    positional arguments are equal but for ``except_``.

    Groups come in the order of their first trial.
    """
    ignored = set(except_)
    found: dict[str, Group] = {}
    import json

    for trial in trials:
        shared = {k: v for k, v in trial.options.items() if k not in ignored}
        key = json.dumps([trial.project, getattr(trial, "program", []),
                          sorted(shared.items(), key=lambda kv: kv[0]), trial.positionals],
                         default=str)
        if key not in found:
            found[key] = Group(shared, [])
        found[key].trials.append(trial)
    return list(found.values())


# -- module-level shortcuts ----------------------------------------------------------------


def open_journal(uri: str | None = None, *, metrics: Sequence[str] = ()) -> Journal:
    """Open the journal at ``uri`` (default: the configured one) for reading."""
    return Journal(uri, metrics=metrics)


def trials(db: str | None = None, *, metrics: Sequence[str] = (), **filters: Any
           ) -> list[Trial]:
    """The trials of a journal matching ``filters`` (see the module docstring).

    Their lazily read values (metrics, statistics) are read now, so they stay usable after the
    journal is closed (later calls reopen it).
    """
    with Journal(db, metrics=metrics) as journal:
        found = journal.trials(**filters)
        for trial in found:
            trial.metrics  # noqa: B018 - read while connected
            trial.started_at  # noqa: B018
        return found


def trial(trial_id: str, db: str | None = None, *, metrics: Sequence[str] = ()) -> Trial:
    """The trial whose id starts with ``trial_id``."""
    with Journal(db, metrics=metrics) as journal:
        found = journal.trial(trial_id)
        found.metrics  # noqa: B018
        found.started_at  # noqa: B018
        return found


def statistics(trial_id: str, db: str | None = None) -> list[dict[str, Any]]:
    """The statistics of a trial's lineage, oldest first (rows as logged)."""
    with Journal(db) as journal:
        return journal.statistics(trial_id)


def best(db: str | None = None, *, metric: str | None = None, **filters: Any) -> Trial:
    """The trial with the best value of ``metric`` (``"NAME"`` or ``"NAME:MODE"``; default:
    the primary metric) among those matching ``filters``.

    Raises:
        UsageError: no metric given and no primary metric declared (or several).
        TrialNotFound: no trial matches the filters, or none has a value of the metric.
    """
    with Journal(db, metrics=[metric] if metric else ()) as journal:
        found = journal.best(metric, **filters)
        found.metrics  # noqa: B018 - read while connected
        return found


def best_of(candidates: list[Trial], metric: str | None) -> Trial:
    """The best of ``candidates`` by ``metric`` (see :func:`best`)."""
    from kleio.errors import TrialNotFound
    from kleio.metrics import parse_spec, rank_key

    if not candidates:
        raise TrialNotFound("no trial matches the filters", "list trials with 'kleio ls'")
    name = parse_spec(metric)[0] if metric else None
    if name is None:
        primaries = {t.primary for t in candidates if t.primary}
        if len(primaries) != 1:
            raise UsageError(
                "no metric to rank by: " + ("no trial declares a primary metric"
                                            if not primaries else
                                            f"trials declare different primary metrics "
                                            f"({', '.join(sorted(primaries))})"),
                "give one, e.g. --metric val_acc:max")
        name = primaries.pop()
    having = [t for t in candidates if name in t.metrics
              and t.metrics[name]["best"] is not None]
    if not having:
        raise TrialNotFound(f"no trial has the metric {name!r}",
                         "check its spelling with 'kleio cat --statistics ID', or declare its "
                         "mode with --metric NAME:min or NAME:max")
    return min(having, key=lambda t: rank_key(t.metrics[name]["best"],
                                                t.metrics[name]["mode"]))


# -- pandas ----------------------------------------------------------------------------------


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError("this needs pandas: pip install 'kleio[pandas]'") from None
    return pandas


def to_dataframe(trials: Iterable[Trial]) -> Any:
    """One row per trial: id, status, times, tags, one column per option, and ``NAME.best``
    / ``NAME.last`` per metric (a ``pandas.DataFrame``)."""
    pandas = _pandas()
    rows = []
    for item in trials:
        row: dict[str, Any] = {
            "id": item.id, "status": item.status, "created_at": item.created_at,
            "started_at": item.started_at, "ended_at": item.ended_at,
            "duration": item.duration, "tags": ",".join(item.tags), "parent": item.parent}
        for key, value in item.options.items():
            row[key] = _option_value(value)
        for name, entry in item.metrics.items():
            row[f"{name}.best"] = entry["best"]
            row[f"{name}.last"] = entry["last"]
        rows.append(row)
    return pandas.DataFrame(rows)


def _option_value(value: Any) -> Any:
    number = _number(value)
    if number is not None and isinstance(value, str):
        return int(number) if number.is_integer() and "." not in value and "e" not in \
            value.lower() else number
    return value


def statistics_dataframe(trials: Iterable[Trial]) -> Any:
    """One row per statistic (long format): ``trial``, ``index``, then the logged keys."""
    pandas = _pandas()
    rows = []
    for item in trials:
        for index, stat in enumerate(item.iter_statistics()):
            rows.append({"trial": item.id, "index": index, **stat})
    return pandas.DataFrame(rows)


__all__ = [
    "Condition",
    "Group",
    "Journal",
    "Trial",
    "best",
    "best_of",
    "execution_times",
    "groups",
    "open_journal",
    "parse_since",
    "statistics",
    "statistics_dataframe",
    "to_dataframe",
    "trial",
    "trials",
]
