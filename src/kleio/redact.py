"""Masking of secrets in names, values, environments, command lines, messages and code.

Whatever kleio records or prints (command lines, environment variables, repository URLs, the
uncommitted diff and untracked sources, error messages) goes through this module first. Two
mistakes are possible and both are costly:

* a *missed* secret ends up in a journal that a whole team, or a cluster, can read;
* a *false alarm* on a command-line option masks a real hyper-parameter, and since trial ids are
  computed over the redacted command, two different trials would share one id.

So names are matched word by word (``MY_API_TOKEN`` is ``my``/``api``/``token``; ``KEYBOARD`` is
one word, not ``key``), and a few neutral words cancel the match (``--max-tokens``,
``--pad-token``, ``--sort-key``, ``--password-file`` name sizes, vocabulary and paths, not
secrets).

Command lines follow these rules (docs/reference/journal-schema.rst, "Secrets"):

* ``--NAME=VALUE`` and ``--NAME VALUE`` lose VALUE when NAME looks like a secret. VALUE is
  masked even when it starts with ``-`` (``--password -x``, a PEM key) if NAME names a value
  (password, token, key, secret...): as getopt does for an option with a required argument.
  Only names that are often plain flags (``--private``, ``--auth``, ``--session``) let a
  following ``--option`` be an option.
* Short options are letters, not names: ``-p`` is a port (``ssh``, ``psql``), a flag
  (``mkdir -p``) or anything in a script. It is a password only after a program known to
  take one there (:data:`PASSWORD_OPTIONS`: ``mysql -pSECRET``, ``mongosh -p SECRET``,
  ``sshpass -p SECRET``, ``redis-cli -a SECRET``...), and ``psql --password`` is a flag.
* URIs lose their password, token shapes (GitHub, AWS, OpenAI...) and PEM private keys are
  masked wherever they appear.

Every function here runs in time linear in its input: a command line is redacted before every
start, and its arguments can be long. Patterns are anchored so that a failed attempt is never
retried from inside the same run of characters, and have no nested quantifiers.
"""

from __future__ import annotations

import os

from kleio.argv import is_option

TYPE_CHECKING = False
if TYPE_CHECKING:  # collections.abc imports collections: milliseconds per run
    import re
    from collections.abc import Mapping

REDACTED = "***"


class _Lazy:
    """A regular expression compiled on first use, :mod:`re` imported on first use.

    The patterns run only where a cheap ``str.find`` found a word they need, so most runs
    never use them; :mod:`re` and the patterns, imported and compiled at import, would cost
    the start of every run about half a bare interpreter's start.
    """

    __slots__ = ("_args", "_compiled")

    def __init__(self, pattern: str, flags: str) -> None:
        self._args = (pattern, flags)
        self._compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> object:
        if self._compiled is None:
            import re

            pattern, flags = self._args
            self._compiled = re.compile(pattern, getattr(re, flags) if flags else 0)
        return getattr(self._compiled, name)


def _lazy(pattern: str, flags: str = "") -> re.Pattern[str]:
    """``re.compile(pattern, re.FLAGS)``, on first use (``flags``: a flag's name)."""
    return _Lazy(pattern, flags)  # type: ignore[return-value]  # duck-typed: used by methods


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


def _words(name: str) -> list[str]:
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
    words = _words(stripped)
    if not words or any(word in _NEUTRAL_WORDS for word in words):
        return None
    found = [
        word for word in words
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


def _takes_value(name: str) -> bool:
    found = _secret_words(name)
    return found is not None and any(word not in _FLAG_WORDS for word in found)


def _is_secret_in_code(name: str) -> bool:
    found = _secret_words(name)
    return found is not None and not (len(_words(name)) == 1 and found[0] in _AMBIGUOUS_IN_CODE)


# Well-known token shapes, masked wherever they appear. Every alternative starts with a
# literal and ends with its open-ended run, so a failed attempt costs a bounded prefix; the
# JWT, whose runs are followed by more pattern, may only start where a run of its characters
# starts, so no run is scanned twice.
_TOKEN_PATTERNS = _lazy(
    r"""
    \b(?:gh[pousr]_[A-Za-z0-9]{20,}          # GitHub
      |github_pat_[A-Za-z0-9_]{20,}
      |glpat-[A-Za-z0-9_-]{20,}               # GitLab
      |xox[abposr]-[A-Za-z0-9-]{10,}          # Slack
      |sk-[A-Za-z0-9_-]{20,}                  # OpenAI, Anthropic and others
      |[sr]k_(?:live|test)_[A-Za-z0-9]{10,}   # Stripe
      |hf_[A-Za-z0-9]{20,}                    # Hugging Face
      |npm_[A-Za-z0-9]{36}                    # npm
      |pypi-[A-Za-z0-9_-]{50,}                # PyPI
      |(?:AKIA|ASIA)[0-9A-Z]{16}              # AWS access key id
      |AIza[0-9A-Za-z_-]{35}                  # Google API key
    )
    |(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+   # JWT
    """,
    "VERBOSE",
)
# [ \t], not \s: "token" at the end of a line of code must not swallow the next line's word.
_BEARER = _lazy(r"(?i)\b(bearer|basic|token)([ \t]+)[A-Za-z0-9._~+/=-]{8,}")
# key=value pairs inside a value: URL queries, connection strings, Hydra overrides. The run
# before '=' may only start where a run of key characters starts (the look-behind), so a long
# run without '=' is scanned once, not once per character; its leading digits, dots and dashes
# are then dropped (``--password=x`` has the key ``password``).
_PAIR = _lazy(r"(?<![A-Za-z0-9_.-])(?P<key>[A-Za-z0-9_.-]+)=(?P<value>[^&;,\s]+)")
_PEM_BEGIN = _lazy(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_LINE_CONTENT = _lazy(r"[^\r\n]+")


def _mask_pair(match: re.Match[str]) -> str:
    key = match.group("key").lstrip("0123456789.-")
    if key and match.group("value") != REDACTED and is_secret_name(key.rsplit(".", 1)[-1]):
        return match.group(0)[: match.start("value") - match.start()] + REDACTED
    return match.group(0)


def _mask_pem(text: str) -> str:
    """Mask the body of every PEM private key, line by line (the line count stays)."""
    if "-----BEGIN " not in text:
        return text
    out: list[str] = []
    done = 0
    for match in _PEM_BEGIN.finditer(text):
        if match.start() < done:
            continue  # inside the key masked just before
        footer = text.find("-----END ", match.end())
        body_end = len(text) if footer == -1 else footer
        out.append(text[done : match.end()])
        out.append(_LINE_CONTENT.sub(REDACTED, text[match.end() : body_end]))
        done = body_end
    out.append(text[done:])
    return "".join(out)


def redact_value(text: str) -> str:
    """Return ``text`` with URI passwords, ``secret=...`` pairs, PEM keys and tokens masked."""
    if not text:
        return text
    text = _mask_pem(text)
    if "://" in text:
        # Imported here: kleio.storage pulls in the storage contract, which redaction of a
        # plain value never needs.
        from kleio.storage import mask_uri

        text = mask_uri(text)
    # Each pattern runs only where a word it needs is (a str.find, at C speed): the
    # patterns cost microseconds per call, and code has many lines.
    lower = text.lower()
    if "=" in text and _any_in(_SECRET_TRIGGERS, lower):
        text = _PAIR.sub(_mask_pair, text)
    if _any_in(_BEARER_TRIGGERS, lower):
        text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    if _any_in(_TOKEN_TRIGGERS, lower):
        text = _TOKEN_PATTERNS.sub(REDACTED, text)
    return text


def _any_in(words: tuple[str, ...], lower: str) -> bool:
    """Whether one of ``words`` is in ``lower`` (a ``str.find`` each, at C speed)."""
    return any(word in lower for word in words)


def redact_env(mapping: Mapping[str, str]) -> dict[str, str]:
    """Mask the values of secret-looking variables; redact the others with :func:`redact_value`."""
    return {
        name: REDACTED if is_secret_name(name) else redact_value(value)
        for name, value in mapping.items()
    }


# A token that reads as an option name: what a flag-like secret option may be followed by.
_OPTION_SHAPE = _lazy(r"--?[A-Za-z][A-Za-z0-9_.-]*(?:=.*)?", "DOTALL")

_MYSQL = ("-p", False, None)
_MONGO = ("-p", True, None)
_LDAP = ("-w", True, None)
#: Programs whose short option carries a password: ``{program: (option, the password may be
#: the next token, only after this subcommand)}``. Without the second flag only the attached
#: form (``mysql -pSECRET``) is one: ``mysql -p db`` prompts, and ``db`` is a database.
PASSWORD_OPTIONS: dict[str, tuple[str, bool, str | None]] = {
    **dict.fromkeys(
        ["mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlshow", "mysqlcheck",
         "mysqlpump", "mysqlslap", "mariadb", "mariadb-dump", "mariadb-admin", "7z", "7za",
         "7zr", "rar", "unrar"], _MYSQL),
    **dict.fromkeys(
        ["mongo", "mongosh", "mongodump", "mongorestore", "mongoexport", "mongoimport",
         "mongostat", "mongotop", "mongofiles", "sshpass"], _MONGO),
    **dict.fromkeys(
        ["ldapsearch", "ldapadd", "ldapmodify", "ldapdelete", "ldapwhoami", "ldappasswd",
         "ldapcompare", "ldapmodrdn"], _LDAP),
    "redis-cli": ("-a", True, None),
    "sqlcmd": ("-P", True, None),
    "bcp": ("-P", True, None),
    "zip": ("-P", True, None),
    "unzip": ("-P", True, None),
    "docker": ("-p", True, "login"),
    "podman": ("-p", True, "login"),
    "nerdctl": ("-p", True, "login"),
}  # fmt: skip
# PostgreSQL's clients: --password (-W) only forces a prompt; -p is the port.
_POSTGRES = frozenset(
    {"psql", "pg_dump", "pg_dumpall", "pg_restore", "pg_basebackup", "createdb", "dropdb",
     "createuser", "dropuser", "vacuumdb", "reindexdb", "clusterdb", "pgbench"}
)  # fmt: skip
# curl's credentials are USER:PASSWORD in one value.
_USER_PASSWORD = {"curl": frozenset({"-u", "--user", "-U", "--proxy-user"})}


def _program_of(token: str) -> str | None:
    name = os.path.basename(token)
    if name in PASSWORD_OPTIONS or name in _POSTGRES or name in _USER_PASSWORD:
        return name
    return None


def redact_argv(argv: list[str]) -> tuple[list[str], bool]:
    """Mask the values of secret-looking options and the secrets inside every argument.

    ``--password x``, ``--password -x``, ``--api-key=x``, ``--token x``, ``mysql -px`` and
    ``mongosh -p x`` lose their value (see the module's rules); URIs lose their password;
    well-known token shapes and PEM keys are masked anywhere.

    Returns:
        The redacted copy of ``argv`` and whether anything was masked. A redacted command
        cannot be replayed from the journal: the caller must ask for it to be typed again.
    """
    result: list[str] = []
    changed = False
    mask_next: str | None = None  # "any": whatever comes; "value": unless it is an option
    program: str | None = None
    subcommands: set[str] = set()
    previous_option = False
    for position, token in enumerate(argv):
        masked: str | None = None
        option = is_option(token)
        if mask_next is not None:
            mode, mask_next = mask_next, None
            if token == "--":
                pass  # the end of the options: the secret option had no value
            elif mode == "user:password":
                user, colon, _ = token.partition(":")
                if colon and not option:
                    masked = user + colon + REDACTED
            elif not option or mode == "any" or _OPTION_SHAPE.fullmatch(token) is None:
                masked = REDACTED
        if masked is None and option and token != "--":
            masked, mask_next = _redact_option(token, program, subcommands)
        if masked is None and not option:
            # A known program starts here unless the token is the value of an option
            # (``--backend mongo`` names no program).
            found = _program_of(token) if position == 0 or not previous_option else None
            if found is not None:
                program, subcommands = found, set()
            elif program is not None:
                subcommands.add(token)
        previous_option = option
        if masked is None:
            masked = redact_value(token)
        changed = changed or masked != token
        result.append(masked)
    return result, changed


def _redact_option(token: str, program: str | None, subcommands: set[str]
                   ) -> tuple[str | None, str | None]:
    """``(masked token or None, how to treat the next token or None)`` for one option."""
    name, eq, value = token.partition("=")
    if program in _POSTGRES and name in ("--password", "-W"):
        return (None, None)
    if program in _USER_PASSWORD:
        if name in _USER_PASSWORD[program]:
            if eq:
                user, colon, _ = value.partition(":")
                return (name + "=" + user + colon + REDACTED if colon else None, None)
            return (None, "user:password")
        if token[:2] in _USER_PASSWORD[program] and ":" in token:  # -uUSER:PASSWORD
            return (token.partition(":")[0] + ":" + REDACTED, None)
    if program in PASSWORD_OPTIONS:
        short, separate, subcommand = PASSWORD_OPTIONS[program]
        if subcommand is None or subcommand in subcommands:
            if token.startswith(short) and len(token) > len(short) and not token.startswith("--"):
                return (short + REDACTED, None)
            if token == short:
                return (None, "any" if separate else None)
    if is_secret_name(name):
        if eq:
            return (name + "=" + REDACTED, None)
        return (None, "any" if _takes_value(name) else "flag")
    return (None, None)


# -- messages ------------------------------------------------------------------------------

_WORD = _lazy(r"\S+")
_LEADING = "'\"`([{<"
_TRAILING = "'\"`)]}>,;.!?:"


def redact_message(text: str) -> str:
    """Mask the secrets in a message that may quote a command line or a URI.

    Used for everything kleio prints about a user's input (errors, suggestions, tracebacks):
    the words of ``text`` are redacted as a command line (:func:`redact_argv`), each word
    stripped of the quotes, brackets and punctuation a message wraps it in.
    """
    if not text:
        return text
    matches = list(_WORD.finditer(text))
    leads: list[int] = []
    cores: list[str] = []
    for match in matches:
        word = match.group()
        core = word.lstrip(_LEADING)
        leads.append(len(word) - len(core))
        cores.append(core.rstrip(_TRAILING) or core)
    masked, changed = redact_argv(cores)
    if not changed:
        return text
    out: list[str] = []
    done = 0
    for match, lead, core, new in zip(matches, leads, cores, masked):
        if new == core:
            continue
        start = match.start() + lead
        out.append(text[done:start])
        out.append(new)
        done = start + len(core)
    out.append(text[done:])
    return "".join(out)


# -- code ----------------------------------------------------------------------------------

# Files whose values are often bare words (``password: hunter2`` in YAML, ``TOKEN=x`` in a
# .env or a shell script). In a program, a bare word is code (``password = get_password()``),
# so there only string literals are masked.
_CONFIG_SUFFIXES = frozenset(
    {"", ".yaml", ".yml", ".env", ".ini", ".cfg", ".conf", ".toml", ".properties", ".json",
     ".sh", ".bash", ".zsh", ".txt", ".netrc", ".pgpass", ".npmrc", ".pypirc", ".envrc"}
)  # fmt: skip
# name = value, name: value, "name": "value", name := value, os.environ["NAME"] = "value",
# name: str = "value". Bounded runs around the name, one open-ended run for the value.
_ASSIGNMENT = _lazy(
    r"""(?<![A-Za-z0-9_.-])(?P<q>["']?)(?P<name>[A-Za-z_][A-Za-z0-9_.-]{0,99})(?P=q)\]?"""
    r"""[ \t]{0,20}(?::[ \t]{0,20}[A-Za-z_][A-Za-z0-9_.\[\]]{0,60}[ \t]{0,20}(?==))?"""
    r"""(?::=|==|=>|[:=])[ \t]{0,20}"""
    r"""(?P<value>"[^"\r\n]*"|'[^'\r\n]*'|[^\s"'`,;#()\[\]{}]+)"""
)
# --password VALUE inside a script or a README.
_TEXT_OPTION = _lazy(
    r"""(?<![A-Za-z0-9_-])--(?P<name>[A-Za-z][A-Za-z0-9_-]{0,99})(?:=|[ \t]{1,20})"""
    r"""(?P<value>"[^"\r\n]*"|'[^'\r\n]*'|[^\s"'`]+)"""
)
_LITERAL = _lazy(r""""[^"\r\n]*"|'[^'\r\n]*'""")
# Words (lower-cased) without which a pattern cannot match: every secret name holds one of
# _SECRET_TRIGGERS, every token shape one of _TOKEN_TRIGGERS. A line with none of _TRIGGERS
# holds no secret to mask.
_SECRET_TRIGGERS = (
    "key", "token", "secret", "pass", "pw", "cred", "auth", "cookie", "session", "private",
    "signature", "dsn", "bearer",
)  # fmt: skip
_BEARER_TRIGGERS = ("bearer", "basic", "token")
_TOKEN_TRIGGERS = (
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xox", "sk-", "sk_",
    "rk_", "hf_", "npm_", "pypi-", "akia", "asia", "aiza", "eyj",
)  # fmt: skip
_TRIGGERS = (*_SECRET_TRIGGERS, "basic", "://", *_TOKEN_TRIGGERS)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_PLAIN_WORDS = frozenset({"true", "false", "null", "none", "nil", "yes", "no", "on", "off", "~"})


def _masked_value(value: str, bare_ok: bool) -> str | None:
    """The masked form of an assigned value, or None when it is not to be masked."""
    quoted = value[:1] in ("'", '"')
    inner = value[1:-1] if quoted else value
    if not inner or inner == REDACTED or inner.startswith("$"):  # empty, done, a $REFERENCE
        return None
    if quoted:
        return value[0] + REDACTED + value[0]
    if not bare_ok or inner.lower() in _PLAIN_WORDS or inner.startswith("-"):
        return None
    return REDACTED


def _redact_literal(match: re.Match[str]) -> str:
    literal = match.group(0)
    return literal[0] + redact_value(literal[1:-1]) + literal[-1]


def _candidate_lines(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` of the lines that hold a word any secret pattern starts with.

    Programs are mostly lines with no such word: a few ``str.find`` passes (C speed) skip
    them, and the regular expressions run on the rest only.
    """
    lower = text.lower()
    if len(lower) != len(text):  # a character lower-cased to two: keep positions
        lower = text.translate(_ASCII_LOWER)
    spans: set[tuple[int, int]] = set()
    for word in _TRIGGERS:
        at = lower.find(word)
        while at != -1:
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            end = len(text) if end == -1 else end
            spans.add((start, end))
            at = lower.find(word, end)  # the next line: no line is searched twice per word
    return sorted(spans)


def might_hold_secrets(text: str) -> bool:
    """False when :func:`redact_text` would surely leave ``text`` unchanged (a fast test)."""
    lower = text.lower()
    return "-----begin " in lower or any(word in lower for word in _TRIGGERS)


def _redact_line(line: str, bare_ok: bool) -> str:
    def assignment(match: re.Match[str]) -> str:
        name = match.group("name").rsplit(".", 1)[-1]
        if not _any_in(_SECRET_TRIGGERS, name.lower()):  # most names: a few str.find
            return match.group(0)
        new = _masked_value(match.group("value"), bare_ok)
        if new is None or not _is_secret_in_code(name):
            return match.group(0)
        return match.group(0)[: match.start("value") - match.start()] + new

    def option(match: re.Match[str]) -> str:
        new = _masked_value(match.group("value"), True)
        if new is None or not is_secret_name(match.group("name")):
            return match.group(0)
        return match.group(0)[: match.start("value") - match.start()] + new

    lower = line.lower()
    if bare_ok:
        line = redact_value(line)
    else:
        # In code, key=value is a keyword argument (f(api_key=api_key)): pairs are looked for
        # inside string literals only (a URL query, a connection string); URIs and token
        # shapes everywhere (comments, docstrings).
        if "=" in line and _any_in(_SECRET_TRIGGERS, lower):
            line = _LITERAL.sub(_redact_literal, line)
        if "://" in line:
            from kleio.storage import mask_uri

            line = mask_uri(line)
        if _any_in(_BEARER_TRIGGERS, lower):
            line = _BEARER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, line)
        if _any_in(_TOKEN_TRIGGERS, lower):
            line = _TOKEN_PATTERNS.sub(REDACTED, line)
    if _any_in(_SECRET_TRIGGERS, lower):
        line = _ASSIGNMENT.sub(assignment, line)
        if "--" in line:
            line = _TEXT_OPTION.sub(option, line)
    return line


def redact_text(text: str, path: str = "") -> str:
    """Return the text of a source or configuration file with its secrets masked.

    Masks assignments of literals to secret names (``API_KEY = "sk-..."``,
    ``password: hunter2``), ``--password VALUE``, and everything :func:`redact_value`
    masks (URI passwords, token shapes, PEM private keys). Only characters within a line
    change: the line count stays, so a masked diff still applies.

    Args:
        text: the file's text (decode bytes with ``surrogateescape`` to keep them exact).
        path: the file's path; its suffix tells configuration (bare values are secrets too)
            from code (only string literals are).
    """
    if not text:
        return text
    name = os.path.basename(path).lower()
    bare_ok = name.startswith(".env") or os.path.splitext(name)[1] in _CONFIG_SUFFIXES
    text = _mask_pem(text)  # the one pattern that spans lines
    out: list[str] = []
    done = 0
    for start, end in _candidate_lines(text):
        out.append(text[done:start])
        out.append(_redact_line(text[start:end], bare_ok))
        done = end
    out.append(text[done:])
    return "".join(out)


__all__ = [
    "PASSWORD_OPTIONS",
    "REDACTED",
    "is_secret_name",
    "might_hold_secrets",
    "redact_argv",
    "redact_env",
    "redact_message",
    "redact_text",
    "redact_value",
]
