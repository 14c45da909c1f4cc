"""kleio.checks.engine.replay: checks over a journal, execution by execution."""

from __future__ import annotations

import math

from kleio.checks import Context, registry
from kleio.checks.engine import Engine, replay
from kleio.storage.base import Event, first_seq


class _Journal:
    """What replay reads of a store: one trial's events, in order."""

    def __init__(self, events):
        self.events = events

    def read_events(self, *, trial_id, kinds, after, limit):
        chosen = [e for e in self.events if e.kind in kinds and (after is None or e.seq > after)]
        return chosen[:limit]


def _engine():
    problems: list[str] = []
    context = Context(None)
    engine = Engine(registry.build({}, context, problems), context)
    assert problems == []
    return engine


def test_an_execution_that_took_a_dead_runners_trial_over_is_checked_to_its_end():
    """Its first event is the 'failover' status (how the previous execution ended): the
    execution goes on after it, and its statistics are checked."""
    trial = "t" * 64
    one, two = first_seq(1), first_seq(2)
    events = [
        Event(trial, one, "status", 1.0, {"status": "reserved"}),
        Event(trial, one + 1, "status", 1.1, {"status": "running"}),
        Event(trial, one + 2, "statistic", 1.2, {"step": 1, "loss": 1.0}),
        # the runner was SIGKILLed; another takes the trial over
        Event(trial, two, "status", 9.0, {"status": "failover", "runner": {}, "by": {}}),
        Event(trial, two + 1, "status", 9.1, {"status": "reserved"}),
        Event(trial, two + 2, "status", 9.2, {"status": "running"}),
        Event(trial, two + 3, "statistic", 9.3, {"step": 2, "loss": math.nan}),
        Event(trial, two + 4, "status", 9.4, {"status": "completed", "exit_code": 0}),
    ]
    executions = replay(_Journal(events), trial, make_engine=_engine)
    assert [(e.number, e.status) for e in executions] == [(1, None), (2, "completed")]
    assert [f.name for f in executions[1].findings] == ["nan"]
    assert executions[1].statistics == 1
