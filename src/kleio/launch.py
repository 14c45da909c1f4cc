"""Prepare and launch trials: the one path under ``kleio run``, ``kleio branch`` and workers.

Starting or resuming a trial always goes through the same four steps:

1. **prepare**: build the trial document of a command (identity and snapshots) and store
   it if it is new (:func:`prepare_command`), or resolve a recorded trial and take the
   snapshot of now to compare with its own (:func:`prepare_recorded`);
2. **gate**: a trial whose code or environment changed since it was created is refused,
   unless that kind of change is allowed, and then it is branched at its last event and the
   branch is the trial to run (:func:`gate`). A completed trial is refused as completed
   before any change is looked at (:func:`refuse_completed`);
3. **reserve** it (:func:`reserve_trial`, the compare-and-append of DESIGN §3);
4. **execute** the reserved trial under the Runner (:func:`execute`).

Every step returns data (:class:`Prepared`, :class:`Branched`, :class:`Reserved`) or
raises a :class:`~kleio.errors.KleioError` carrying data (:class:`~kleio.errors.ChangeRefused`
holds the list of changes and the matching branch). Nothing here prints: the CLI and the
worker render the results in their own words.
"""

from __future__ import annotations

import os

from kleio.errors import ChangeRefused
from kleio.storage.base import Store
from kleio.trial import short_id

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from collections.abc import Sequence
    from typing import Any

    from kleio.config import Config

#: The kinds of change the gate knows, in the order they are listed.
KINDS = ("code", "env")

#: The ``--allow-*`` flag accepting each set of changed kinds.
_FLAGS = {("code",): "--allow-code-change", ("env",): "--allow-env-change"}


class Branched:
    """A branch the gate (or ``kleio branch``) made or found again.

    Attributes:
        parent: the trial branched from.
        doc: the branch's trial document, as stored.
        reason: why it was made (kept in the document as ``branch_reason``).
        new: False when the same branch existed already (same parent, cut and command).
    """

    __slots__ = ("doc", "new", "parent", "reason")

    def __init__(
        self, *, parent: dict[str, Any], doc: dict[str, Any], reason: str, new: bool
    ) -> None:
        self.parent, self.doc, self.reason, self.new = parent, doc, reason, new


class Prepared:
    """A trial ready to be gated and launched.

    Attributes:
        doc: the trial document as stored (the branch, once the gate made one).
        argv: the command to run, as typed (not redacted).
        cwd: the directory to run it in.
        current: ``(doc, blobs)`` describing the command now (its snapshots of now).
        created: the trial was created by this preparation.
        branched: the branches the gate made or found, oldest first.
    """

    __slots__ = ("argv", "branched", "created", "current", "cwd", "doc")

    def __init__(
        self,
        *,
        doc: dict[str, Any],
        argv: list[str],
        cwd: str,
        current: tuple[dict[str, Any], dict[str, bytes]],
        created: bool = False,
    ) -> None:
        self.doc, self.argv, self.cwd, self.current = doc, argv, cwd, current
        self.created = created
        self.branched: list[Branched] = []


class Reserved:
    """A reservation held by this process (a :class:`kleio.reservation.Reservation`), and
    the identity of the runner holding it."""

    __slots__ = ("reservation", "runner")

    def __init__(self, *, reservation: Any, runner: dict[str, Any]) -> None:
        self.reservation, self.runner = reservation, runner

    @property
    def failover_of(self) -> dict[str, Any] | None:
        """The dead runner's identity when the trial was taken over from it."""
        held: dict[str, Any] | None = self.reservation.failover_of
        return held


# -- 1. prepare ----------------------------------------------------------------------------


def is_trial_reference(command: list[str]) -> bool:
    """``kleio run 3f2a1b7``: a lone token that looks like an id and names no program."""
    from kleio.trial import looks_like_id, which

    return (
        len(command) == 1
        and looks_like_id(command[0])
        and which(command[0]) is None
        and not os.path.exists(command[0])
    )


def prepare_command(
    store: Store, config: Config, argv: list[str], cwd: str, tags: Sequence[str] = ()
) -> Prepared:
    """Build the trial of ``argv`` run in ``cwd`` and store it unless it exists.

    A trial journalled before the identity form (:func:`kleio.identity.legacy_id`) is
    found under its old id: running its command again resumes it, as it always did.
    """
    from kleio.identity import find_recorded
    from kleio.trial import build_trial, store_trial

    new, blobs = build_trial(argv, cwd, config, list(tags))
    found = find_recorded(store, new)
    if found is not None:
        return Prepared(doc=found, argv=list(argv), cwd=cwd, current=(new, blobs))
    created = store_trial(store, new, blobs)
    doc = store.get_trial(trial_id=new["id"]) or new
    return Prepared(doc=doc, argv=list(argv), cwd=cwd, current=(new, blobs), created=created)


def prepare_recorded(
    store: Store,  # noqa: ARG001 - taken as every launch step takes it
    config: Config,
    doc: dict[str, Any],
    cwd: str,
) -> Prepared:
    """Prepare a recorded trial for a resume: its own command in its own directory.

    Raises:
        UsageError: its command line held secrets, which were not journalled.
    """
    from kleio.errors import UsageError
    from kleio.trial import build_trial, execution_dir

    if doc.get("redacted"):
        raise UsageError(
            f"trial {short_id(doc['id'])}'s command held secrets that were not journalled",
            "run it again with its full command line",
        )
    argv = list(doc.get("argv") or [])
    where = execution_dir(doc, cwd)
    return Prepared(doc=doc, argv=argv, cwd=where, current=build_trial(argv, where, config))


# -- 2. gate -------------------------------------------------------------------------------


def allowed_changes(options: dict[str, Any]) -> set[str]:
    """The kinds of change (``code``, ``env``) the ``allow_*_change`` options accept."""
    allowed = set()
    if options.get("allow_code_change") or options.get("allow_any_change"):
        allowed.add("code")
    if options.get("allow_env_change") or options.get("allow_any_change"):
        allowed.add("env")
    return allowed


def flag_for(kinds: Any) -> str:
    """The one ``--allow-*`` flag that accepts every kind in ``kinds``."""
    return _FLAGS.get(tuple(sorted(kinds)), "--allow-any-change")


def detect_changes(doc: dict[str, Any], current: dict[str, Any]) -> dict[str, list[str]]:
    """The changes between a trial's recorded snapshots and the ``current`` document's.

    Returns:
        ``{"code": [...], "env": [...]}`` holding only the kinds with a change that refuses
        a resume (see :mod:`kleio.snapshot.compare` and docs/reproducibility.rst: a package
        added, or a device or thread placement, never refuses), each a list of lines for
        people; empty when nothing that matters changed.
    """
    from kleio.snapshot.compare import code_changes, env_changes

    found: dict[str, list[str]] = {}
    for kind, compare in (("code", code_changes), ("env", env_changes)):
        lines = [
            change.message
            for change in compare(doc.get(kind) or {}, current.get(kind) or {})
            if change.refuses
        ]
        if lines:
            found[kind] = lines
    return found


def summarize_changes(changed: dict[str, list[str]]) -> str:
    """One short phrase for a branch's reason, e.g. ``code changed: train.py (+1 -0)``."""
    parts = []
    for kind in KINDS:
        lines = changed.get(kind) or []
        if lines:
            more = f" and {len(lines) - 1} more" if len(lines) > 1 else ""
            parts.append(f"{kind} changed: {lines[0]}{more}")
    return "; ".join(parts)


def refuse_completed(doc: dict[str, Any], allowed: set[str]) -> None:
    """A completed trial is refused as completed before any change is looked at.

    With a change allowed, the gate branches it instead (the branch runs the new code).

    Raises:
        NotReservable: ``doc`` is completed and no change is allowed.
    """
    if doc.get("status") == "completed" and not allowed:
        from kleio.reservation import completed_error

        raise completed_error(doc["id"])


def gate(
    store: Store, prepared: Prepared, *, allowed: set[str], tags: Sequence[str] = ()
) -> Prepared:
    """Check ``prepared``'s trial against the snapshots of now; branch allowed changes.

    A branch made earlier for the same change is found again (its id is deterministic) and
    checked in turn, so a chain of branches each made for an older change ends at the one
    that matches now. ``prepared`` is updated in place (``doc``, ``branched``) and returned.

    Raises:
        ChangeRefused: a change of a kind not allowed; it carries the changes, the trial and
            the branch already made for this change when one exists (``branch``).
    """
    from kleio.branching import create_branch

    current = prepared.current[0]
    for _ in range(16):
        doc = prepared.doc
        changed = detect_changes(doc, current)
        if not changed:
            return prepared
        refused = [kind for kind in changed if kind not in allowed]
        if refused:
            count = sum(len(lines) for lines in changed.values())
            what = " and ".join("environment" if k == "env" else k for k in changed)
            raise ChangeRefused(
                f"the {what} of trial {short_id(doc['id'])} changed since it was created "
                f"({count} difference{'s' if count > 1 else ''})",
                f"run again with {flag_for(changed)} to branch it and run the branch",
                trial_id=doc["id"],
                changes=changed,
                flag=flag_for(changed),
                branch=matching_branch(store, doc, current),
            )
        cut = store.last_seq(trial_id=doc["id"]) or 0
        reason = summarize_changes(changed)
        child, new = create_branch(
            store,
            doc,
            cut=cut,
            reason=reason,
            argv=prepared.argv,
            cwd=prepared.cwd,
            current=prepared.current,
            tags=tags,
        )
        prepared.branched.append(Branched(parent=doc, doc=child, reason=reason, new=new))
        prepared.doc = child
    return prepared


def matching_branch(store: Store, doc: dict[str, Any], current: dict[str, Any]) -> str | None:
    """The id of a branch of ``doc`` made for this very change, if one exists.

    Only a branch of the same command, options and configuration files qualifies: a branch
    made with other option values is another experiment, whatever its code.
    """
    for child in store.find_trials(parent_id=doc["id"], limit=50):
        if child.get("command") != doc.get("command") or child.get("config_files") != doc.get(
            "config_files"
        ):
            continue
        if not detect_changes(child, current):
            return str(child["id"])
    return None


# -- 3. reserve, 4. execute ----------------------------------------------------------------


def reserve_trial(
    store: Store,
    config: Config,
    trial_id: str,
    *,
    allow_broken: bool = False,
    host: str | None = None,
) -> Reserved:
    """Reserve ``trial_id`` for a runner of this process.

    Raises:
        TrialBusy: a live runner holds it.
        NotReservable: it is completed, or broken without ``allow_broken``.
    """
    from kleio.reservation import hostname, reserve, runner_identity

    runner = runner_identity(host or hostname(config.hostname))
    reservation = reserve(
        store, trial_id, runner=runner, stale_after=config.stale_after, allow_broken=allow_broken
    )
    return Reserved(reservation=reservation, runner=runner)


def hold_signals() -> object:
    """Block the signals a runner forwards to its program (those not ignored), until
    :func:`release_signals`: one that arrives between the reservation and the runner's own
    blocking waits for the runner, which forwards it. Returns the mask to restore."""
    import _signal

    from kleio.runner import waited_signals

    forwarded = waited_signals() - {_signal.SIGCHLD, _signal.SIGWINCH}
    return _signal.pthread_sigmask(_signal.SIG_BLOCK, forwarded)


def release_signals(mask: object) -> None:
    """Restore the signal mask :func:`hold_signals` returned."""
    import _signal

    _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)


def execute(
    store: Store, config: Config, doc: dict[str, Any], reserved: Reserved, argv: list[str], cwd: str
) -> int:
    """Run one execution of a reserved trial; return the program's exit code."""
    from kleio.runner import run_reserved

    return run_reserved(
        store=store,
        config=config,
        trial_id=doc["id"],
        reservation=reserved.reservation,
        runner_info=reserved.runner,
        argv=argv,
        cwd=cwd,
    )


def failover_message(trial_id: str, held: dict[str, Any]) -> str:
    """The sentence telling that a dead runner's trial is taken over."""
    return (
        f"trial {short_id(trial_id)} was held by a dead runner (host {held.get('host')}, "
        f"pid {held.get('pid')}); taking it over"
    )


__all__ = [
    "Branched",
    "Prepared",
    "Reserved",
    "allowed_changes",
    "detect_changes",
    "execute",
    "failover_message",
    "flag_for",
    "gate",
    "hold_signals",
    "is_trial_reference",
    "matching_branch",
    "prepare_command",
    "prepare_recorded",
    "refuse_completed",
    "release_signals",
    "reserve_trial",
    "summarize_changes",
]
