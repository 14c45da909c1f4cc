"""The one error family of kleio and its documented exit codes.

Only the CLI boundary (:func:`kleio.cli.main`) turns a :class:`KleioError` into
``error: <message>`` on stderr and its ``exit_code``. The table is documented in
``docs/reference/exit-codes.rst``; a test keeps the two in sync.
"""

from __future__ import annotations

# kleio's own exit codes live in 64..79 so they stay apart from the usual codes
# of the programs it wraps (0, 1, 2, 126, 127, 128+N).
EXIT_USAGE = 64
EXIT_CONFIG = 65
EXIT_NOT_FOUND = 66
EXIT_AMBIGUOUS = 67
EXIT_BUSY = 68
EXIT_NOT_RESERVABLE = 69
EXIT_CHANGED = 70
EXIT_STORE = 71
EXIT_INTERNAL = 72
EXIT_NO_TTY = 73
EXIT_NOT_RUNNING = 74
EXIT_SKIPPED = 75
EXIT_MISSING_EXTRA = 76
# Codes borrowed from the shell for a command that cannot be started.
EXIT_CANNOT_EXECUTE = 126
EXIT_COMMAND_NOT_FOUND = 127

EXIT_CODES: dict[int, str] = {
    EXIT_USAGE: "bad usage: unknown option, missing argument, empty command",
    EXIT_CONFIG: "invalid or unreadable configuration file or value",
    EXIT_NOT_FOUND: "no trial matches the given id or prefix",
    EXIT_AMBIGUOUS: "the id prefix matches several trials",
    EXIT_BUSY: "the trial is reserved by a live runner",
    EXIT_NOT_RESERVABLE: "the trial is completed (or broken without --allow-broken)",
    EXIT_CHANGED: "code or environment changed since the trial's last run",
    EXIT_STORE: "the journal (database) cannot be opened or reached",
    EXIT_INTERNAL: "an unexpected internal error (a bug: please report it)",
    EXIT_NO_TTY: "an interactive command was started without a terminal",
    EXIT_NOT_RUNNING: "the trial is not running, so there is nothing to stop",
    EXIT_SKIPPED: "a worker skipped trials it could not run",
    EXIT_MISSING_EXTRA: "an optional extra the command needs is not installed",
    EXIT_CANNOT_EXECUTE: "the command exists but cannot be executed",
    EXIT_COMMAND_NOT_FOUND: "the command was not found",
}


class KleioError(Exception):
    """Base class of every error kleio reports to a user.

    Args:
        message: what happened, as one sentence.
        hint: what to do next, as one sentence (optional).
    """

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message.rstrip(".")
        self.hint = hint

    def __str__(self) -> str:
        text = self.message + "."
        if self.hint:
            hint = self.hint.rstrip(".")
            end = "" if hint.endswith(("?", "!")) else "."
            text += " " + hint[:1].upper() + hint[1:] + end
        return text


class UsageError(KleioError):
    exit_code = EXIT_USAGE


class ConfigError(KleioError):
    exit_code = EXIT_CONFIG


class TrialNotFound(KleioError):
    exit_code = EXIT_NOT_FOUND


class AmbiguousId(KleioError):
    exit_code = EXIT_AMBIGUOUS


class TrialBusy(KleioError):
    exit_code = EXIT_BUSY


class NotReservable(KleioError):
    exit_code = EXIT_NOT_RESERVABLE


class ChangeRefused(KleioError):
    """The code or environment of a trial changed and that kind of change was not allowed.

    Besides its sentence it carries the data to render: ``changes`` (``{"code": [...],
    "env": [...]}``, lines for people), the trial, the flag that would branch it, and the
    id of a branch already made for this change (``branch``), if any.
    """

    exit_code = EXIT_CHANGED

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        trial_id: str = "",
        changes: dict[str, list[str]] | None = None,
        flag: str = "",
        branch: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.trial_id = trial_id
        self.changes = changes or {}
        self.flag = flag
        self.branch = branch


class StoreUnavailable(KleioError):
    """The journal cannot be opened, reached or written."""

    exit_code = EXIT_STORE


class SchemaVersionError(StoreUnavailable):
    """The journal was written by a newer kleio."""


class NoJournal(StoreUnavailable):
    """The SQLite journal a reading command was pointed at does not exist."""


class CommandNotFound(KleioError):
    exit_code = EXIT_COMMAND_NOT_FOUND


class CannotExecute(KleioError):
    exit_code = EXIT_CANNOT_EXECUTE


class NotRunning(KleioError):
    exit_code = EXIT_NOT_RUNNING


class MissingExtra(KleioError):
    """An optional extra (``kleio[ui]``, ``kleio[plot]``) a command needs is not installed."""

    exit_code = EXIT_MISSING_EXTRA


class NoTerminal(KleioError):
    exit_code = EXIT_NO_TTY
