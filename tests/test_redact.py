from __future__ import annotations

import pytest

from kleio.redact import (
    REDACTED,
    is_secret_name,
    redact_argv,
    redact_env,
    redact_message,
    redact_value,
)


@pytest.mark.parametrize(
    "name",
    [
        "GITHUB_TOKEN",
        "MY_API_TOKEN",
        "HF_TOKEN",
        "API_KEY",
        "WANDB_API_KEY",
        "AWS_ACCESS_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "SECRET",
        "client_secret",
        "PASSWORD",
        "DB_PASSWORD",
        "DBPASSWORD",
        "MYSQL_PASSWD",
        "DB_PWD",
        "DB_PASS",
        "GOOGLE_CREDENTIALS",
        "credential",
        "AUTH",
        "HTTP_AUTHORIZATION",
        "SESSION_COOKIE",
        "PRIVATE_KEY",
        "SIGNATURE",
        "SENTRY_DSN",
        "--password",
        "--api-key",
        "--token",
        "--key",
        "apiKey",
        "accessToken",
        "AccountKey",
        "--auth-token",
    ],
)
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "PWD",
        "OLDPWD",
        "pwd",
        "KEYBOARD",
        "KEYMAP",
        "MONKEY",
        "HOME",
        "PATH",
        "AUTHOR",
        "TOKENIZERS_PARALLELISM",
        "CUDA_VISIBLE_DEVICES",
        "--lr",
        "--max-tokens",
        "--max_new_tokens",
        "--pad-token",
        "--eos-token-id",
        "--token-budget",
        "--password-file",
        "--key-path",
        "--sort-key",
        "SSH_AUTH_SOCK",
        "--passes",
        "--bypass",
        "",
    ],
)
def test_not_secret_names(name):
    assert not is_secret_name(name)


def test_redact_value_masks_uri_passwords_and_tokens():
    assert redact_value("mongodb://me:hunter2@db.example/x") == "mongodb://me:***@db.example/x"
    assert "ghp_" not in redact_value("token ghp_" + "a" * 36)
    assert redact_value("https://h/x?api_key=abc123&page=2") == "https://h/x?api_key=***&page=2"
    assert "s3cr3t" not in redact_value("AccountName=x;AccountKey=s3cr3t;Endpoint=y")
    assert redact_value("Authorization: Bearer abcdefghijklmnop") == "Authorization: Bearer ***"
    assert REDACTED in redact_value("AKIAABCDEFGHIJKLMNOP")


def test_redact_value_leaves_ordinary_text_alone():
    for text in ["0.1", "train.py", "https://example.com/a/b", "lr=0.1", "--max-tokens=512", ""]:
        assert redact_value(text) == text


def test_redact_env():
    env = {
        "MY_API_TOKEN": "abc",
        "PWD": "/home/me",
        "DATABASE_URL": "postgres://u:pw@h/db",
        "OMP_NUM_THREADS": "4",
    }
    assert redact_env(env) == {
        "MY_API_TOKEN": REDACTED,
        "PWD": "/home/me",
        "DATABASE_URL": "postgres://u:***@h/db",
        "OMP_NUM_THREADS": "4",
    }


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
        "a mongodb://a:***@h/x and https://c:***@e/f")


def test_a_password_holding_a_slash_is_masked_whole():
    from kleio.storage import mask_uri

    assert mask_uri("mongodb://u:pa/ss@host/db") == "mongodb://u:***@host/db"
    assert mask_uri("mongodb://u:a/b@c/d@host:1/db?x=1") == "mongodb://u:***@host:1/db?x=1"
    # Two URIs in one word: the first password stops where the second URI begins.
    assert mask_uri("a=x://u:p@h,b=y://c:d@e") == "a=x://u:***@h,b=y://c:***@e"
    for text in ["ssh://git@host:22/x", "https://example.com/a/b", "://u:p@h", "u:p@h", ""]:
        assert mask_uri(text) == text


PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nq9Zx\n-----END RSA PRIVATE KEY-----\n"


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
        (["/usr/bin/mongosh", "-u", "a", "-p", "s3"], ["/usr/bin/mongosh", "-u", "a", "-p",
                                                         REDACTED]),
        (["sudo", "-u", "me", "mysqldump", "-pX"], ["sudo", "-u", "me", "mysqldump",
                                                     "-p" + REDACTED]),
        (["sshpass", "-p", "-s3", "ssh", "h"], ["sshpass", "-p", REDACTED, "ssh", "h"]),
        (["redis-cli", "-a", "pw", "-p", "6379"], ["redis-cli", "-a", REDACTED, "-p", "6379"]),
        (["docker", "login", "-u", "me", "-p", "pw"], ["docker", "login", "-u", "me", "-p",
                                                       REDACTED]),
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


def test_pem_keys_are_masked_anywhere():
    masked = redact_value("key=" + PEM)
    assert "MIIE" not in masked and "q9Zx" not in masked
    assert redact_value(PEM).splitlines() == [
        "-----BEGIN RSA PRIVATE KEY-----", REDACTED, REDACTED, "-----END RSA PRIVATE KEY-----"
    ]
    assert "MIIE" not in redact_value(PEM.replace("\n", ""))  # one line, no newlines
    assert "AAAB3" not in redact_value("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAB3")  # no END
    certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    assert redact_value(certificate) == certificate  # public


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("kleio ls: unrecognized arguments: --password hunter2. See 'kleio ls --help'.",
         "kleio ls: unrecognized arguments: --password ***. See 'kleio ls --help'."),
        ("command not found: mongodb://u:pa/ss@h/db.", "command not found: mongodb://u:***@h/db."),
        ("for example 'kleio run --token=abc python t.py 1a2b3c4'",
         "for example 'kleio run --token=*** python t.py 1a2b3c4'"),
        ("in ['mysql', '-pX', 'db']", "in ['mysql', '-p***', 'db']"),
        ("nothing to hide here: --lr 0.1", "nothing to hide here: --lr 0.1"),
    ],
)
def test_redact_message(message, expected):
    assert redact_message(message) == expected


def test_errors_never_echo_a_secret(tmp_path):
    from tests.conftest import run_kleio

    typed = run_kleio("ls", "--password", "hunter2", "--db=mongodb://u:pa/ss@h/x", cwd=tmp_path)
    assert typed.returncode == 64
    assert "hunter2" not in typed.stderr and "pa/ss" not in typed.stderr
    assert "--password ***" in typed.stderr and "mongodb://u:***@h/x" in typed.stderr
    scheme = run_kleio("--debug", "--db", "x://u:pa/ss@h/db", "ls", cwd=tmp_path)
    assert scheme.returncode == 65 and "Traceback" in scheme.stderr
    assert "pa/ss" not in scheme.stderr and "x://u:***@h/db" in scheme.stderr
    suggestion = run_kleio("1a2b3c4", "--token", "t0ps3cret", cwd=tmp_path)
    assert suggestion.returncode == 64 and "t0ps3cret" not in suggestion.stderr
    assert "kleio run --token *** 1a2b3c4" in suggestion.stderr


# Inputs on which the patterns this module used to have backtracked quadratically (a 120,000
# character argument delayed the start by 10 s): each scanned a long run once per position.
PATHOLOGICAL = [
    "a" * 200_000 + "://",  # a scheme-like run before '://'
    "x://u:" + "b" * 200_000,  # a password without '@'
    "x://u:" + "@" * 200_000,
    "a://b" * 40_000,
    "eyJ-" * 50_000,  # JWT starts in one run
    "a" * 200_000 + " =",  # a key-like run without '='
    "k=" * 100_000,
    ("token" + " " * 10) * 13_334,
    "password" + " " * 200_000 + ":",
    'password="' * 20_000,
    "-----BEGIN " * 20_000,
    "1" * 200_000,
    "--" + "password" * 25_000,
]


def test_redaction_runs_in_linear_time():
    import time

    from kleio.redact import redact_text
    from kleio.storage import mask_uri

    # Process CPU time, not wall-clock: other processes on the machine do not count. Each call
    # takes at most about 0.1 s here; the quadratic patterns took minutes on these inputs.
    calls = [
        mask_uri,
        lambda text: redact_argv(["prog", text, "--password", text]),
        redact_message,
        lambda text: redact_text(text, "train.py"),
        lambda text: redact_text(text, "config.yaml"),
    ]
    for text in PATHOLOGICAL:
        assert len(text) >= 200_000
        for call in calls:
            start = time.process_time()
            call(text)
            assert time.process_time() - start < 2.0, (text[:20], call)


def test_words_of_a_name_are_those_of_the_patterns_they_replace():
    """kleio.redact cuts names without re (off the start path): as the patterns did."""
    import random
    import re

    from kleio.redact import _words

    camel = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
    separators = re.compile(r"[^A-Za-z0-9]+")

    def by_patterns(name):
        words = []
        for part in separators.split(name):
            if not part:
                continue
            if part.isupper() or part.islower() or part.isdigit():
                words.append(part.lower())
            else:
                words.extend(w.lower() for w in camel.findall(part))
        return words

    rng = random.Random(3)
    alphabet = "aBcXyZ09_-.é ÉΣ\t"
    names = ["", "apiKey", "AWS_SECRET_ACCESS_KEY", "HTTPServer2Go", "myHTTPProxy", "A", "aB",
             "ABc", "X9y", "__x__", "github-token", "ÉcoleKEY", "kEY", "PASSWORD2FA", "pW"]
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(14)))
              for _ in range(5000)]
    for name in names:
        assert _words(name) == by_patterns(name), name


def test_mask_uri_ends_an_authority_at_what_the_pattern_s_would():
    """kleio.storage finds whitespace without re (off the start path): the same characters."""
    import re

    from kleio.storage import _SPACES, mask_uri

    pattern = re.compile(r"\s")
    assert {c for c in map(chr, range(0x110000)) if pattern.match(c)} == set(_SPACES)
    for space in _SPACES:
        assert mask_uri(f"mongodb://u:pw@h{space}x:y@z") == f"mongodb://u:***@h{space}x:y@z"
