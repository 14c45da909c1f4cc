"""Masking of secrets in names, values, environments and command lines.

Whatever kleio records (command lines, environment variables, repository URLs) goes through
this module first. Two mistakes are possible and both are costly:

* a *missed* secret ends up in a journal that a whole team, or a cluster, can read;
* a *false alarm* on a command-line option masks a real hyper-parameter, and since trial ids are
  computed over the redacted command, two different trials would share one id.

So names are matched word by word (``MY_API_TOKEN`` is ``my``/``api``/``token``; ``KEYBOARD`` is
one word, not ``key``), and a few neutral words cancel the match (``--max-tokens``,
``--pad-token``, ``--sort-key``, ``--password-file`` name sizes, vocabulary and paths, not
secrets).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

REDACTED = "***"

# Words that name a secret on their own.
_SECRET_WORDS = frozenset(
    {
        "token",
        "secret",
        "secrets",
        "password",
        "passwords",
        "passwd",
        "passphrase",
        "pass",
        "pw",
        "pwd",
        "credential",
        "credentials",
        "creds",
        "auth",
        "oauth",
        "authorization",
        "cookie",
        "cookies",
        "session",
        "private",
        "signature",
        "dsn",
        "key",
        "apikey",
        "accesskey",
        "secretkey",
        "privatekey",
        "authkey",
        "accesstoken",
        "authtoken",
        "apitoken",
        "refreshtoken",
        "bearer",
    }
)

# Substrings that give a secret away wherever they appear in a word (``DBPASSWORD``).
_SECRET_SUBSTRINGS = ("password", "passwd", "passphrase", "credential")

# Words that turn a secret-looking name into something else: a size, a vocabulary item, a
# path to a secret (the path itself is not one), a lookup key.
_NEUTRAL_WORDS = frozenset(
    {
        # sizes and counts: --max-tokens, --token-budget, --num-keys
        "max",
        "min",
        "num",
        "n",
        "count",
        "limit",
        "len",
        "length",
        "size",
        "budget",
        "per",
        "timeout",
        "ttl",
        # vocabulary: --pad-token, --eos-token-id
        "pad",
        "bos",
        "eos",
        "unk",
        "sep",
        "cls",
        "mask",
        "special",
        "id",
        "ids",
        # places and kinds, not values: --password-file, --key-path, SSH_AUTH_SOCK
        "file",
        "filename",
        "path",
        "dir",
        "sock",
        "type",
        "name",
        "names",
        "mode",
        "method",
        "required",
        # lookup keys: --sort-key, --metric-key
        "sort",
        "primary",
        "foreign",
        "metric",
        "metrics",
        "input",
        "output",
        "data",
        "dict",
        "hash",
        "cache",
        "group",
        "partition",
        "shard",
        "index",
        "column",
        "label",
        "target",
        "image",
        "text",
        "feature",
        "lookup",
        "map",
        "join",
        "field",
        "row",
        "prng",
        "rng",
        "random",
        "seed",
    }
)

# Working-directory variables of the shell, not passwords.
_NOT_SECRET = frozenset({"pwd", "oldpwd"})

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


def _words(name: str) -> list[str]:
    words: list[str] = []
    for part in _SEPARATORS.split(name):
        if not part:
            continue
        if part.isupper() or part.islower() or part.isdigit():
            words.append(part.lower())
        else:
            words.extend(w.lower() for w in _CAMEL.findall(part))
    return words


def is_secret_name(name: str) -> bool:
    """Tell whether a variable or option name looks like it holds a credential.

    Args:
        name: an environment variable (``AWS_SECRET_ACCESS_KEY``), an option with or without
            dashes (``--api-key``), or a key of a ``key=value`` pair (``apiKey``).

    Returns:
        True for names such as ``GITHUB_TOKEN``, ``--password``, ``DB_PWD``, ``apiKey``;
        False for ``PWD``, ``OLDPWD``, ``KEYBOARD``, ``--max-tokens``, ``--password-file``.
    """
    stripped = name.strip().lstrip("-")
    if stripped.lower() in _NOT_SECRET:
        return False
    words = _words(stripped)
    if not words or any(word in _NEUTRAL_WORDS for word in words):
        return False
    for word in words:
        if word in _SECRET_WORDS:
            return True
        if any(sub in word for sub in _SECRET_SUBSTRINGS):
            return True
    return False


# Well-known token shapes, masked wherever they appear.
_TOKEN_PATTERNS = re.compile(
    r"""
    \b(?:gh[pousr]_[A-Za-z0-9]{20,}          # GitHub
      |github_pat_[A-Za-z0-9_]{20,}
      |glpat-[A-Za-z0-9_-]{20,}               # GitLab
      |xox[abposr]-[A-Za-z0-9-]{10,}          # Slack
      |sk-[A-Za-z0-9_-]{20,}                  # OpenAI and others
      |hf_[A-Za-z0-9]{20,}                    # Hugging Face
      |AKIA[0-9A-Z]{16}                       # AWS access key id
      |AIza[0-9A-Za-z_-]{35}                  # Google API key
      |eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+   # JWT
    )
    """,
    re.VERBOSE,
)
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{8,}")
# key=value pairs inside a value: URL queries, connection strings, Hydra overrides.
_PAIR = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P<eq>=)(?P<value>[^&;,\s]+)")


def _mask_pair(match: re.Match[str]) -> str:
    if match.group("value") != REDACTED and is_secret_name(match.group("key").rsplit(".", 1)[-1]):
        return match.group("key") + "=" + REDACTED
    return match.group(0)


def redact_value(text: str) -> str:
    """Return ``text`` with URI passwords, ``secret=...`` pairs and well-known tokens masked."""
    if not text:
        return text
    if "://" in text:
        # Imported here: kleio.storage pulls in the storage contract, which redaction of a
        # plain value never needs.
        from kleio.storage import mask_uri

        text = mask_uri(text)
    if "=" in text:
        text = _PAIR.sub(_mask_pair, text)
    text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    return _TOKEN_PATTERNS.sub(REDACTED, text)


def redact_env(mapping: Mapping[str, str]) -> dict[str, str]:
    """Mask the values of secret-looking variables; redact the others with :func:`redact_value`."""
    return {
        name: REDACTED if is_secret_name(name) else redact_value(value)
        for name, value in mapping.items()
    }


def is_option(token: str) -> bool:
    """Tell whether a command-line token is an option (``-x``, ``--lr``), not a value like -1."""
    if len(token) < 2 or not token.startswith("-"):
        return False
    try:
        float(token)
    except ValueError:
        return True
    return False  # a negative number is a value, not an option


def redact_argv(argv: list[str]) -> tuple[list[str], bool]:
    """Mask the values of secret-looking options and the secrets inside every argument.

    ``--password x``, ``--api-key=x`` and ``--token x`` lose their value; URIs lose their
    password; well-known token shapes are masked anywhere.

    Returns:
        The redacted copy of ``argv`` and whether anything was masked. A redacted command
        cannot be replayed from the journal: the caller must ask for it to be typed again.
    """
    result: list[str] = []
    changed = False
    mask_next = False
    for token in argv:
        if mask_next:
            mask_next = False
            if not is_option(token):
                result.append(REDACTED)
                changed = changed or token != REDACTED
                continue
        if is_option(token) and token != "--":
            name, eq, value = token.partition("=")
            if is_secret_name(name):
                if eq:
                    result.append(name + "=" + REDACTED)
                    changed = changed or value != REDACTED
                else:
                    result.append(token)
                    mask_next = True
                continue
        masked = redact_value(token)
        changed = changed or masked != token
        result.append(masked)
    return result, changed


__all__ = ["REDACTED", "is_secret_name", "redact_argv", "redact_env", "redact_value"]
