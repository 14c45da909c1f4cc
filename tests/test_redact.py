from __future__ import annotations

import pytest

from kleio.redact import REDACTED, is_secret_name, redact_argv, redact_env, redact_value


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
