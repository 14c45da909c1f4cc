"""``kleio pdb ID``: explore a trial in the debugger; ``--rerun`` re-executes it under one.

With a terminal the session is interactive. Without one, debugger commands are read from
stdin when it is a pipe or a file (``echo 'p trial.statistics[-1]' | kleio pdb ID``);
otherwise (``< /dev/null``, a closed stdin) there is nobody to talk to: exit code 73.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import Any

from kleio.cli.common import parser, store_from
from kleio.errors import NoTerminal, UsageError
from kleio.storage import Store
from kleio.trial import resolve_trial, short_id

BANNER = (
    "kleio pdb: trial {short} is loaded as `trial`: trial.info, trial.statistics, "
    "trial.artifacts, trial.artifact(filename, **metadata) -> bytes, trial.stdout; "
    "'c' or 'q' ends the session."
)


class Trial:
    """A trial as seen from the debugger: its document and its lineage's journal."""

    def __init__(self, store: Store, doc: dict[str, Any]) -> None:
        self._store = store
        self.info = doc
        self.id = doc["id"]

    def _events(self, kind: str) -> list[dict[str, Any]]:
        return [e.data for e in self._store.iter_lineage_events(trial_id=self.id, kinds=(kind,))]

    @property
    def statistics(self) -> list[dict[str, Any]]:
        return self._events("statistic")

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        return self._events("artifact")

    @property
    def stdout(self) -> list[str]:
        return [data.get("line", "") for data in self._events("stdout") if not data.get("partial")]

    def artifact(self, filename: str | None = None, **metadata: Any) -> bytes | None:
        """The bytes of the newest artifact matching ``filename`` and ``metadata``."""
        found = self._store.find_artifact(trial_id=self.id, filename=filename, metadata=metadata)
        if found is None:
            return None
        with self._store.open_blob(sha256=found.data["sha256"]) as handle:
            return handle.read()

    def __repr__(self) -> str:
        return (
            f"<kleio trial {short_id(self.id)} {self.info.get('status')}: "
            f"{' '.join(self.info.get('argv') or [])}>"
        )


def _stdin_mode() -> str:
    """``tty``, ``commands`` (a pipe or file to read commands from) or ``none``."""
    try:
        if os.isatty(0):
            return "tty"
        mode = os.fstat(0).st_mode
    except OSError:
        return "none"
    if stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode):
        return "commands"
    return "none"


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser(
        "pdb",
        "Explore a trial in the Python debugger (a `trial` object holds its "
        "info, statistics and artifacts), or --rerun its command under the debugger, "
        "stopping post-mortem on an exception. Without a terminal, debugger commands "
        "are read from stdin.",
        json_output=False,
    )
    p.add_argument("id", help="trial id or a unique prefix of it")
    p.add_argument(
        "--rerun",
        action="store_true",
        help="re-execute the command under the debugger, without journalling it",
    )
    args = p.parse_args(argv)
    mode = _stdin_mode()
    if mode == "none":
        raise NoTerminal(
            "kleio pdb needs a terminal, or debugger commands on stdin",
            "run it in a terminal, or pipe commands: echo 'p trial' | kleio pdb ID",
        )
    store, _ = store_from(flags)
    with store:
        doc = resolve_trial(store, args.id)
        if args.rerun:
            store.close()
            return _rerun(doc)
        import pdb

        debugger = pdb.Pdb()
        if mode != "tty":
            debugger.use_rawinput = False
        print(BANNER.format(short=short_id(doc["id"])))
        sys.stdout.flush()
        debugger.run("pass", {"__name__": "__kleio_pdb__", "trial": Trial(store, doc)})
    return 0


def _rerun(doc: dict[str, Any]) -> int:
    """Run the trial's Python command under ``python -m pdb``, journalling nothing.

    The program stops at its first line: set breakpoints (``b train.py:42``), then ``c``;
    an uncaught exception stops it post-mortem in the frame that raised. Commands come
    from the terminal, or from stdin when it is a pipe or a file.
    """
    import subprocess

    from kleio.argv import is_python, split_program
    from kleio.trial import execution_dir, which

    short = short_id(doc["id"])
    argv = list(doc.get("argv") or [])
    if doc.get("redacted"):
        raise UsageError(
            f"trial {short}'s command held secrets that were not journalled",
            "run it under the debugger yourself with its full command line",
        )
    if not argv or not is_python(argv[0]):
        raise UsageError(
            f"trial {short} does not run Python ({' '.join(argv[:1])})",
            "kleio pdb --rerun debugs Python commands only",
        )
    target, start = split_program(argv)
    if target is None:
        raise UsageError(
            f"trial {short} runs Python code given with -c or stdin",
            "kleio pdb --rerun needs a script or a -m module",
        )
    if start >= 3 and argv[start - 1] == target and argv[start - 2] == "-m":
        module, options = True, argv[1 : start - 2]
    elif argv[start - 1] == "-m" + target:
        module, options = True, argv[1 : start - 1]
    else:
        module, options = False, argv[1 : start - 1]
    python = argv[0] if which(argv[0]) or os.path.exists(argv[0]) else sys.executable
    command = [python, *options, "-m", "pdb", *(["-m"] if module else []), target, *argv[start:]]
    cwd = execution_dir(doc, os.getcwd())
    _warn_if_changed(doc, argv, cwd)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KLEIO_TRIAL_ID", "KLEIO_CHANNEL", "KLEIO_LEDGER")
    }
    sys.stderr.write(
        f"kleio pdb: re-running trial {short} under the debugger, stopped at its "
        "first line ('b FILE:LINE' then 'c'; an exception stops it post-mortem); "
        "nothing is journalled\n"
    )
    sys.stderr.flush()
    return subprocess.call(command, cwd=cwd, env=env)


def _warn_if_changed(doc: dict[str, Any], argv: list[str], cwd: str) -> None:
    """Say so when the code or environment of now is not the trial's: the debugger runs
    today's code, and its line numbers may not be the ones the trial ran."""
    from kleio.launch import detect_changes, summarize_changes
    from kleio.trial import build_trial

    try:
        current, _ = build_trial(argv, cwd, None)  # type: ignore[arg-type]
        changed = detect_changes(doc, current)
    except Exception:  # a snapshot that fails must not keep anyone from debugging
        return
    if changed:
        sys.stderr.write(
            f"kleio pdb: warning: this is not the code trial "
            f"{short_id(doc['id'])} ran ({summarize_changes(changed)}); the "
            "debugger runs the current one\n"
        )
