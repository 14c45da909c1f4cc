"""The ``kleio`` command line: the only place that parses arguments and prints errors.

``kleio CMD ...`` means ``kleio run CMD ...`` unless ``CMD`` is a subcommand; use
``kleio run -- CMD ...`` when a program's name collides with one.
"""

from __future__ import annotations

import os
import sys

from kleio import __version__
from kleio.client.stderr import one_line
from kleio.errors import EXIT_INTERNAL, EXIT_USAGE, KleioError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # collections.abc imports collections: milliseconds on every run
    from collections.abc import Sequence
    from typing import Any

#: subcommand -> module under kleio.cli (imported only when used, for start-up speed).
COMMANDS: dict[str, str] = {
    "run": "run",
    "exec": "run",
    "ls": "ls",
    "list": "ls",
    "info": "info",
    "cat": "cat",
    "tail": "tail",
    "config": "config_cmd",
    "init": "init",
    "sync": "sync",
    "branch": "branch",
    "diff": "diff",
    "checkout": "checkout",
    "pdb": "pdb",
    "plot": "plot",
    "ui": "ui",
    "save": "save",
    "worker": "worker",
    "stop": "stop",
    "best": "best",
    "export": "export",
    "rm": "rm",
    "tag": "tag",
    "note": "note",
    "artifacts": "artifacts",
    "compare": "diff",
    "check": "check",
}

#: ``kleio run``'s options, also accepted before a program without the word ``run``.
RUN_OPTIONS = frozenset(
    {
        "--allow-code-change",
        "--allow-env-change",
        "--allow-any-change",
        "--allow-broken",
        "--tag",
        "-q",
        "--quiet",
        "--stop-on",
        "--db",
    }
)

GLOBAL_HELP = f"""usage: kleio [--db URI] [--debug] COMMAND [ARGS...]
       kleio [--db URI] [RUN OPTIONS] PROGRAM [ARGS...]   (same as: kleio run ...)

kleio {__version__}: run any command as a reproducible, searchable trial.

commands:
  run       run a command as a trial, or resume a trial by id (alias: exec)
  ls        list trials (alias: list)
  info      show a trial's command, status history, code, environment and host
  cat       print a trial's journalled output or statistics
  tail      print the last lines of a trial's output; -f follows it
  config    show every setting, its value and where it came from
  init      write a commented kleio.yaml here and create the journal
  sync      replay events a dead runner left in the local spool
  branch    make a new trial from another: new option values, or a cut of its history
  diff      compare trials: two in depth (code, environment), more side by side
            (alias: compare)
  checkout  materialize a trial's code state into a new directory
  pdb       explore a trial in a debugger, or re-run it under one
  plot      draw trials' statistics as learning curves (PNG, SVG or PDF)
  ui        serve a live, read-only dashboard of the journal to a web browser
  save      register a trial without running it (for workers)
  worker    run registered trials until none is left
  stop      ask a running trial to stop (it becomes 'suspended', resumable)
  best      print the id of the best trial by a metric (for scripts)
  export    write trials (and their statistics) as CSV, JSON lines or Parquet
  rm        delete trials, their journal and the blobs nothing else uses
  tag       add or remove tags of a trial
  note      set or show the note of a trial
  artifacts list a trial's artifacts, or write one out
  check     run the checks (NaN, divergence, plateau...) over trials' journals

global options:
  --db URI   journal to use (sqlite://PATH, mongodb://..., mongodb+srv://...); also
             after a command: 'kleio ls --db URI', 'kleio run --db URI PROGRAM'
  --debug    show tracebacks of errors (also KLEIO_DEBUG=1)
  --version  print kleio's version
  -h, --help show this help; 'kleio COMMAND --help' for a command's options
"""


def _split_globals(argv: list[str]) -> tuple[dict[str, object], list[str]]:
    flags: dict[str, object] = {"db": None, "debug": False}
    i = 0
    while i < len(argv):
        after_db = _take_db(argv, i, flags)
        if after_db is not None:
            i = after_db
        elif argv[i] == "--debug":
            flags["debug"] = True
            i += 1
        else:
            break
    return flags, argv[i:]


def _take_db(argv: list[str], i: int, flags: dict[str, object]) -> int | None:
    """If ``argv[i]`` is ``--db URI`` or ``--db=URI``: set ``flags["db"]`` and return the
    index after it; else None."""
    token = argv[i]
    if token == "--db":
        if i + 1 >= len(argv):
            raise UsageError("--db needs a URI", "e.g. --db sqlite:///tmp/kleio.db")
        flags["db"] = argv[i + 1]
        return i + 2
    if token.startswith("--db="):
        flags["db"] = token[len("--db=") :]
        return i + 1
    return None


#: Commands that end by running a program: their process exits at once when they are done
#: (see :func:`main`).
FAST_EXIT = frozenset({"run", "exec", "branch", "worker"})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kleio`` console script; returns the exit code.

    Run as the process's entry point (``argv`` None) by a command that ran a program, it
    does not return: once the journal is closed and stdout and stderr are flushed, the
    process exits with ``os._exit``. Tearing down the interpreter (every module, every
    object) would only add milliseconds to each run after everything is safe.
    """
    if argv is None:
        _guard_stdio()
    code = _main(argv)
    git = sys.modules.get("kleio.git")
    if git is not None:  # a git status started ahead and never read (the run was refused)
        git.abandon_started()
    if argv is None and _ran is not None and _ran in FAST_EXIT:
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:  # None: the descriptor was closed at start
                    stream.flush()
            except (OSError, ValueError, KeyboardInterrupt):  # a late Ctrl-C: exit anyway
                pass
        os._exit(code)
    return code


class _Forgiving:
    """kleio's stderr when it cannot be written (``2>/dev/full``, a closed pipe): a message
    that cannot be shown must not stop a run that was reserved, nor lose the trial."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _guard_stdio() -> None:
    """Descriptors 0, 1 and 2 closed at start are opened on /dev/null (else the journal,
    a pipe or the socket would be given one of them, and the program's output written into
    it); stderr's messages never raise."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
    if sys.stderr is None:
        sys.stderr = open(  # noqa: SIM115 - the process's stderr, for its whole life
            2, "w", encoding="utf-8", errors="backslashreplace", closefd=False
        )
    if sys.stdout is None:
        sys.stdout = open(  # noqa: SIM115 - the process's stdout, for its whole life
            1, "w", encoding="utf-8", errors="backslashreplace", closefd=False
        )
    sys.stderr = _Forgiving(sys.stderr)


#: The command :func:`_main` dispatched to, once known.
_ran: str | None = None

#: Commands that run until the user presses Ctrl-C: they exit 130 without "error: interrupted."
STOPPED_BY_CTRL_C = frozenset({"tail", "ui"})


def _main(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("KLEIO_DEBUG", "") not in ("", "0")
    try:
        flags, rest = _split_globals(args)
        debug = debug or bool(flags["debug"])
        return _dispatch(rest, flags)
    except KleioError as error:
        if debug:
            _print_traceback()
        sys.stderr.write(f"error: {_masked(one_line(str(error), lines=True))}\n")
        return error.exit_code
    except KeyboardInterrupt:
        # Ctrl-C is how one stops `kleio tail -f` and `kleio ui`: no error line for them.
        if _ran not in STOPPED_BY_CTRL_C:
            sys.stderr.write("error: interrupted.\n")
        return 130
    except BrokenPipeError:
        # `kleio cat ID | head`: the reader left; that is not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as error:  # a bug: one line, plus the traceback with --debug
        if debug:
            _print_traceback()
        said = _masked(one_line(str(error), lines=True))
        sys.stderr.write(
            f"error: internal error: {type(error).__name__}: {said}. "
            "Run again with --debug for the traceback and please report it.\n"
        )
        return EXIT_INTERNAL


def _dispatch(rest: list[str], flags: dict[str, object]) -> int:
    """Run what the words after the global options ask: help, the version, or a command."""
    global _ran
    if not rest or rest[0] in ("-h", "--help", "help"):
        if not rest:
            sys.stderr.write(GLOBAL_HELP)
            return EXIT_USAGE
        sys.stdout.write(GLOBAL_HELP)
        return 0
    if rest[0] == "--version":
        print(f"kleio {__version__}")
        return 0
    name, rest = _command_of(rest)
    if name not in _TAKES_A_PROGRAM:
        rest = _lift_db(rest, flags)
    qualified = f"kleio.cli.{COMMANDS[name]}"
    __import__(qualified)  # importlib's own import costs more than this whole line
    module = sys.modules[qualified]
    _ran = name
    code: int = module.main(rest, flags)
    return code


#: Commands whose words after their own options are a program's command line (``run`` and
#: ``save`` take ``--db`` among their leading options; ``branch`` only before its name).
_TAKES_A_PROGRAM = frozenset({"run", "exec", "save", "branch"})


def _lift_db(rest: list[str], flags: dict[str, object]) -> list[str]:
    """A reading command's arguments without ``--db URI`` / ``--db=URI`` (anywhere before
    ``--``), which set ``flags["db"]``: ``kleio ls --db URI`` as ``kleio --db URI ls``."""
    kept: list[str] = []
    i = 0
    while i < len(rest):
        if rest[i] == "--":
            kept.extend(rest[i:])
            break
        after_db = _take_db(rest, i, flags)
        if after_db is None:
            kept.append(rest[i])
            i += 1
        else:
            i = after_db
    return kept


def _command_of(rest: list[str]) -> tuple[str, list[str]]:
    """The command the words name, and its arguments: a program's name means ``run``."""
    if rest[0] in COMMANDS:
        return rest[0], rest[1:]
    if rest[0] in RUN_OPTIONS or rest[0].startswith(("--tag=", "--stop-on=")):
        return "run", rest  # `kleio --allow-env-change python train.py`: run's own options
    if rest[0].startswith("-") and rest[0] != "--":
        raise UsageError(f"unknown option {rest[0]!r}", "see 'kleio --help' for the valid options")
    return "run", rest


def _masked(text: str) -> str:
    """``text`` with the secrets it may quote masked.

    Messages quote what the user typed: a program that was not found, a suggestion to type
    the command again, argparse's "unrecognized arguments: --password x", a --db URI. All of
    them pass here, so that no message of any command can show a password on a screen or in
    a CI log.
    """
    from kleio.redact import redact_message

    try:
        return redact_message(text)
    except Exception:  # a bug in masking: withhold the text rather than risk a secret
        return "(message withheld: it could not be checked for secrets)"


def _print_traceback() -> None:
    import traceback

    sys.stderr.write(_masked(traceback.format_exc()))
