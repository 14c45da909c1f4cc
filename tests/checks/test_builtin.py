"""The built-in checks, the engine and the registry, without a runner."""

from __future__ import annotations

import configparser
import math
import pathlib

import pytest

from kleio.checks import Check, Context, Finding, Line, Statistic, registry
from kleio.checks.builtin import BUILTIN
from kleio.checks.engine import Engine
from kleio.metrics import Declarations

ROOT = pathlib.Path(__file__).resolve().parents[2]


def engine(settings=None, declarations=None):
    problems: list[str] = []
    context = Context(declarations)
    checks = registry.build(settings or {}, context, problems)
    assert problems == []
    return Engine(checks, context)


def feed(eng, stats, start=100.0):
    """Feed statistics (dicts) one second apart; return every finding."""
    found = []
    for i, values in enumerate(stats):
        found += eng.tick(start + i)
        found += eng.statistic(Statistic(1000 + i, start + i, values, i))
    return found


def names(found):
    return [f.name for f in found]


def test_builtin_checks_are_registered_in_setup_cfg_as_entry_points():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    declared = {}
    for line in parser["options.entry_points"]["kleio.checks"].strip().splitlines():
        name, _, spec = line.partition("=")
        declared[name.strip()] = spec.strip()
    assert declared == BUILTIN
    assert list(registry.available())[: len(BUILTIN)] == list(BUILTIN)


def test_nan_and_infinities_are_told_once_per_key_with_the_step():
    found = feed(
        engine(),
        [
            {"step": 1, "loss": 0.5},
            {"step": 5, "loss": math.nan},
            {"step": 6, "loss": math.nan, "acc": math.inf},
            {"step": 7, "acc": -math.inf},
        ],
    )
    nan = [f for f in found if f.name == "nan"]
    assert [(f.key, f.message, f.seq, f.severity) for f in nan] == [
        ("loss", "loss is NaN at step=5", 1001, "error"),
        ("acc", "acc is +inf at step=6", 1002, "error"),
    ]


def test_divergence_of_a_min_metric_after_warmup():
    stats = [{"step": i, "loss": 1.0 / (i + 1)} for i in range(10)]  # best 0.1
    stats += [{"step": 10, "loss": 0.9}, {"step": 11, "loss": 1.5}]
    found = [f for f in feed(engine(), stats) if f.name == "diverged"]
    assert len(found) == 1 and found[0].key == "loss" and found[0].seq == 1011
    assert "15 times its best 0.1" in found[0].message
    # A max metric that grows, or an undeclared name, never diverges.
    assert not [
        f
        for f in feed(engine(), [{"acc": 0.01 * 2**i, "lr": 2.0**i} for i in range(12)])
        if f.name == "diverged"
    ]


def test_divergence_factor_comes_from_the_settings():
    stats = [{"loss": 1.0}] * 6 + [{"loss": 3.0}]
    assert "diverged" not in names(feed(engine(), stats))
    assert "diverged" in names(feed(engine({"diverged": {"factor": 2}}), stats))


def test_plateau_of_the_first_validation_metric_when_none_is_declared():
    stats = [
        {"epoch": i, "train_loss": 1.0 / (i + 1), "val_acc": min(0.5 + i / 100, 0.6)}
        for i in range(40)
    ]
    found = [f for f in feed(engine(), stats) if f.name == "plateau"]
    assert len(found) == 1 and found[0].key == "val_acc"
    assert found[0].message.startswith(
        "val_acc has not improved for 20 values (best 0.6 at epoch=10"
    )


def test_plateau_follows_the_declared_primary_metric():
    stats = [{"epoch": i, "val_acc": 0.5, "train_loss": 1.0} for i in range(30)]
    declared = Declarations({}, primary="train_loss")
    found = [
        f
        for f in feed(engine({"plateau": {"patience": 5}}, declared), stats)
        if f.name == "plateau"
    ]
    assert [f.key for f in found] == ["train_loss"]


def test_overfitting_when_validation_worsens_while_training_improves():
    stats = []
    for epoch in range(15):
        train = 1.0 - 0.06 * epoch
        val = 1.0 - 0.05 * epoch if epoch <= 5 else 0.75 + 0.03 * (epoch - 5)
        stats.append({"epoch": epoch, "loss": train, "val_loss": val})
    found = [f for f in feed(engine(), stats) if f.name == "overfitting"]
    assert len(found) == 1 and found[0].key == "val_loss"
    assert "(overfitting)" in found[0].message
    # Both getting worse together is no overfitting.
    both = [{"loss": 1 + i / 10, "val_loss": 1 + i / 10} for i in range(15)]
    assert "overfitting" not in names(feed(engine(), both))


def test_a_validation_metric_at_its_best_again_or_a_tiny_gap_is_no_overfitting():
    # val_acc stays at its best 0.96 (ties) while training accuracy creeps up.
    ties = [
        {"epoch": e, "acc": 0.95 + 0.001 * e, "val_acc": min(0.96, 0.9 + 0.02 * e)}
        for e in range(20)
    ]
    assert "overfitting" not in names(feed(engine(), ties))
    # Validation as good as training at its best (gap <= 0): a gap of 0.001 is not "wide".
    tiny = [
        {"epoch": e, "loss": 0.5 - 0.0001 * e, "val_loss": 0.5 if e == 0 else 0.5005}
        for e in range(20)
    ]
    assert "overfitting" not in names(feed(engine(), tiny))


def test_step_going_backwards():
    stats = [{"step": s, "epoch": 0} for s in (0, 1, 2, 2, 1, 0)]
    found = [f for f in feed(engine(), stats) if f.name == "step_backwards"]
    assert [(f.key, f.seq) for f in found] == [("step", 1004)]
    assert "from 2 to 1" in found[0].message


def test_silent_trial_is_told_once_per_silence():
    eng = engine({"silent": {"after": 60}})
    assert eng.tick(0.0) == []
    assert eng.line(Line(1, 10.0, "stdout", "epoch 1")) == []
    assert eng.tick(69.0) == []
    first = eng.tick(70.5)
    assert names(first) == ["silent"] and first[0].message.startswith(
        "no output and no statistic for 60 s"
    )
    assert eng.tick(200.0) == []  # told once
    eng.statistic(Statistic(2, 300.0, {"loss": 1.0}, 0))
    assert names(eng.tick(400.0)) == ["silent"]  # a new silence


def test_repeated_error_lines_digits_aside():
    eng = engine({"repeated_error": {"count": 3}})
    found = []
    for attempt in range(5):
        found += eng.line(
            Line(attempt, 0.0, "stderr", f"ConnectionError: refused (attempt {attempt})")
        )
        found += eng.line(Line(attempt, 0.0, "stdout", "epoch done"))
    assert [(f.name, f.seq) for f in found] == [("repeated_error", 2)]
    assert "3 times on stderr" in found[0].message


def test_a_check_turned_off_does_not_run():
    eng = engine({"nan": False})
    assert "nan" not in [c.name for c in eng.checks]


def test_settings_naming_no_check_or_no_threshold_are_problems():
    problems: list[str] = []
    registry.build({"nope": {}, "silent": {"afterr": 3, "after": -1}}, Context(), problems)
    assert problems == [
        "setting 'checks' names no installed check 'nope' (installed: nan, diverged, "
        "plateau, overfitting, step_backwards, silent, repeated_error)",
        "check 'silent' has no threshold 'afterr' (its thresholds: after)",
        "threshold silent.after must be a finite number, 0 or more, not -1",
    ]


class Exploding(Check):
    name = "exploding"

    def statistic(self, stat):
        raise ZeroDivisionError("boom")


class Wrong(Check):
    name = "wrong"

    def statistic(self, stat):
        return ["not a finding"]


def test_a_check_that_raises_is_disabled_and_reported_the_others_go_on():
    failures = []
    context = Context()
    problems: list[str] = []
    checks = [Exploding(context, {}), Wrong(context, {}), *registry.build({}, context, problems)]
    eng = Engine(checks, context, on_failure=lambda name, error: failures.append(name))
    found = feed(eng, [{"loss": math.nan}, {"loss": math.nan}, {"acc": math.nan}])
    assert names(found) == ["nan", "nan"]
    assert failures == ["exploding", "wrong"]
    assert set(eng.failed) == {"exploding", "wrong"}
    assert eng.failed["exploding"] == "ZeroDivisionError: boom"


def test_finding_json_shape():
    finding = Finding("nan", "error", "loss is NaN at step=5", 7, "loss")
    assert finding.to_json() == {
        "name": "nan",
        "severity": "error",
        "message": "loss is NaN at step=5",
        "trigger": 7,
        "key": "loss",
    }


def test_registry_refuses_classes_that_are_not_checks(monkeypatch):
    problems: list[str] = []
    monkeypatch.setattr(
        registry,
        "entry_point_specs",
        lambda: {"bad": "kleio.checks:Finding", "missing": "no.such:Thing"},
    )
    found = registry.available(problems)
    assert "bad" not in found and "missing" not in found and "nan" in found
    assert problems[0] == (
        "check 'bad' (kleio.checks:Finding) cannot be loaded: "
        "kleio.checks:Finding is not a subclass of kleio.checks.Check"
    )
    assert problems[1].startswith("check 'missing' (no.such:Thing) cannot be loaded: ")


@pytest.mark.parametrize("value", [{"nan": {"x": "y"}}])
def test_a_threshold_must_be_a_number(value):
    problems: list[str] = []
    registry.build(value, Context(), problems)
    assert problems == ["check 'nan' has no threshold 'x' (its thresholds: none)"]


def test_integers_past_any_float_are_no_number_to_check():
    """10**400 is valid JSON: the checks skip it instead of failing on float()."""
    stats = [{"step": i, "loss": 10**400, "val_loss": -(10**400), "acc": 1.0} for i in range(30)]
    eng = engine()
    feed(eng, stats)
    assert eng.failed == {}  # no OverflowError switched a check off
