"""kleio.redact.names: which variable, option and key names hold a secret."""

from __future__ import annotations

import pytest

from kleio.redact import is_secret_name
from kleio.redact.names import words_of


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


def test_words_of_a_name_are_those_of_the_patterns_they_replace():
    """kleio.redact.names cuts names without re (off the start path): as the patterns did."""
    import random
    import re

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
    names = [
        "",
        "apiKey",
        "AWS_SECRET_ACCESS_KEY",
        "HTTPServer2Go",
        "myHTTPProxy",
        "A",
        "aB",
        "ABc",
        "X9y",
        "__x__",
        "github-token",
        "ÉcoleKEY",
        "kEY",
        "PASSWORD2FA",
        "pW",
    ]
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(14))) for _ in range(5000)]
    for name in names:
        assert words_of(name) == by_patterns(name), name
