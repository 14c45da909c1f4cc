"""Oversized, deep and odd values: refused at the call with a clear error, or stored and
read back by every reading command without a crash, as valid JSON where JSON is asked for.
"""

from __future__ import annotations

import json
import sys

import pytest

from kleio.client.logger import MAX_DEPTH
from tests.faults import programs
from tests.faults.helpers import TOTALS, count_lost, json_lines, kleio

REFUSED = {
    "over_limit": ("ValueError", "max_statistic_size"),
    "deep_lists_over": ("TypeError", f"more than {MAX_DEPTH} levels"),
    "deep_dicts_over": ("TypeError", f"more than {MAX_DEPTH} levels"),
    "very_deep": ("TypeError", f"more than {MAX_DEPTH} levels"),
    "surrogate_value": ("ValueError", "lone surrogate"),
    "surrogate_key": ("ValueError", "lone surrogate"),
}
REFUSED_ARTIFACTS = {
    "meta_deep": ("TypeError", f"more than {MAX_DEPTH} levels"),
    "meta_surrogate": ("ValueError", "lone surrogate"),
}


def odd_run(lab) -> tuple[dict, str]:
    lab.program("odd.py", programs.ODD)
    result = kleio("run", sys.executable, "odd.py", lab.state, cwd=lab.repo)
    TOTALS["runs"] += 1
    assert result.returncode == 0, result.stderr
    trial = [
        line.rsplit(" ", 1)[1]
        for line in result.stderr.splitlines()
        if line.startswith("trial reserved with id:")
    ][0]
    with open(f"{lab.state}/odd.json", encoding="utf-8") as handle:
        return json.load(handle), trial


def test_odd_values_are_refused_or_stored_and_readable(lab):
    report, trial = odd_run(lab)
    results = report["results"]
    for case, (kind, words) in REFUSED.items():
        assert results[case] is not None, f"{case} was accepted"
        assert results[case][0] == kind and words in results[case][1], (case, results[case])
    assert f"{report['limit']:,}" in results["over_limit"][1]
    accepted = sorted(case for case, outcome in results.items() if outcome is None)
    assert set(accepted) == set(results) - set(REFUSED), results
    for case, (kind, words) in REFUSED_ARTIFACTS.items():
        outcome = report["artifacts"][case]
        assert outcome is not None and outcome[0] == kind and words in outcome[1], outcome
    assert report["artifacts"]["meta_nan"] is None

    # The program's own read-back (statistics() over the socket) and the journal's.
    assert sorted(report["back"]) == accepted
    assert report["nan_back"] == "nan"
    listed = kleio("cat", trial, "--statistics", "--json", cwd=lab.repo)
    assert listed.returncode == 0, listed.stderr
    stored = json_lines(listed.stdout)  # strict: NaN and Infinity are not JSON
    assert count_lost(accepted, [s["case"] for s in stored]) == (0, 0)
    by_case = {s["case"]: s for s in stored}
    assert by_case["nan"]["x"] == "NaN"
    assert (by_case["inf"]["x"], by_case["inf"]["y"]) == ("Infinity", "-Infinity")
    assert by_case["big_int"]["x"] == 2**70
    assert by_case["unicode"]["\u043a\u043b\u044e\u0447"] == "z"
    assert by_case["control"]["x"] == "nul \x00 esc \x1b[31m red\nnew line\rcr\ttab"
    assert len(by_case["under_limit"]["x"]) == report["limit"] - 100

    # Nothing stored makes a reading command crash, human or JSON.
    for args in (
        ["cat", trial],
        ["cat", trial, "--statistics"],
        ["cat", trial, "--statistics", "--sort", "x"],
        ["cat", trial, "--statistics", "--sort", "-x"],
        ["info", trial],
        ["ls"],
        ["tail", trial],
        ["tail", trial, "--json"],
    ):
        result = kleio(*args, cwd=lab.repo)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (args, result.stderr)
    for args in (["info", trial, "--json"], ["ls", "--json"]):
        result = kleio(*args, cwd=lab.repo)
        assert result.returncode == 0, (args, result.stderr)
        json_lines(result.stdout)
    info = json.loads(kleio("info", trial, "--json", cwd=lab.repo).stdout)
    assert info["counts"]["statistic"] == len(accepted)
    assert info["counts"]["artifact"] == 1


@pytest.mark.parametrize("limit", [4096])
def test_configured_statistic_limit(lab, monkeypatch, limit):
    monkeypatch.setenv("KLEIO_MAX_STATISTIC_SIZE", str(limit))
    report, _ = odd_run(lab)
    kind, message = report["results"]["over_limit"]
    assert kind == "ValueError" and f"{limit:,}" in message and "max_statistic_size" in message
    assert report["results"]["under_limit"] is None


@pytest.mark.parametrize("call", ["log_statistic", "log_artifact"])
def test_nesting_beyond_the_recursion_limit_is_a_type_error(monkeypatch, call):
    from kleio.client.logger import KleioLogger

    monkeypatch.delenv("KLEIO_CHANNEL", raising=False)
    value = 0
    for _ in range(5000):
        value = [value]
    client = KleioLogger()
    with pytest.raises(TypeError, match=f"more than {MAX_DEPTH} levels"):
        if call == "log_statistic":
            client.log_statistic(x=value)
        else:
            client.log_artifact("a.bin", b"x", m=value)
