"""kleio.redact.commands: secrets in command lines and in the messages quoting them."""

from __future__ import annotations

import pytest

from kleio.redact import REDACTED, redact_argv, redact_message

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nq9Zx\n-----END RSA PRIVATE KEY-----\n"


def test_redact_argv_masks_secret_options():
    argv = [
        "python",
        "train.py",
        "--password",
        "hunter2",
        "--api-key=abc",
        "--token",
        "t0k",
        "--db",
        "mongodb://u:pw@h/x",
        "--lr",
        "0.1",
    ]
    redacted, changed = redact_argv(argv)
    assert changed
    assert redacted == [
        "python",
        "train.py",
        "--password",
        REDACTED,
        "--api-key=" + REDACTED,
        "--token",
        REDACTED,
        "--db",
        "mongodb://u:***@h/x",
        "--lr",
        "0.1",
    ]
    assert argv[3] == "hunter2"  # the input is not modified


def test_redact_argv_leaves_ordinary_commands_alone():
    argv = ["python", "train.py", "--lr", "0.1", "--max-tokens", "512", "--name", "a b", "-1"]
    assert redact_argv(argv) == (argv, False)


def test_redact_argv_secret_flag_without_value():
    # A secret-looking flag followed by another option has no value to mask.
    assert redact_argv(["prog", "--private", "--lr", "0.1"]) == (
        ["prog", "--private", "--lr", "0.1"],
        False,
    )


def test_redact_argv_hydra_style_pair():
    redacted, changed = redact_argv(["python", "run.py", "db.password=x", "model.max_tokens=8"])
    assert changed
    assert redacted[2:] == ["db.password=***", "model.max_tokens=8"]


def test_a_password_holding_an_at_sign_is_masked_whole():
    from kleio.storage import mask_uri

    assert mask_uri("mongodb://u:s3cr@t@127.0.0.1:1/x") == "mongodb://u:***@127.0.0.1:1/x"
    assert mask_uri("a mongodb://a:b@h/x and https://c:d@e/f") == (
        "a mongodb://a:***@h/x and https://c:***@e/f"
    )


def test_a_password_holding_a_slash_is_masked_whole():
    from kleio.storage import mask_uri

    assert mask_uri("mongodb://u:pa/ss@host/db") == "mongodb://u:***@host/db"
    assert mask_uri("mongodb://u:a/b@c/d@host:1/db?x=1") == "mongodb://u:***@host:1/db?x=1"
    # Two URIs in one word: the first password stops where the second URI begins.
    assert mask_uri("a=x://u:p@h,b=y://c:d@e") == "a=x://u:***@h,b=y://c:***@e"
    for text in ["ssh://git@host:22/x", "https://example.com/a/b", "://u:p@h", "u:p@h", ""]:
        assert mask_uri(text) == text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # A value named a password is one even when it starts with '-'.
        (["p", "--password", "-x"], ["p", "--password", REDACTED]),
        (["p", "--api-key", "-5"], ["p", "--api-key", REDACTED]),
        (["p", "--key", PEM], ["p", "--key", REDACTED]),
        (["p", "--pass=-x"], ["p", "--pass=" + REDACTED]),
        # An option that is often a flag takes no option for its value, but no option
        # looks like this.
        (["p", "--auth", "-----BEGIN"], ["p", "--auth", REDACTED]),
        # Short -p: a password only for programs that take one there.
        (["mysql", "-uroot", "-phunter2", "db"], ["mysql", "-uroot", "-p" + REDACTED, "db"]),
        (
            ["/usr/bin/mongosh", "-u", "a", "-p", "s3"],
            ["/usr/bin/mongosh", "-u", "a", "-p", REDACTED],
        ),
        (
            ["sudo", "-u", "me", "mysqldump", "-pX"],
            ["sudo", "-u", "me", "mysqldump", "-p" + REDACTED],
        ),
        (["sshpass", "-p", "-s3", "ssh", "h"], ["sshpass", "-p", REDACTED, "ssh", "h"]),
        (["redis-cli", "-a", "pw", "-p", "6379"], ["redis-cli", "-a", REDACTED, "-p", "6379"]),
        (
            ["docker", "login", "-u", "me", "-p", "pw"],
            ["docker", "login", "-u", "me", "-p", REDACTED],
        ),
        (["curl", "-u", "me:pw", "https://h"], ["curl", "-u", "me:" + REDACTED, "https://h"]),
        (["curl", "--user=me:pw"], ["curl", "--user=me:" + REDACTED]),
        (["curl", "-ume:pw", "https://h"], ["curl", "-ume:" + REDACTED, "https://h"]),
        (["openssl", "rsa", "-passin", "pass:pw"], ["openssl", "rsa", "-passin", REDACTED]),
    ],
)
def test_redact_argv_masks_values_wherever_they_are_secrets(argv, expected):
    assert redact_argv(argv) == (expected, True)


@pytest.mark.parametrize(
    "argv",
    [
        ["mkdir", "-p", "dir"],
        ["prog", "--private", "--lr", "0.1"],  # --private is often a flag
        ["prog", "--password", "--", "x"],  # '--' ends the options: no value
        ["mysql", "-p", "db"],  # mysql prompts; db is the database
        ["ssh", "-p", "22", "host"],
        ["psql", "--password", "-h", "host", "-p", "5432"],  # a flag that forces a prompt
        ["psql", "-W", "-U", "me", "db"],
        ["docker", "run", "-p", "8080:80", "image"],
        ["python", "train.py", "-p", "0.5", "--patience", "3"],
        ["python", "train.py", "--backend", "mongo", "-p", "27017"],  # mongo is a value here
        ["curl", "-u", "me", "https://h"],  # curl prompts for the password
    ],
)
def test_short_options_of_other_programs_are_left_alone(argv):
    assert redact_argv(argv) == (argv, False)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "kleio ls: unrecognized arguments: --password hunter2. See 'kleio ls --help'.",
            "kleio ls: unrecognized arguments: --password ***. See 'kleio ls --help'.",
        ),
        ("command not found: mongodb://u:pa/ss@h/db.", "command not found: mongodb://u:***@h/db."),
        (
            "for example 'kleio run --token=abc python t.py 1a2b3c4'",
            "for example 'kleio run --token=*** python t.py 1a2b3c4'",
        ),
        ("in ['mysql', '-pX', 'db']", "in ['mysql', '-p***', 'db']"),
        ("nothing to hide here: --lr 0.1", "nothing to hide here: --lr 0.1"),
    ],
)
def test_redact_message(message, expected):
    assert redact_message(message) == expected


def test_errors_never_echo_a_secret(tmp_path):
    from tests.conftest import run_kleio

    # (``--db`` after ``ls`` is the journal's: an unknown option quotes a URI instead.)
    typed = run_kleio("ls", "--password", "hunter2", "--url=mongodb://u:pa/ss@h/x", cwd=tmp_path)
    assert typed.returncode == 64
    assert "hunter2" not in typed.stderr and "pa/ss" not in typed.stderr
    assert "--password ***" in typed.stderr and "mongodb://u:***@h/x" in typed.stderr
    scheme = run_kleio("--debug", "--db", "x://u:pa/ss@h/db", "ls", cwd=tmp_path)
    assert scheme.returncode == 65 and "Traceback" in scheme.stderr
    assert "pa/ss" not in scheme.stderr and "x://u:***@h/db" in scheme.stderr
    suggestion = run_kleio("1a2b3c4", "--token", "t0ps3cret", cwd=tmp_path)
    assert suggestion.returncode == 64 and "t0ps3cret" not in suggestion.stderr
    assert "kleio run --token *** 1a2b3c4" in suggestion.stderr
