"""kleio.client.values: which values a program may log, and the errors naming the bad one."""

from __future__ import annotations

import pytest

from kleio.client.logger import MAX_DEPTH
from kleio.client.values import check_odd, depth, metric_declaration, refuse, too_large


def nested(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_depth_counts_lists_and_dicts_and_stops_past_the_limit():
    assert depth(1, 5) == 0
    assert depth({"a": [1, {"b": []}]}, 5) == 4
    assert depth(nested(100), 5) == 6


def test_refuse_names_the_key_and_the_reason():
    loop: list = []
    loop.append(loop)
    assert "'b' refers to itself" in str(refuse({"a": 1, "b": loop}, "f()", "value of"))
    deep = refuse({"d": nested(MAX_DEPTH + 1)}, "f()", "value of")
    assert f"'d' is nested more than {MAX_DEPTH} levels" in str(deep)
    assert "'s' is a set, which is not JSON-like" in str(refuse({"s": {1}}, "f()", "value of"))


def test_check_odd_refuses_deep_values_and_lone_surrogates_only():
    check_odd({"x": nested(MAX_DEPTH), "t": "\\ud83d is text"}, '{"t":"\\\\ud83d"}', "f()")
    with pytest.raises(TypeError, match=f"more than {MAX_DEPTH} levels"):
        check_odd({"x": nested(MAX_DEPTH + 1)}, "", "f()")
    with pytest.raises(ValueError, match="lone surrogate"):
        check_odd({"x": "\udc80"}, '{"x":"\\udc80"}', "f()")


def test_too_large_says_the_size_and_the_setting():
    message = str(too_large(2_000_000, 1 << 20))
    assert "2,000,000 bytes" in message and "max_statistic_size" in message


def test_metric_declaration_folds_mode_aliases():
    declared = metric_declaration((), "acc", {"loss": " Minimise", "acc": "higher"})
    assert declared == {"metrics": {"loss": "min", "acc": "max"}, "primary": "acc"}
    assert metric_declaration((), "acc", {}) == {"metrics": {}, "primary": "acc"}
    with pytest.raises(ValueError, match="'loss' must be 'min' or 'max'"):
        metric_declaration((), None, {"loss": 3})  # type: ignore[dict-item]
