"""kleio ls: what it refuses, what it says for an empty page, and the marks of its rows, on
both backends (trial documents written through the store, the real entry point reading)."""

from __future__ import annotations

import datetime
import os

import pytest

from kleio import errors
from kleio.storage import open_store
from tests.conftest import run_kleio

YEARS = {"a": 2020, "b": 2021, "c": 2022}


def trial_doc(digit, year, **fields):
    created = datetime.datetime(year, 1, 1, tzinfo=datetime.timezone.utc).timestamp()
    return {
        "id": digit * 64,
        "created_at": created,
        "status": "new",
        "parent": None,
        "tags": [f"t{year}"],
        "config": {"lr": "0.1", "seed": str(year)},
        "command": ["python", "train.py", "--lr", "0.1"],
        **fields,
    }


@pytest.fixture(params=["sqlite", "mongodb"])
def listed(request, tmp_path):
    """Environment of a journal (SQLite, or a fresh database on the live server) holding
    trials a (2020), b (2021, a branch of a) and c (2022)."""
    if request.param == "sqlite":
        uri = f"sqlite://{tmp_path / 'j' / 'kleio.db'}"
    else:
        uri = request.getfixturevalue("mongodb_db_uri")
    with open_store(uri) as store:
        store.create_trial(doc=trial_doc("a", 2020))
        store.create_trial(doc=trial_doc("b", 2021, parent={"id": "a" * 64, "cut": None}))
        store.create_trial(doc=trial_doc("c", 2022))
    return {**os.environ, "KLEIO_DB": uri, "HOME": str(tmp_path)}


def kleio(env, *args):
    return run_kleio(*args, env=env, cwd=env["HOME"])


def years(result):
    assert result.returncode == 0, result.stderr
    return sorted(YEARS[line[0]] for line in result.stdout.splitlines()[1:] if line[:1] in YEARS)


def refused(result, text, code=errors.EXIT_USAGE):
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert text in result.stderr, result.stderr


def test_where_reads_times_short_ids_and_refuses_a_doubled_operator(listed):
    assert years(kleio(listed, "ls", "--where", "created>2020-06-01T00:00:00+00:00")) == [
        2021,
        2022,
    ]
    assert years(kleio(listed, "ls", "--where", "id=ccccccc")) == [2022]
    assert years(kleio(listed, "ls", "--since", "1609459200")) == [2021, 2022]
    refused(kleio(listed, "ls", "--where", "lr<<0.1"), "starts with an operator character")
    refused(kleio(listed, "ls", "--where", "created>yesterday"), "'yesterday' is not a time")


def test_names_no_trial_has_and_empty_lists_are_refused(listed):
    refused(kleio(listed, "ls", "--sort", "bogus"), "cannot sort by 'bogus'")
    refused(kleio(listed, "ls", "--columns", ",,,"), "--columns ',,,' names nothing")
    refused(kleio(listed, "ls", "--group-by-except", " , "), "names nothing")
    refused(
        kleio(listed, "ls", "--group-by-except", "nosuch"),
        "cannot group by every option except 'nosuch': no listed trial has that option",
    )
    grouped = kleio(listed, "ls", "--group-by-except", "seed")
    assert grouped.returncode == 0 and grouped.stdout.splitlines()[1].split()[0] == "3"


def test_limit_0_says_so(listed):
    shown = kleio(listed, "ls", "--limit", "0")
    assert shown.returncode == 0
    assert shown.stdout == "no trials shown: --limit 0 shows none (give --limit N or --all)\n"


def test_the_branches_mark_comes_from_the_journal_not_the_page(listed):
    alone = kleio(listed, "ls", "--where", "id=aaaa")
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.splitlines()[1].split()[0] == "aaaaaaa*"
    assert "* a trial with branches" in alone.stdout
    every = kleio(listed, "ls").stdout.splitlines()
    assert [line.split()[0] for line in every[1:4]] == ["ccccccc", "bbbbbbb^", "aaaaaaa*"]
    plain = kleio(listed, "ls", "--where", "id=cccc").stdout
    assert plain.splitlines()[1].split()[0] == "ccccccc" and "branches" not in plain


def test_a_name_holding_an_operator_or_a_comma_is_selected_in_double_quotes(listed):
    from kleio.storage.base import encode, first_seq

    declared = (first_seq(1), "metrics", 1.0, encode({"metrics": {"a,b": "max", "x<y": "min"}}))
    stats = [
        (first_seq(1) + i, "statistic", 1.0 + i, encode({"epoch": i, "a,b": i / 2, "x<y": 0.25}))
        for i in (1, 2)
    ]
    with open_store(listed["KLEIO_DB"]) as store:
        store.create_trial(doc=trial_doc("e", 2023))
        store.append_events(trial_id="e" * 64, events=[declared, *stats])
    shown = kleio(listed, "ls", "--where", '"x<y"<0.3', "--columns", '"a,b",x<y,"a,b.last"')
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].split()[4:7] == ["A,B", "X<Y", "A,B.LAST"]
    assert shown.stdout.splitlines()[1].split()[:1] + shown.stdout.splitlines()[1].split()[4:7] == [
        "eeeeeee",
        "1",
        "0.25",
        "1",
    ]
    assert years(kleio(listed, "ls", "--where", '"a,b">2')) == []
    ranked = kleio(listed, "ls", "--sort", '-"a,b"', "--where", '"a,b">=1')
    assert ranked.returncode == 0 and ranked.stdout.splitlines()[1].startswith("eeeeeee")
