"""Metric modes, the name rule, declarations and per-metric summaries."""

from __future__ import annotations

import math

import pytest

from kleio import metrics
from kleio.metrics import Declarations, from_events, from_specs, mode_from_name, summarize


@pytest.mark.parametrize(
    "name, mode",
    [
        ("loss", "min"),
        ("val_loss", "min"),
        ("test/loss", "min"),
        ("train.mse", "min"),
        ("valid-rmse", "min"),
        ("Val_Perplexity", "min"),
        ("nll", "min"),
        ("error", "min"),
        ("acc", "max"),
        ("val_acc", "max"),
        ("test_accuracy", "max"),
        ("f1", "max"),
        ("eval_auc", "max"),
        ("reward", "max"),
        ("bleu", "max"),
        ("epoch", None),
        ("step", None),
        ("lr", None),
        ("seed", None),
        ("loss_scale", None),
        ("val_", None),
        ("validation", None),
        ("my_loss", None),
    ],
)
def test_name_rule(name, mode):
    assert mode_from_name(name) == mode


@pytest.mark.parametrize(
    "text, mode",
    [("min", "min"), ("minimize", "min"), ("MAX", "max"), ("maximize", "max"), (" lower ", "min")],
)
def test_mode_spellings(text, mode):
    assert metrics.parse_mode(text) == mode


@pytest.mark.parametrize("bad", ["best", "", None, 3])
def test_bad_mode(bad):
    with pytest.raises(ValueError, match="min or max"):
        metrics.parse_mode(bad)


def test_specs_and_precedence():
    reader = from_specs(["epoch:max", "val_loss"])
    assert reader.primary == "epoch" and reader.modes == {"epoch": "max"}
    own = from_events(
        [
            {"metrics": {"val_loss": "max", "x": "min"}, "primary": "x"},
            {"metrics": {"x": "bogus"}},
            "damaged",
        ]
    )  # type: ignore[list-item]
    assert own.modes == {"val_loss": "max", "x": "min"} and own.primary == "x"
    config = metrics.from_config({"y": "min", "primary": "y"})
    merged = reader.over(own.over(config))
    assert merged.primary == "epoch"
    assert merged.mode("epoch") == "max" and merged.mode("x") == "min"
    assert merged.mode("val_loss") == "max"  # the trial's declaration beats the name rule
    assert merged.mode("y") == "min" and merged.mode("lr") is None
    assert own.over(config).primary == "x" and Declarations().over(config).primary == "y"
    with pytest.raises(ValueError):
        from_specs([":max"])


def test_summary_last_best_and_step_of_best():
    stats = [
        {"epoch": 1, "val_loss": 0.5, "val_acc": 0.6, "lr": 0.1},
        {"epoch": 2, "val_loss": 0.3, "val_acc": float("nan")},
        {"step": 30, "epoch": 3, "val_loss": 0.4, "val_acc": 0.7, "note": "x"},
        {"val_loss": True, "val_acc": "high"},
    ]
    summary = summarize(stats)
    assert set(summary) == {"val_loss", "val_acc"}  # lr, epoch are not metrics
    loss = summary["val_loss"]
    assert loss == {
        "mode": "min",
        "last": 0.4,
        "best": 0.3,
        "best_step": 2,
        "step_key": "epoch",
        "count": 3,
    }
    acc = summary["val_acc"]
    assert acc["best"] == 0.7 and acc["best_step"] == 30 and acc["step_key"] == "step"
    assert math.isnan(summarize(stats[:2])["val_acc"]["last"])
    declared = summarize([{"lr": 0.1}, {"lr": 0.01}], Declarations({"lr": "min"}))
    assert declared["lr"]["best"] == 0.01 and declared["lr"]["best_step"] is None


def test_rank_key_puts_best_first_and_missing_last():
    values = [0.2, None, float("nan"), 0.9, float("inf")]
    ranked = sorted(values, key=lambda v: metrics.rank_key(v, "max"))
    assert ranked[:3] == [float("inf"), 0.9, 0.2]
    ranked = sorted(values, key=lambda v: metrics.rank_key(v, "min"))
    assert ranked[:3] == [0.2, 0.9, float("inf")]
