"""Reservation of a trial: an optimistic compare-and-append on the journal (DESIGN §3).

Every execution of a trial starts with a status event at ``first_seq(execution)``. To
reserve, a runner reads the trial's newest status event, checks it may take the trial, and
appends the first event of the next execution. The key ``(trial_id, seq)`` is unique in every
backend, so of N racing runners exactly one insert succeeds; the others re-read, see a live
holder, and fail with :class:`~kleio.errors.TrialBusy`.

A holder is dead when its heartbeat is older than ``stale_after`` seconds, or when it ran on
this host and its pid is gone (or was reused by another process). A dead holder is taken
over: the execution then starts with a ``failover`` event followed by ``reserved``.
"""

from __future__ import annotations

import os
import time

from kleio.errors import NotReservable, TrialBusy, TrialNotFound
from kleio.storage.base import Store, encode, execution_of, first_seq, short_id

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any

RESERVABLE = ("new", "interrupted", "suspended", "failover")
HELD = ("reserved", "running")


def hostname(configured: str = "") -> str:
    """The host name of runners and of the host snapshot: kleio's only one.

    ``configured`` is the ``hostname`` setting (``kleio.yaml``, ``KLEIO_HOSTNAME``) when the
    caller has the configuration; else ``$KLEIO_HOSTNAME``, else the machine's name. It
    lives here, not in :mod:`kleio.snapshot.host`, so that the commands that name runners
    (``info``, ``tail``, ``stop``) need no snapshot module.
    """
    override = configured or os.environ.get("KLEIO_HOSTNAME")
    if override:
        return override
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


def process_start(pid: int) -> float | None:
    """Return a stable start stamp of a process (to tell a reused pid apart), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        # Field 22 (starttime), counted after the parenthesised command name.
        return float(stat.rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        pass
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:
        return None


def pid_alive(pid: int | None) -> bool:
    """Tell whether a process with this pid runs on this host (maybe another user's).

    A zombie (ended, not reaped yet: common in containers whose init never reaps) is dead.
    """
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def runner_identity(host: str) -> dict[str, Any]:
    pid = os.getpid()
    return {"host": host, "pid": pid, "pid_start": process_start(pid), "since": time.time()}


def holder_alive(
    runner: dict[str, Any] | None,
    heartbeat_at: float | None,
    *,
    host: str,
    stale_after: float,
    now: float | None = None,
) -> bool:
    """Tell whether the runner holding a trial is still alive."""
    now = time.time() if now is None else now
    if not runner:
        return False
    last = heartbeat_at or runner.get("since") or 0.0
    if now - last > stale_after:
        return False
    if runner.get("host") == host:
        pid = runner.get("pid")
        if not isinstance(pid, int) or not pid_alive(pid):
            return False
        started = runner.get("pid_start")
        if started is not None and process_start(pid) not in (None, started):
            return False
    return True


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def busy_error(trial_id: str, runner: dict[str, Any], heartbeat_at: float | None) -> TrialBusy:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(runner.get("since") or 0))
    beat = _ago(time.time() - heartbeat_at) if heartbeat_at else "none yet"
    short = short_id(trial_id)
    return TrialBusy(
        f"trial {short} is already running on host {runner.get('host')} "
        f"(pid {runner.get('pid')}) since {since}, last heartbeat {beat}",
        f"follow it with 'kleio tail -f {short}'",
    )


def completed_error(trial_id: str) -> NotReservable:
    """A completed trial is never run again (told before any change check)."""
    short = short_id(trial_id)
    return NotReservable(
        f"trial {short} is completed and is not run again",
        f"read it with 'kleio cat {short}', or start a new trial with "
        f"'kleio branch {short} --OPTION VALUE'",
    )


_RUNNER_KEYS = ("host", "pid", "pid_start", "since")


def current_holder(doc: dict[str, Any], last: Any) -> tuple[dict[str, Any], float | None]:
    """Return (the runner holding a trial, its newest sign of life) for a held status.

    The journal's newest status event names its runner (``reserved`` and a resumed
    ``running`` under ``runner``, the first ``running`` inline) and is the truth: on MongoDB
    the trial document's cached ``runner`` and ``heartbeat_at`` are written after the event,
    so a reader between the two would see the previous, dead, holder and take a live trial
    over. When the document names that same runner, its heartbeat is the runner's; when it
    still names another, the event's time is the new runner's only sign of life yet.
    """
    data = last.data if last is not None else {}
    named = data.get("runner") or (
        {key: data[key] for key in _RUNNER_KEYS if key in data} if "pid" in data else {}
    )
    cached = doc.get("runner") or {}
    if (
        last is not None
        and named
        and any(cached.get(key) != named.get(key) for key in ("host", "pid", "since"))
    ):
        return named, last.time  # the document lags: its runner and heartbeat are older
    return (cached or named), doc.get("heartbeat_at")


class Reservation:
    """What :func:`reserve` won: the execution, its next sequence number, the status the
    trial had, and the dead runner it was taken over from (None if none)."""

    __slots__ = ("execution", "failover_of", "next_seq", "previous_status")

    def __init__(
        self,
        execution: int,
        next_seq: int,
        previous_status: str,
        failover_of: dict[str, Any] | None,
    ) -> None:
        self.execution, self.next_seq = execution, next_seq
        self.previous_status, self.failover_of = previous_status, failover_of


def reserve(
    store: Store,
    trial_id: str,
    *,
    runner: dict[str, Any],
    stale_after: float,
    allow_broken: bool = False,
    attempts: int = 5,
) -> Reservation:
    """Reserve ``trial_id`` for ``runner`` or raise why it cannot be.

    Raises:
        TrialNotFound: no such trial.
        TrialBusy: a live runner holds it.
        NotReservable: it is completed, or broken without ``allow_broken``.
    """
    short = short_id(trial_id)
    for _ in range(attempts):
        doc = store.get_trial(trial_id=trial_id)
        if doc is None:
            raise TrialNotFound(f"no trial with id {short}")
        last = store.last_status(trial_id=trial_id)
        status = last.data.get("status", "new") if last else "new"
        execution = execution_of(last.seq) + 1 if last else 1
        failover_of, last_beat = None, None
        if status == "failover" and last is not None and (time.time() - last.time < stale_after):
            # Another runner is taking the trial over right now (its 'reserved' follows).
            taker = last.data.get("by") or {}
            raise busy_error(trial_id, taker, last.time)
        if status in HELD:
            holder, beat = current_holder(doc, last)
            if holder_alive(holder, beat, host=runner["host"], stale_after=stale_after):
                raise busy_error(trial_id, holder, beat)
            failover_of, last_beat = holder, beat
        elif status == "completed":
            raise completed_error(trial_id)
        elif status == "broken" and not allow_broken:
            raise NotReservable(
                f"trial {short} is broken (its last run exited with code {doc.get('exit_code')})",
                f"run it again with 'kleio run --allow-broken {short}'",
            )
        seq = first_seq(execution)
        now = time.time()
        fields = {
            "status": "reserved",
            "status_at": now,
            "runner": runner,
            "heartbeat_at": now,
            "ended_at": None,
            "exit_code": None,
            "stop_requested": None,
        }
        if failover_of is not None:
            first = (
                seq,
                "status",
                now,
                # The dead runner's last heartbeat: its execution ran until then at least.
                encode(
                    {
                        "status": "failover",
                        "runner": failover_of,
                        "by": runner,
                        "heartbeat_at": last_beat,
                    }
                ),
            )
            if not store.try_append(trial_id=trial_id, event=first):
                continue
            seq += 1
            if not store.try_append(
                trial_id=trial_id,
                event=(seq, "status", now, encode({"status": "reserved", "runner": runner})),
                fields=fields,
            ):  # pragma: no cover - only we write in this execution now
                continue
        elif not store.try_append(
            trial_id=trial_id,
            event=(seq, "status", now, encode({"status": "reserved", "runner": runner})),
            fields=fields,
        ):
            continue
        return Reservation(execution, seq + 1, status, failover_of)
    doc = store.get_trial(trial_id=trial_id) or {}
    raise busy_error(trial_id, doc.get("runner") or {}, doc.get("heartbeat_at"))


#: Statuses that end an execution, as the last status event of a trial.
ENDED = ("completed", "broken", "interrupted", "suspended")


def status_of(store: Store, doc: dict[str, Any], *, host: str, stale_after: float) -> str:
    """:func:`display_status`, but a trial that would show as ``lost`` whose last status
    event is final shows that status: a runner killed between journalling its final event
    and updating the trial's cached fields left them saying ``running`` (one more read,
    only for such trials; nothing is written, readers may be read-only)."""
    status = display_status(doc, host=host, stale_after=stale_after)
    if status == "lost":
        last = store.last_status(trial_id=doc["id"])
        final = last.data.get("status") if last is not None else None
        if final in ENDED:
            return str(final)
    return status


def display_status(doc: dict[str, Any], *, host: str, stale_after: float) -> str:
    """The status to show a person: a held trial whose runner is dead shows as ``lost``."""
    status = str(doc.get("status", "new"))
    if status in HELD and not holder_alive(
        doc.get("runner"), doc.get("heartbeat_at"), host=host, stale_after=stale_after
    ):
        return "lost"
    return status
