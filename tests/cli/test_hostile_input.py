"""Hostile input never gets a traceback or exit 72; --json is always RFC 8259 JSON.

Most cases call the CLI in-process (``kleio.cli.main``), as the entry point would with argv
decoded by Python (undecodable bytes become lone surrogates); a few run the real entry point
to pass raw bytes and a strict locale.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from kleio import errors
from kleio.cli import main
from kleio.storage.base import encode, first_seq
from kleio.storage.sqlite import SQLiteStore

TRIAL = "ab" * 32
OTHER = "cd" * 32
HUGE = "9" * 20


def _refuse_constant(name):
    raise ValueError(f"not RFC 8259 JSON: {name}")


def strict_json(raw: bytes):
    """Parse like a strict consumer: UTF-8 only, no NaN/Infinity, no lone surrogates."""
    text = raw.decode("utf-8")  # strict: raises on invalid UTF-8
    assert not any(0xD800 <= ord(char) <= 0xDFFF for char in text)
    return json.loads(text, parse_constant=_refuse_constant)


def _trial(trial_id, argv, **fields):
    return {
        "schema_version": 1,
        "id": trial_id,
        "created_at": time.time(),
        "command": argv,
        "argv": argv,
        "status": "completed",
        "tags": ["t"],
        "parent": None,
        "config": {"lr": float("nan")},
        "started_at": 1.0,
        "ended_at": 2.0,
        "exit_code": 0,
        **fields,
    }


@pytest.fixture
def journal(db_uri):
    """A journal holding what hostile programs leave: NaN, undecodable bytes, deep values."""
    deep: object = 1
    for _ in range(600):
        deep = [deep]
    with SQLiteStore(db_uri) as store:
        store.create_trial(doc=_trial(TRIAL, ["python", "t.py", "x\udcffy"]))
        store.create_trial(doc=_trial(OTHER, ["python", "t.py", "--lr", "inf"]))
        for trial_id in (TRIAL, OTHER):
            start = first_seq(1)
            store.append_events(
                trial_id=trial_id,
                events=[
                    (start, "stdout", 1.0, encode({"line": "bad \udcff\udcfe bytes"})),
                    (
                        start + 1,
                        "statistic",
                        1.0,
                        encode({"epoch": 1, "loss": float("nan"), "\udcffkey": float("-inf")}),
                    ),
                    (
                        start + 2,
                        "statistic",
                        1.0,
                        encode({"epoch": 2, "loss": float("inf"), "deep": deep}),
                    ),
                    (start + 3, "stderr", 1.0, encode({"line": "warn \ud800 lone"})),
                ],
            )
    return db_uri


def cli(capsysbinary, *args):
    """Run kleio in-process; return (exit code, stdout bytes, stderr text)."""
    code = main(list(args))
    captured = capsysbinary.readouterr()
    return code, captured.out, captured.err.decode("utf-8")


def assert_one_line_error(code, err, expected):
    assert code == expected, err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("error: "), err


# -- counts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["ls", "--limit", HUGE],
        ["ls", "--json", "--limit", HUGE],
        ["ls", "--limit", "1" * 400],
        ["tail", "-n", HUGE, TRIAL[:7]],
        ["tail", "--lines", HUGE, "--json", TRIAL[:7]],
        ["tail", "-f", "-n", HUGE, TRIAL[:7]],
    ],
)
def test_a_count_too_large_for_a_database_means_all(journal, capsysbinary, args):
    code, out, err = cli(capsysbinary, *args)
    assert code == 0, err
    assert out


@pytest.mark.parametrize(
    "args",
    [
        ["ls", "--limit", "-1"],
        ["ls", "--limit", "-" + HUGE],
        ["ls", "--limit", ""],
        ["ls", "--limit", "1.5"],
        ["ls", "--limit", "1" * 5000],
        ["tail", "-n", "-1", TRIAL[:7]],
        ["tail", "-n", "x\udcff", TRIAL[:7]],
        ["tail", "-n", "", TRIAL[:7]],
        ["worker", "--max-trials", "0"],
        ["worker", "--idle-timeout", "nan"],
    ],
)
def test_a_bad_count_is_a_usage_error(journal, capsysbinary, args):
    code, _, err = cli(capsysbinary, *args)
    assert_one_line_error(code, err, errors.EXIT_USAGE)
    assert len(err) < 300


# -- option values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["ls", "--sort", "--"],
        ["ls", "--sort=--"],
        ["ls", "--tag=--"],
        ["ls", "--status=--"],
        ["cat", "--statistics", "--sort=--", TRIAL[:7]],
        ["ls", "--sort", ""],
        ["ls", "--sort", "a\nb"],
        ["ls", "--status", "x\udcff"],
        ["ls", "--tag", "\udcff\udcfe"],
        ["worker", "--tag", "\udced\udca0\udc80"],
        ["config", "\n"],
        ["ls", "--bogus\x1b[31m"],
    ],
)
def test_odd_option_values_are_one_line_usage_errors(journal, capsysbinary, args):
    code, _, err = cli(capsysbinary, *args)
    assert_one_line_error(code, err, errors.EXIT_USAGE)
    assert "\x1b" not in err


@pytest.mark.parametrize("command", [["info"], ["cat"], ["tail"], ["stop"], ["diff", TRIAL]])
@pytest.mark.parametrize(
    "trial_id", ["\udcff\udcfe", "\udced\udca0\udc80", "a\nb", "", "x" * 100_000]
)
def test_an_id_that_matches_nothing_is_not_found(journal, capsysbinary, command, trial_id):
    code, _, err = cli(capsysbinary, *command, trial_id)
    # An empty id is no id: not found, never "every trial" (that would pick the only one).
    assert_one_line_error(code, err, errors.EXIT_NOT_FOUND)
    assert len(err) < 400 or trial_id.startswith("x")


# -- JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["ls", "--json"],
        ["info", "--json", TRIAL[:7]],
        ["cat", "--json", TRIAL[:7]],
        ["cat", "--json", "--stderr", TRIAL[:7]],
        ["cat", "--json", "--statistics", TRIAL[:7]],
        ["cat", "--json", "--statistics", "--sort", "-loss", TRIAL[:7]],
        ["tail", "--json", TRIAL[:7]],
        ["tail", "--json", "--stderr", "-f", TRIAL[:7]],
        ["diff", "--json", TRIAL[:7], OTHER[:7]],
        ["config", "--json"],
    ],
)
def test_json_output_is_always_rfc_8259(journal, capsysbinary, monkeypatch, args):
    monkeypatch.setenv("KLEIO_HOSTNAME", "host")
    code, out, err = cli(capsysbinary, *args)
    assert code == 0, err
    lines = out.splitlines() if args[0] in ("cat", "tail") else [out]
    documents = [strict_json(line) for line in lines]
    assert documents


def test_json_represents_non_finite_numbers_and_undecodable_text_as_documented(
    journal, capsysbinary
):
    _, out, _ = cli(capsysbinary, "cat", "--json", "--statistics", TRIAL[:7])
    first, second = (strict_json(line) for line in out.splitlines())
    assert first == {"epoch": 1, "loss": "NaN", "\ufffdkey": "-Infinity"}
    assert second["loss"] == "Infinity"
    depth, value = 0, second["deep"]
    while isinstance(value, list):
        depth, value = depth + 1, value[0]
    # Whole, or cut where the encoder would have overflowed: never an exception.
    assert (depth, value) in ((600, 1), (399, "<nested too deeply>"))  # the statistic is 1
    _, out, _ = cli(capsysbinary, "cat", "--json", TRIAL[:7])
    assert strict_json(out)["line"] == "bad \ufffd\ufffd bytes"
    _, out, _ = cli(capsysbinary, "info", "--json", TRIAL[:7])
    info = strict_json(out)
    assert info["command"][-1] == "x\ufffdy" and info["config"] == {"lr": "NaN"}
    # Without --json, the exact bytes the program printed.
    _, out, _ = cli(capsysbinary, "cat", TRIAL[:7])
    assert out == b"bad \xff\xfe bytes\n"


# -- the real entry point: raw bytes in argv, a strict locale -------------------------------


def kleio_bytes(*args, **env):
    return subprocess.run(
        [sys.executable.encode(), b"-m", b"kleio", *args],
        capture_output=True,
        timeout=60,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize(
    "args, code",
    [
        ([b"info", b"\xff\xfe"], errors.EXIT_NOT_FOUND),
        ([b"tail", b"-n", b"\xff", b"abab"], errors.EXIT_USAGE),
        ([b"ls", b"--tag", b"\xed\xa0\x80"], errors.EXIT_USAGE),
        ([b"ls", b"--limit", HUGE.encode()], 0),
    ],
)
def test_undecodable_bytes_in_argv(journal, args, code):
    result = kleio_bytes(*args)
    assert result.returncode == code, result.stderr
    assert b"Traceback" not in result.stderr
    if code:
        assert result.stderr.count(b"\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        [b"ls"],
        [b"info", b"abab"],
        [b"diff", b"abab", b"cdcd"],
        [b"cat", b"--statistics", b"abab"],
        [b"config"],
    ],
)
def test_human_output_survives_a_strict_or_narrow_locale(journal, args):
    for encoding in ("utf-8:strict", "ascii:strict", "latin-1:strict"):
        result = kleio_bytes(*args, PYTHONIOENCODING=encoding, KLEIO_HOSTNAME="h\u00e9")
        assert result.returncode == 0, (encoding, result.stderr)
    # The undecodable byte of the command line comes back as it was given.
    if args == [b"ls"]:
        assert b"'x\xffy'" in kleio_bytes(b"ls", PYTHONIOENCODING="utf-8:strict").stdout


def test_a_config_file_that_is_not_utf8_is_exit_65(journal, git_repo):
    (git_repo / "kleio.yaml").write_bytes(b"stale_after: 5 # \xe9t\xe9\n")
    result = kleio_bytes(b"ls")
    assert result.returncode == errors.EXIT_CONFIG
    assert result.stderr.decode() == (
        f"error: configuration file {git_repo / 'kleio.yaml'} is not UTF-8 text (byte 0xe9 at "
        "offset 17). Save it as UTF-8.\n"
    )


@pytest.mark.parametrize(
    "variable, value",
    [
        ("KLEIO_FLUSH_INTERVAL", "inf"),
        ("KLEIO_HEARTBEAT_INTERVAL", "nan"),
        ("KLEIO_STALE_AFTER", "1e308"),
        ("KLEIO_STOP_GRACE", "-1"),
        ("KLEIO_MAX_STATISTIC_SIZE", HUGE),
        ("KLEIO_HOSTNAME", "a\x07b"),
    ],
)
def test_bad_settings_stop_every_command_with_exit_65(journal, variable, value):
    for command in ([b"ls"], [b"config"], [b"run", b"true"]):
        result = kleio_bytes(*command, **{variable: value})
        assert result.returncode == errors.EXIT_CONFIG, result.stderr
        assert result.stderr.count(b"\n") == 1 and variable.encode() in result.stderr


def test_an_unknown_option_in_a_mongodb_uri_is_one_line_exit_65(git_repo, monkeypatch):
    pytest.importorskip("pymongo")
    # pymongo only warns (in lines of Python warnings) and would go on without the option.
    monkeypatch.setenv("KLEIO_DB", "mongodb://db.invalid/kleio?replicaSett=rs0")
    result = kleio_bytes(b"ls")
    assert result.returncode == errors.EXIT_CONFIG
    assert result.stderr.decode().startswith(
        "error: invalid MongoDB URI 'mongodb://db.invalid/kleio?replicaSett=rs0': unknown "
        "option 'replicasett'. Did you mean"
    )
    assert result.stderr.count(b"\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        [b"ls"],
        [b"ls", b"--json"],
        [b"cat", b"abab"],
        [b"cat", b"--json", b"--statistics", b"abab"],
        [b"tail", b"--json", b"abab"],
        [b"info", b"abab"],
        [b"config"],
    ],
)
def test_a_closed_stdout_discards_the_output_like_print(journal, args):
    result = subprocess.run(
        [sys.executable.encode(), b"-m", b"kleio", *args],
        stderr=subprocess.PIPE,
        timeout=60,
        preexec_fn=lambda: os.close(1),
    )  # 'kleio ls >&-'
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
