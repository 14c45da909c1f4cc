"""Checks in the runner: the one object the writer thread hands what it journals.

The writer calls :class:`Monitor` from its own thread, right after it has numbered a batch
of events: :meth:`Monitor.events` (output lines and statistics sent over the socket),
:meth:`Monitor.records` (statistics read from the ledger), :meth:`Monitor.tick` (each
heartbeat) and :meth:`Monitor.end` (just before the final status). Findings are journalled
as ``check`` events in the same thread, told once on stderr, and acted upon (``stop_on``).

Cost. The program never waits for checks: the ledger and the socket are read by another
thread. But the runner shares the machine's CPUs with the program, so checks must stay a small
share of the runner's own work, whatever the rate: they may spend :data:`BUDGET` of the writer
thread's CPU time (after a free :data:`ALLOWANCE`, a few thousand statistics). Small batches
(a program logging a few hundred statistics a second: at most :data:`SMALL` per read) are
checked whole; of a larger one, its last statistic and an even sample of the rest as the
budget allows. Non-finite values are looked for in every statistic whatever the rate (one
substring search over the batch's joined text), and a statistic holding one is always checked.
"""

from __future__ import annotations

import json
import sys
import time
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from kleio.checks import Context, Finding, Line, Statistic
from kleio.checks.engine import MAX_FINDINGS, Engine
from kleio.client.stderr import one_line
from kleio.trial import short_id

if TYPE_CHECKING:
    from kleio.config import Config

#: Fraction of the writer thread's CPU time the checks may spend (1 %).
BUDGET = 0.01
#: CPU seconds of checking allowed before the budget applies (a few thousand statistics:
#: short programs and the start of long ones have every statistic checked).
ALLOWANCE = 0.05
#: A batch of at most this many statistics is checked whole, whatever the budget.
SMALL = 8
_KIND, _DATA = itemgetter(1), itemgetter(3)
#: Time is the thread's CPU time: a loaded machine that preempts the thread must not make
#: checks look expensive, nor a slow wall clock give them more room.
_cpu = getattr(time, "thread_time", time.process_time)


def _flagged(events: Any, joined: str) -> set[int]:
    """Indexes of the events whose text may hold a non-finite value.

    Two one-character searches first (``NaN``, ``Infinity``): statistics rarely hold an
    upper-case N or I, and a single character is searched at memory speed.
    """
    if not (("N" in joined and "NaN" in joined) or ("I" in joined and "Infinity" in joined)):
        return set()
    return {i for i in range(len(events)) if "NaN" in events[i][3] or "Infinity" in events[i][3]}


class _Numbered:
    """A batch of one kind as events, ``(seq + i, "statistic", when, datas[i])``, made only
    for the few indexes looked at."""

    __slots__ = ("seq", "when", "datas")

    def __init__(self, seq: int, when: float, datas: list[str]) -> None:
        self.seq, self.when, self.datas = seq, when, datas

    def __len__(self) -> int:
        return len(self.datas)

    def __getitem__(self, index: int) -> tuple[int, str, float, str]:
        return (self.seq + index, "statistic", self.when, self.datas[index])


def _sample(count: int, take: int) -> list[int]:
    """``take`` indexes spread evenly over ``range(count)``, the last one always included."""
    if take >= count:
        return list(range(count))
    if take <= 0:
        return []
    if take == 1:
        return [count - 1]
    step = (count - 1) / (take - 1)
    return sorted({round(i * step) for i in range(take)})


class Monitor:
    """Feed a run's events to its checks without slowing the journal (see module docstring).

    Args:
        engine: the checks of this execution.
        writer: the :class:`kleio.writer.Writer` (journal, problems, stop).
        stop_on: names of checks whose findings stop the program like ``kleio stop``.
        trial_id: the trial (for the hint that says how to resume it).
    """

    def __init__(
        self, engine: Engine, writer: Any, stop_on: tuple[str, ...] = (), trial_id: str = ""
    ) -> None:
        self.engine = engine
        self.writer = writer
        self.stop_on = frozenset(stop_on)
        self.trial_id = trial_id
        self.statistics = 0
        self.started = _cpu()
        self.spent = 0.0
        self.cost = 20e-6  # seconds per statistic checked, measured as it goes
        self.lines_wanted = engine.wants_lines
        self.ended = False
        self.counts: dict[str, int] | None = None  # findings by severity, all executions
        engine.on_failure = self._failed

    # -- called by the writer thread ------------------------------------------------------

    def events(self, kind: str, seq: int, when: float, datas: list[str]) -> None:
        """A numbered batch of one kind: ``datas[i]`` is event ``seq + i``."""
        try:
            if kind == "statistic":
                batch = (
                    [(seq + i, kind, when, data) for i, data in enumerate(datas)]
                    if len(datas) <= SMALL
                    else _Numbered(seq, when, datas)
                )
                self._statistics(batch, "\n".join(datas))
            elif kind in ("stdout", "stderr"):
                self._lines(kind, seq, when, datas)
            elif kind == "metrics":
                self._declare(datas)
        except Exception as error:  # a bug here must never reach the writer
            self._failed("(monitor)", error)

    def records(self, events: list[tuple[int, str, float, str]]) -> None:
        """The events the writer made of a ledger chunk (statistics and artifacts).

        Per event only C-level work is done (``map``, ``join``, a substring search): the
        chunk may hold tens of thousands of statistics.
        """
        try:
            kinds = set(map(_KIND, events))
            if kinds != {"statistic"}:  # artifacts or declarations among them (rare)
                if "metrics" in kinds:
                    self._declare([e[3] for e in events if e[1] == "metrics"])
                events = [e for e in events if e[1] == "statistic"]
                if not events:
                    return
            self._statistics(events, "\n".join(map(_DATA, events)))
        except Exception as error:
            self._failed("(monitor)", error)

    def tick(self, now: float) -> None:
        try:
            self._handle(self.engine.tick(now), now)
        except Exception as error:
            self._failed("(monitor)", error)

    def end(self, status: str | None) -> None:
        if self.ended:
            return
        self.ended = True
        try:
            now = time.time()
            self._handle(self.engine.tick(now) + self.engine.end(status), now)
            if self.engine.dropped:
                self.writer.problem(
                    "check_findings_dropped",
                    f"checks found more than "
                    f"{MAX_FINDINGS} things; the rest are counted, not "
                    "journalled",
                    self.engine.dropped,
                )
        except Exception as error:
            self._failed("(monitor)", error)

    # -- inside -----------------------------------------------------------------------------

    def _statistics(self, events: Any, joined: str) -> None:
        """Check a batch of statistic events (``(seq, kind, time, data)``); ``joined``: their
        texts, joined."""
        start = _cpu()
        count = len(events)
        first = self.statistics
        self.statistics += count
        flagged = _flagged(events, joined)
        if count <= SMALL:
            take = count
        else:
            allowed = BUDGET * (start - self.started) + ALLOWANCE - self.spent
            take = max(1, int(allowed / self.cost)) if allowed > 0 else 1
        chosen = sorted(set(_sample(count, take)) | flagged)
        engine = self.engine
        found: list[Finding] = []
        loads = json.loads
        checked = 0
        for index in chosen:
            seq, _, when, text = events[index]
            try:
                values = loads(text)
            except (ValueError, RecursionError):
                continue
            if isinstance(values, dict):
                checked += 1
                found.extend(engine.statistic(Statistic(seq, when, values, first + index)))
        if found:
            self._handle(found, events[0][2])
        spent = _cpu() - start
        self.spent += spent
        if checked:
            self.cost = 0.8 * self.cost + 0.2 * (spent / checked)

    def _lines(self, kind: str, seq: int, when: float, datas: list[str]) -> None:
        if not self.lines_wanted:
            return
        start = _cpu()
        allowed = BUDGET * (start - self.started) + ALLOWANCE - self.spent
        chosen: list[int]
        if len(datas) <= SMALL or allowed > 0:
            chosen = list(range(len(datas)))
        else:  # behind: the last line (the program is alive) and the error lines
            from kleio.checks.builtin import ERROR_LINE

            chosen = [i for i, d in enumerate(datas) if ERROR_LINE.search(d)] + [len(datas) - 1]
        found: list[Finding] = []
        engine = self.engine
        for index in sorted(set(chosen)):
            try:
                text = json.loads(datas[index]).get("line")
            except (ValueError, AttributeError, RecursionError):
                continue
            if isinstance(text, str):
                found.extend(engine.line(Line(seq + index, when, kind, text)))
        if found:
            self._handle(found, when)
        self.spent += _cpu() - start

    def _declare(self, datas: list[str]) -> None:
        from kleio import metrics

        decoded = []
        for data in datas:
            try:
                decoded.append(json.loads(data))
            except (ValueError, RecursionError):
                continue
        self.engine.context.declare(metrics.from_events(decoded))

    def _handle(self, findings: list[Finding], when: float) -> None:
        from kleio.storage.base import encode

        writer = self.writer
        for finding in findings:
            data = finding.to_json()
            stop = (
                finding.name in self.stop_on
                and writer.stop_request is None
                and writer.child_pid is not None
                and not self.ended
            )
            if stop:
                data["action"] = "stop"
            writer.pending.append((writer.next_seq, "check", when, encode(data)))
            writer.next_seq += 1
            self._count(finding.severity)
            line = f"kleio: {finding.severity}: {one_line(finding.message)} [check {finding.name}]"
            if stop:
                short = short_id(self.trial_id) or "ID"
                line += (
                    f"; stopping the program (stop_on: {finding.name}); resume it with "
                    f"'kleio run {short}'"
                )
            _tell(line)
            if stop:
                writer.stop_request = {
                    "at": time.time(),
                    "check": finding.name,
                    "message": finding.message,
                }
                writer._terminate()

    def _count(self, severity: str) -> None:
        """Keep the trial's ``checks`` field (what ``kleio ls`` marks) up to date."""
        writer = self.writer
        if self.counts is None:
            self.counts = {}
            try:  # the findings of the trial's earlier executions count too
                doc = (
                    writer.store.get_trial(trial_id=writer.trial_id)
                    if getattr(writer, "store_ok", True)
                    else None
                ) or {}
                earlier = doc.get("checks")
                if isinstance(earlier, dict):
                    self.counts = {str(k): int(v) for k, v in earlier.items() if isinstance(v, int)}
            except Exception:
                pass  # the journal is down: the spool keeps the counts of this run
        self.counts[severity] = self.counts.get(severity, 0) + 1
        writer._fields({"checks": dict(self.counts)})

    def _failed(self, name: str, error: BaseException) -> None:
        self.writer.problem(
            f"check_failed_{name.strip('()')}",
            f"check {name} raised {type(error).__name__}: {error}; it is disabled for this run",
        )


def _tell(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def attach(writer: Any, config: Config, trial_id: str) -> Monitor | None:
    """Make the monitor of one execution from the configuration; None when no check is on.

    Problems with the settings or with a check are told (``kleio: warning:``) and the other
    checks run.
    """
    from kleio.checks import registry

    problems: list[str] = []
    declarations = None
    metrics_setting = config.metrics
    if metrics_setting:
        from kleio import metrics

        declarations = metrics.from_config(metrics_setting)
    context = Context(declarations)
    checks = registry.build(config.checks, context, problems)
    stop_on = tuple(config.stop_on)
    if stop_on:
        for name in registry.unknown_stop_on(stop_on):
            problems.append(f"setting 'stop_on' names no installed check {name!r}")
    for problem in problems:
        _tell(f"kleio: warning: {problem}; checks go on without it")
    if not checks:
        return None
    return Monitor(Engine(checks, context), writer, stop_on, trial_id)
