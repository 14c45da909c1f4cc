"""Which names hold a secret: variables, options and keys, matched word by word.

``MY_API_TOKEN`` is ``my``/``api``/``token``; ``KEYBOARD`` is one word, not ``key``; a neutral
word cancels the match (``--max-tokens``, ``--pad-token``, ``--sort-key``, ``--password-file``
name sizes, vocabulary and paths, not secrets).
"""

from __future__ import annotations

# Words that name a secret on their own.
_SECRET_WORDS = frozenset(
    {
        "token", "secret", "secrets", "password", "passwords", "passwd", "passphrase", "pass",
        "passin", "passout", "pw", "pwd", "credential", "credentials", "creds", "auth", "oauth",
        "authorization", "cookie", "cookies", "session", "private", "signature", "dsn", "key",
        "apikey", "accesskey", "secretkey", "privatekey", "authkey", "accesstoken", "authtoken",
        "apitoken", "refreshtoken", "bearer"
    }
)  # fmt: skip
# Of those, the words that are often a plain on/off flag: ``--private --lr 0.1``. An option
# named only by them takes a following ``--option`` for an option, not for its value.
_FLAG_WORDS = frozenset({"private", "auth", "oauth", "session", "signature"})
# Words too common in code as ordinary variables (``key = "lr"``, ``token = "[CLS]"``) to
# mask a literal assigned to them; in code, ``api_key`` or ``secret_token`` still are secrets.
_AMBIGUOUS_IN_CODE = frozenset(
    {"key", "token", "pass", "pw", "pwd", "session", "private", "signature", "cookie",
     "cookies", "auth", "oauth", "bearer", "dsn", "authorization"}
)  # fmt: skip

# Substrings that give a secret away wherever they appear in a word (``DBPASSWORD``).
_SECRET_SUBSTRINGS = ("password", "passwd", "passphrase", "credential")

# Words that turn a secret-looking name into something else: a size (--max-tokens), a
# vocabulary item (--pad-token), a path to a secret (--password-file: the path is not one),
# a lookup key (--sort-key).
_NEUTRAL_WORDS = frozenset(
    {
        "max", "min", "num", "n", "count", "limit", "len", "length", "size", "budget", "per",
        "timeout", "ttl", "pad", "bos", "eos", "unk", "sep", "cls", "mask", "special", "id",
        "ids", "file", "filename", "path", "dir", "sock", "type", "name", "names", "mode",
        "method", "required", "sort", "primary", "foreign", "metric", "metrics", "input",
        "output", "data", "dict", "hash", "cache", "group", "partition", "shard", "index",
        "column", "label", "target", "image", "text", "feature", "lookup", "map", "join",
        "field", "row", "prng", "rng", "random", "seed"
    }
)  # fmt: skip

# Working-directory variables of the shell, not passwords.
_NOT_SECRET = frozenset({"pwd", "oldpwd"})


def _is_word_char(char: str) -> bool:
    return char.isascii() and char.isalnum()  # [A-Za-z0-9]


def _camel_words(part: str) -> list[str]:
    """``part`` (ASCII letters and digits) cut like the pattern
    ``[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\\d+``: ``HTTPServer2`` is HTTP, Server, 2."""
    words: list[str] = []
    start, size = 0, len(part)
    while start < size:
        end = start + 1
        if part[start].isdigit():
            while end < size and part[end].isdigit():
                end += 1
        elif part[start].islower():
            while end < size and part[end].islower():
                end += 1
        else:  # a run of capitals: all but its last when a lower-case letter follows it
            while end < size and part[end].isupper():
                end += 1
            if end < size and part[end].islower():
                if end - start > 1:
                    end -= 1
                else:
                    while end < size and part[end].islower():
                        end += 1
        words.append(part[start:end])
        start = end
    return words


def words_of(name: str) -> list[str]:
    """The lower-cased words of a name: cut at every character but ``[A-Za-z0-9]``, and
    camel case cut in words (``apiKey``, ``AWS_SECRET``, ``HTTPProxy``)."""
    words: list[str] = []
    part: list[str] = []
    for char in (*name, " "):
        if _is_word_char(char):
            part.append(char)
            continue
        if part:
            text = "".join(part)
            part.clear()
            if text.isupper() or text.islower() or text.isdigit():
                words.append(text.lower())
            else:
                words.extend(word.lower() for word in _camel_words(text))
    return words


def _secret_words(name: str) -> list[str] | None:
    """The words of ``name`` that make it a secret; None when it is not one."""
    stripped = name.strip().lstrip("-")
    if stripped.lower() in _NOT_SECRET:
        return None
    words = words_of(stripped)
    if not words or any(word in _NEUTRAL_WORDS for word in words):
        return None
    found = [
        word
        for word in words
        if word in _SECRET_WORDS or any(sub in word for sub in _SECRET_SUBSTRINGS)
    ]
    return found or None


def is_secret_name(name: str) -> bool:
    """Tell whether a variable or option name looks like it holds a credential.

    Args:
        name: an environment variable (``AWS_SECRET_ACCESS_KEY``), an option with or without
            dashes (``--api-key``), or a key of a ``key=value`` pair (``apiKey``).

    Returns:
        True for names such as ``GITHUB_TOKEN``, ``--password``, ``DB_PWD``, ``apiKey``;
        False for ``PWD``, ``OLDPWD``, ``KEYBOARD``, ``--max-tokens``, ``--password-file``.
    """
    return _secret_words(name) is not None


def takes_value(name: str) -> bool:
    found = _secret_words(name)
    return found is not None and any(word not in _FLAG_WORDS for word in found)


def is_secret_in_code(name: str) -> bool:
    found = _secret_words(name)
    return found is not None and not (len(words_of(name)) == 1 and found[0] in _AMBIGUOUS_IN_CODE)
