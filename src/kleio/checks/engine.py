"""Run checks: hand them what a run produced, collect their findings, survive their bugs.

:class:`Engine` is used live by the runner (:mod:`kleio.checks.live`) and by
:func:`replay`, which runs the checks over a trial's journal (``kleio check``). Either way a
check that raises is disabled for the rest of that execution, once reported, and counted;
the others go on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Callable

from kleio.checks import Check, Context, Finding, Line, Statistic

#: Findings one execution keeps; more are counted in :attr:`Engine.dropped`, not kept.
MAX_FINDINGS = 200


def _overrides(check: Check, hook: str) -> bool:
    return getattr(type(check), hook) is not getattr(Check, hook)


class Engine:
    """The checks of one execution.

    Args:
        checks: the check instances (see :func:`kleio.checks.registry.build`).
        context: the :class:`Context` they were built with (declarations update it).
        on_failure: called with ``(check name, exception)`` when a check raises.
    """

    def __init__(
        self,
        checks: Iterable[Check],
        context: Context,
        on_failure: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.checks = list(checks)
        self.context = context
        self.on_failure = on_failure
        self.failed: dict[str, str] = {}
        self.told: set[tuple[str, str | None]] = set()
        self.dropped = 0
        self.kept = 0
        # Only the checks that override a hook are called for it: most see no output lines.
        self.hooks: dict[str, list[tuple[Check, Callable[[Any], Any]]]] = {
            hook: [(c, getattr(c, hook)) for c in self.checks if _overrides(c, hook)]
            for hook in ("statistic", "line", "tick", "end")
        }

    def statistic(self, stat: Statistic) -> list[Finding]:
        return self._call("statistic", stat)

    def line(self, line: Line) -> list[Finding]:
        return self._call("line", line)

    def tick(self, now: float) -> list[Finding]:
        return self._call("tick", now)

    def end(self, status: str | None) -> list[Finding]:
        return self._call("end", status)

    @property
    def wants_lines(self) -> bool:
        return bool(self.hooks["line"])

    def _call(self, hook: str, item: Any) -> list[Finding]:
        found: list[Finding] = []
        for check, method in self.hooks[hook]:
            try:
                result = method(item)
                if result:
                    for finding in result:
                        if not isinstance(finding, Finding):
                            raise TypeError(
                                f"{hook}() returned {type(finding).__name__}, not a Finding"
                            )
                        self._keep(finding, found)
            except Exception as error:
                self._disable(check, error)
        return found

    def _keep(self, finding: Finding, found: list[Finding]) -> None:
        told = (finding.name, finding.key)
        if told in self.told:
            return
        self.told.add(told)
        if self.kept >= MAX_FINDINGS:
            self.dropped += 1
            return
        self.kept += 1
        found.append(finding)

    def _disable(self, check: Check, error: BaseException) -> None:
        name = check.name
        self.failed[name] = f"{type(error).__name__}: {error}"
        for hook, methods in self.hooks.items():
            self.hooks[hook] = [(c, m) for c, m in methods if c is not check]
        if self.on_failure is not None:
            self.on_failure(name, error)


# -- over a journal ---------------------------------------------------------------------------

#: Statuses that end an execution. Not 'failover': it is the first event of the execution
#: that takes a dead runner's trial over (it tells how the previous one ended), and that
#: execution goes on after it.
FINAL = ("completed", "broken", "interrupted", "suspended")


def own_events(
    store: Any, trial_id: str, kinds: tuple[str, ...], batch: int = 5000
) -> Iterator[Any]:
    """The trial's own events (not its ancestors'), in order, read in batches."""
    after: int | None = None
    while True:
        events = store.read_events(trial_id=trial_id, kinds=kinds, after=after, limit=batch)
        yield from events
        if len(events) < batch:
            return
        after = events[-1].seq


def declarations_of(store: Any, trial_id: str, config_metrics: Any = None) -> Any:
    """The metric declarations of a trial's lineage over ``metrics:`` of ``kleio.yaml``."""
    from kleio import metrics

    declared = metrics.from_events(
        e.data for e in store.iter_lineage_events(trial_id=trial_id, kinds=("metrics",))
    )
    return declared.over(metrics.from_config(config_metrics))


class Execution:
    """The findings of one execution of a trial, replayed from the journal."""

    def __init__(self, number: int, engine: Engine) -> None:
        self.number = number
        self.engine: Engine | None = engine
        self.findings: list[Finding] = []
        self.status: str | None = None
        self.statistics = 0
        self.failed: dict[str, str] = {}
        self.dropped = 0

    def finish(self, status: str | None) -> None:
        """The end of the execution (``status`` None: it has no final status)."""
        engine = self.engine
        if engine is None:
            return
        self.findings.extend(engine.end(status))
        self.status = status
        self.failed = dict(engine.failed)
        self.dropped = engine.dropped
        self.engine = None


def replay(store: Any, trial_id: str, *, make_engine: Callable[[], Engine]) -> list[Execution]:
    """Run checks over every execution of a trial, as the runner would have live.

    Ticks are given at the time of each event, so a silence shows as the gap between two
    events. A new engine starts at each execution (a resume starts from its checkpoint); an
    execution without a final status (its runner died) ends at its last event.
    """
    from kleio import metrics
    from kleio.storage.base import execution_of

    executions: list[Execution] = []
    current: Execution | None = None
    kinds = ("status", "statistic", "stdout", "stderr", "metrics")
    for event in own_events(store, trial_id, kinds):
        number = execution_of(event.seq)
        if number == 0:
            continue  # the 'new' status written at the trial's creation
        if current is None or number != current.number:
            if current is not None:
                current.finish(None)
            current = Execution(number, make_engine())
            executions.append(current)
        engine = current.engine
        if engine is None:
            continue  # after the final status of its execution
        found = current.findings
        kind = event.kind
        found.extend(engine.tick(event.time))
        if kind == "statistic":
            found.extend(
                engine.statistic(Statistic(event.seq, event.time, event.data, current.statistics))
            )
            current.statistics += 1
        elif kind in ("stdout", "stderr"):
            text = event.data.get("line")
            if isinstance(text, str):
                found.extend(engine.line(Line(event.seq, event.time, kind, text)))
        elif kind == "metrics":
            engine.context.declare(metrics.from_events([event.data]))
        elif kind == "status" and event.data.get("status") in FINAL:
            current.finish(str(event.data["status"]))
    if current is not None:
        current.finish(None)
    return executions
