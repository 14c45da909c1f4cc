"""The trials table's metric columns: the primary metric first, then the declared ones, then
the other statistics (the example declares val_loss/val_acc and also logs loss/acc)."""

from __future__ import annotations

from types import SimpleNamespace

from kleio.ui.views import metric_columns


def trial(metrics, modes=(), primary=None):
    return SimpleNamespace(
        metrics=dict.fromkeys(metrics, {}),
        declarations=SimpleNamespace(modes=dict.fromkeys(modes, "min")),
        primary=primary,
    )


def test_the_primary_metric_comes_first_then_the_declared_ones():
    trials = [
        trial(["acc", "loss", "val_acc", "val_loss"], ["val_loss", "val_acc"], "val_acc"),
        trial(["acc", "loss", "val_acc", "val_loss", "f1"], ["val_loss"], "val_loss"),
        trial(["acc", "val_acc"], ["val_acc"], "val_acc"),
    ]
    order, primary = metric_columns(trials)
    assert primary == "val_acc"  # declared primary by the most trials
    assert order == ["val_acc", "val_loss", "acc", "f1", "loss"]


def test_without_declarations_the_columns_are_by_name():
    assert metric_columns([trial(["b", "a"]), trial(["c"])]) == (["a", "b", "c"], None)
    assert metric_columns([]) == ([], None)
