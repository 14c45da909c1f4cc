"""``kleio rm ID...``: delete trials, their journal and the blobs no other trial uses.

Branches: a branch reads its parent's history up to its cut, so removing a parent alone
would silently cut its branches' statistics, output and artifacts. ``kleio rm`` therefore
refuses a trial that has branches (listing them) unless ``--with-branches`` is given, which
removes the branches (and theirs) too. Removing a branch never touches its parent.

A trial held by a live runner is refused (exit code 68); one whose runner died (``lost``)
can be removed, once ``kleio sync`` journalled what that runner left on this host (refused
with 68 before: a later sync would bring those events back without their trial).

Blobs (code snapshots, artifacts) are content-addressed and shared: only those no remaining
trial refers to are deleted.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any

from kleio.cli.common import emit, human_size, parser, print_json
from kleio.config import Config
from kleio.storage import Store
from kleio.trial import short_id

_DIGEST = re.compile(r"[0-9a-f]{64}")


def _digests(value: Any, skip: frozenset[str] = frozenset({"id", "parent"})) -> Iterator[str]:
    """Every sha256 digest a trial document holds (code snapshot blobs, config files...)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(v for k, v in item.items() if k not in skip)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and len(item) == 64 and _DIGEST.fullmatch(item):
            yield item


def blobs_of(store: Store, doc: dict[str, Any]) -> set[str]:
    """The blobs a trial refers to: its document's digests and its own artifacts' bytes."""
    found = set(_digests(doc))
    for event in _own_events(store, doc["id"], ("artifact",)):
        digest = event.data.get("sha256")
        if isinstance(digest, str):
            found.add(digest)
    return found


def _own_events(store: Store, trial_id: str, kinds: tuple[str, ...]) -> Iterator[Any]:
    after: int | None = None
    while True:
        events = store.read_events(trial_id=trial_id, kinds=kinds, after=after, limit=5000)
        yield from events
        if len(events) < 5000:
            return
        after = events[-1].seq


def descendants(store: Store, trial_id: str) -> list[dict[str, Any]]:
    """Every branch of a trial, and theirs, deepest first."""
    found: list[dict[str, Any]] = []
    stack = [trial_id]
    seen = {trial_id}
    while stack:
        for child in store.find_trials(parent_id=stack.pop()):
            if child["id"] not in seen:
                seen.add(child["id"])
                found.append(child)
                stack.append(child["id"])
    return list(reversed(found))


def _size(count: int) -> str:
    return human_size(count, "bytes")


def _plural(count: int, word: str, plural: str = "s") -> str:
    return f"{count} {word}{plural if count != 1 else ''}"


def _deletion_order(
    store: Store, chosen: dict[str, dict[str, Any]], with_branches: bool
) -> list[dict[str, Any]]:
    """The trials to delete, each branch before its parent; a trial with branches not
    chosen is refused unless ``with_branches``."""
    from kleio.errors import UsageError

    order: list[dict[str, Any]] = []
    listed: set[str] = set()
    for doc in list(chosen.values()):
        branches = descendants(store, doc["id"])
        others = [b for b in branches if b["id"] not in chosen]
        if others and not with_branches:
            shown = ", ".join(short_id(b["id"]) for b in others[:5])
            more = " ..." if len(others) > 5 else ""
            raise UsageError(
                f"trial {short_id(doc['id'])} has {_plural(len(others), 'branch', 'es')} "
                f"({shown}{more}) that read its history",
                "give --with-branches to delete them too, or remove the branches first",
            )
        for item in [*branches, doc]:  # deepest first: no branch outlives its parent
            if item["id"] not in listed:
                listed.add(item["id"])
                order.append(item)
    return order


def _refuse_busy(store: Store, order: list[dict[str, Any]], config: Config) -> None:
    """Refuse (exit code 68) a trial held by a live runner, or one whose dead runner left
    events on this host that ``kleio sync`` would bring back without their trial."""
    from kleio.errors import TrialBusy
    from kleio.ledger import leftovers
    from kleio.reservation import HELD, display_status, hostname

    host = hostname(config.hostname)
    for doc in order:
        status = display_status(doc, host=host, stale_after=config.stale_after)
        if doc.get("status") in HELD and status != "lost":
            runner = doc.get("runner") or {}
            raise TrialBusy(
                f"trial {short_id(doc['id'])} is {status} (runner on {runner.get('host')} pid "
                f"{runner.get('pid')})",
                f"stop it first with 'kleio stop {short_id(doc['id'])}', then remove it",
            )
    for doc in order:
        left = [
            item
            for item in leftovers(config.spool_dir, doc["id"])
            if item.journal in ("", store.uri)
        ]
        if left:
            raise TrialBusy(
                f"trial {short_id(doc['id'])} has events a dead runner left on this host "
                f"({left[0].directory})",
                "journal them with 'kleio sync' first, then remove the trial",
            )


def _confirmed(order: list[dict[str, Any]]) -> bool:
    """Ask on the terminal whether to delete ``order``; without one, refuse (exit code 73)."""
    from kleio.errors import NoTerminal

    if not sys.stdin.isatty():
        raise NoTerminal(
            f"kleio rm would delete {_plural(len(order), 'trial')} and needs a confirmation",
            "give --yes to delete without asking",
        )
    for doc in order:
        sys.stderr.write(
            f"  {short_id(doc['id'])}  {doc.get('status')}  "
            f"{' '.join(doc.get('argv') or doc.get('command') or [])}\n"
        )
    sys.stderr.write(
        "delete this trial? [y/N] "
        if len(order) == 1
        else f"delete these {len(order)} trials? [y/N] "
    )
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def delete_trials(store: Store, order: list[dict[str, Any]]) -> dict[str, Any]:
    """Delete the trials of ``order`` and the blobs no remaining trial uses (content-addressed
    blobs are shared); what was removed, as ``kleio rm --json`` prints it."""
    candidates: set[str] = set()
    for doc in order:
        candidates |= blobs_of(store, doc)
    events = sum(store.delete_trial(trial_id=doc["id"]) for doc in order)
    kept: set[str] = set()
    for doc in store.find_trials():
        if candidates - kept:
            kept |= blobs_of(store, doc) & candidates
    freed = removed_blobs = 0
    for digest in sorted(candidates - kept):
        size = store.delete_blob(sha256=digest)
        if size:
            removed_blobs += 1
            freed += size
    return {
        "removed": [d["id"] for d in order],
        "events": events,
        "blobs": removed_blobs,
        "bytes_freed": freed,
    }


def main(argv: list[str], flags: dict[str, Any]) -> int:
    from kleio.cli.common import store_from
    from kleio.trial import resolve_trial

    p = parser(
        "rm",
        "Delete trials with their journal (statistics, output, artifacts) and the "
        "blobs no other trial uses. Refuses a running trial, and a trial that has "
        "branches unless --with-branches. Asks for confirmation on a terminal.",
    )
    p.add_argument("ids", nargs="+", metavar="ID", help="trial ids or unique prefixes of them")
    p.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="do not ask for confirmation (needed without a terminal)",
    )
    p.add_argument(
        "--with-branches",
        action="store_true",
        help="also delete the branches of these trials (and theirs): a branch "
        "reads its parent's history, so it cannot outlive it",
    )
    args = p.parse_args(argv)
    store, config = store_from(flags)
    with store:
        chosen = {doc["id"]: doc for doc in (resolve_trial(store, given) for given in args.ids)}
        order = _deletion_order(store, chosen, args.with_branches)
        _refuse_busy(store, order, config)
        if not args.yes and not _confirmed(order):
            emit("nothing deleted\n")
            return 1
        result = delete_trials(store, order)
    if args.json:
        print_json(result)
    else:
        removed = result["removed"]
        emit(
            f"removed {_plural(len(removed), 'trial')} "
            f"({', '.join(short_id(i) for i in removed[:10])}"
            f"{' ...' if len(removed) > 10 else ''}"
            f"; {result['events']} events), freed {_size(result['bytes_freed'])} in "
            f"{_plural(result['blobs'], 'blob')}\n"
        )
    return 0
