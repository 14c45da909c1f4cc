"""The runner's monitor with a stand-in writer: budget, sampling, journalling, stop_on."""

from __future__ import annotations

import json
import time

from kleio.checks import Check, Context, live, registry
from kleio.checks.engine import Engine


class Writer:
    """What the monitor uses of kleio.writer.Writer."""

    trial_id = "t" * 64

    def __init__(self) -> None:
        self.pending: list[tuple[int, str, float, str]] = []
        self.next_seq = 1000
        self.problems: dict[str, int] = {}
        self.stop_request = None
        self.child_pid = 12345
        self.terminated = 0
        self.fields: list[dict] = []
        self.store = self

    def problem(self, key, message, count=1):
        self.problems[key] = self.problems.get(key, 0) + count

    def _terminate(self):
        self.terminated += 1

    def _fields(self, fields):
        self.fields.append(fields)

    def get_trial(self, trial_id):
        return {"checks": {"warning": 2}}


class Counting(Check):
    name = "counting"

    def __init__(self, context, options):
        super().__init__(context, options)
        self.seen = []

    def statistic(self, stat):
        self.seen.append(stat.position)


def monitor(stop_on=(), extra=()):
    context = Context()
    problems: list[str] = []
    checks = [*extra, *registry.build({}, context, problems)]
    writer = Writer()
    return live.Monitor(Engine(checks, context), writer, tuple(stop_on), writer.trial_id), writer


def stats(start, count, nan_at=None):
    return [
        json.dumps({"step": i, "loss": float("nan") if i == nan_at else 1.0 / (i + 1)})
        for i in range(start, start + count)
    ]


def test_every_statistic_is_checked_within_the_budget():
    counting = Counting(Context(), {})
    mon, writer = monitor(extra=[counting])
    mon.events("statistic", 1, 0.0, stats(0, 100))
    assert counting.seen == list(range(100))
    assert writer.pending == []


def test_beyond_the_budget_a_sample_is_checked_but_every_nan_is_found(monkeypatch):
    counting = Counting(Context(), {})
    mon, writer = monitor(extra=[counting])
    monkeypatch.setattr(live, "ALLOWANCE", 0.0)
    monkeypatch.setattr(live, "BUDGET", 0.0)
    batch = stats(0, 50_000, nan_at=31_337)
    mon.events("statistic", 1, 5.0, batch)
    assert 31_337 in counting.seen and 49_999 in counting.seen
    assert len(counting.seen) == 2  # the flagged statistic and the batch's last one
    (event,) = writer.pending
    seq, kind, when, data = event
    assert (seq, kind, when) == (1000, "check", 5.0)
    assert json.loads(data) == {
        "name": "nan",
        "severity": "error",
        "key": "loss",
        "message": "loss is NaN at step=31337",
        "trigger": 31_338,
    }
    assert writer.next_seq == 1001
    # The trial's cached counts add this run's findings to the earlier executions' ones.
    assert writer.fields == [{"checks": {"warning": 2, "error": 1}}]


def test_ledger_records_and_the_string_nan_is_no_finding():
    mon, writer = monitor()
    events = [
        (7, "statistic", 1.0, json.dumps({"note": "NaN", "x": 1})),
        (8, "artifact", 1.0, "{}"),
        (9, "statistic", 1.0, json.dumps({"x": float("inf")})),
    ]
    mon.records(events)
    assert [json.loads(e[3])["message"] for e in writer.pending] == ["x is +inf at statistic #2"]
    assert json.loads(writer.pending[0][3])["trigger"] == 9


def test_stop_on_asks_the_writer_to_stop_the_program_once():
    mon, writer = monitor(stop_on=["nan"])
    mon.events("statistic", 1, 0.0, stats(0, 10, nan_at=5))
    mon.events("statistic", 11, 0.0, [json.dumps({"acc": float("nan")})])
    assert writer.terminated == 1
    assert writer.stop_request["check"] == "nan"
    assert [json.loads(e[3]).get("action") for e in writer.pending] == ["stop", None]


def test_lines_and_end():
    mon, writer = monitor()
    line = json.dumps({"line": "OSError: connection refused"})
    mon.events("stderr", 50, time.time(), [line] * 12)
    mon.end("completed")
    mon.end("completed")  # once only
    (event,) = writer.pending
    assert json.loads(event[3])["name"] == "repeated_error"
    assert json.loads(event[3])["trigger"] == 59


def test_a_monitor_bug_never_reaches_the_writer():
    mon, writer = monitor()
    mon.engine = None  # type: ignore[assignment]
    mon.events("statistic", 1, 0.0, stats(0, 3))
    mon.tick(1.0)
    assert writer.problems == {"check_failed_monitor": 2}


def test_attach_without_any_check_gives_no_monitor():
    from kleio.config import load_config

    config = load_config()
    config = config.replace(checks={name: False for name in registry.available()})
    assert live.attach(Writer(), config, "t" * 64) is None
    config = config.replace(checks={})
    assert isinstance(live.attach(Writer(), config, "t" * 64), live.Monitor)
