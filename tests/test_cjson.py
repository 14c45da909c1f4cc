"""kleio.cjson gives json's text and values, byte for byte (trial ids hash such text)."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import pytest

from kleio import cjson

VALUES = [
    None,
    True,
    False,
    0,
    -1,
    2**70,
    -(2**70),
    0.1,
    1e-320,
    1e308,
    -0.0,
    2.5,
    1 / 3,
    "",
    "plain",
    "é ü 日本",
    "\x00\x1f\x7f\u2028\ud800",
    '"quoted" \\ back/slash\n\t',
    [],
    {},
    [1, [2, [3, {"x": None}]]],
    {"b": 1, "a": 2, "c": {"z": [], "y": {}}},
    {1: "int key", 2.5: "float key", False: "bool key", None: "none key"},
    {"nested": [{"k": "v" * 100}] * 3, "unicode": "Ωmega"},
]


def _random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(2**64), 2**64)
    if kind == 2:
        return rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-300, 300)
    if kind in (3, 4):
        return "".join(
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x3000)]))
            for _ in range(rng.randrange(12))
        )
    if kind in (5, 6):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {
        _random_value(rng, 4) if rng.random() < 0.1 else str(rng.random()): _random_value(
            rng, depth + 1
        )
        for _ in range(rng.randrange(5))
    }


def _arguments():
    for sort_keys in (False, True):
        for ensure_ascii in (False, True):
            for separators in ((", ", ": "), (",", ":")):
                yield {
                    "sort_keys": sort_keys,
                    "ensure_ascii": ensure_ascii,
                    "separators": separators,
                }


@pytest.mark.parametrize("arguments", list(_arguments()), ids=str)
def test_dumps_is_json_dumps(arguments):
    rng = random.Random(7)
    values = VALUES + [_random_value(rng) for _ in range(300)]
    for value in values:
        try:
            expected = json.dumps(value, **arguments)
        except TypeError:  # mixed key types under sort_keys
            with pytest.raises(TypeError):
                cjson.dumps(value, **arguments)
            continue
        assert cjson.dumps(value, **arguments) == expected


def test_loads_is_json_loads():
    rng = random.Random(11)
    for value in VALUES + [_random_value(rng) for _ in range(300)]:
        text = json.dumps(value)
        assert repr(cjson.loads(text)) == repr(json.loads(text))
        assert repr(cjson.loads(text.encode())) == repr(json.loads(text.encode()))
        assert repr(cjson.loads(f" \n\t{text}\r ")) == repr(json.loads(f" \n\t{text}\r "))


def test_non_finite_numbers_and_what_cannot_be_encoded():
    assert cjson.dumps([math.nan, math.inf, -math.inf]) == "[NaN, Infinity, -Infinity]"
    assert math.isnan(cjson.loads("NaN")) and cjson.loads("-Infinity") == -math.inf
    with pytest.raises(ValueError):
        cjson.dumps({"x": math.nan}, allow_nan=False)
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        cjson.dumps({"x": {1, 2}})
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        cjson.dumps(loop)


@pytest.mark.parametrize("text", ["", "   ", "{", '{"a": 1} x', "[1,]", "nul", '"\x01"', "1 2"])
def test_bad_text_is_json_decode_error_at_the_same_place(text):
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        cjson.loads(text)
    assert (got.value.msg, got.value.pos) == (expected.value.msg, expected.value.pos)


def test_importing_it_imports_neither_json_nor_re():
    probe = (
        "import sys, kleio.cjson as c; c.dumps({'a': [1.5]}); c.loads('[1]');"
        "print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}; {probe}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"
