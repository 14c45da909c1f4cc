"""Secrets in command lines (options and their values) and in messages that quote them.

The rules are the package's (:mod:`kleio.redact`): long options by name, short options only
after a program known to take a password there (:data:`PASSWORD_OPTIONS`).
"""

from __future__ import annotations

import os

from kleio.argv import is_option
from kleio.redact.names import is_secret_name, takes_value
from kleio.redact.values import REDACTED, lazy, redact_value

# A token that reads as an option name: what a flag-like secret option may be followed by.
_OPTION_SHAPE = lazy(r"--?[A-Za-z][A-Za-z0-9_.-]*(?:=.*)?", "DOTALL")

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
            masked, mask_next = _masked_next(mask_next, token, option), None
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


def _masked_next(mode: str, token: str, option: bool) -> str | None:
    """The token after a secret option, masked as ``mode`` says; None to leave it."""
    if token == "--":
        return None  # the end of the options: the secret option had no value
    if mode == "user:password":
        user, colon, _ = token.partition(":")
        return user + colon + REDACTED if colon and not option else None
    if not option or mode == "any" or _OPTION_SHAPE.fullmatch(token) is None:
        return REDACTED
    return None


def _redact_option(
    token: str, program: str | None, subcommands: set[str]
) -> tuple[str | None, str | None]:
    """``(masked token or None, how to treat the next token or None)`` for one option."""
    name, eq, value = token.partition("=")
    if program is not None:
        found = _program_option(token, program, subcommands)
        if found is not None:
            return found
    if is_secret_name(name):
        if eq:
            return (name + "=" + REDACTED, None)
        return (None, "any" if takes_value(name) else "flag")
    return (None, None)


def _program_option(
    token: str, program: str, subcommands: set[str]
) -> tuple[str | None, str | None] | None:
    """:func:`_redact_option` for the options a known program gives a password with;
    None when ``token`` is not one of them."""
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
    return None


_WORD = lazy(r"\S+")
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
