"""Branching: a new trial from another, for free (DESIGN §2).

The change gate that branches a changed trial lives in :mod:`kleio.launch`; this module
holds the mechanics: option overrides, cut points and the branch document.

A *branch* is a trial whose document holds ``"parent": {"id": parent_id, "cut": seq}``.
Reading its lineage yields the parent's events up to ``cut`` and then its own (see
:meth:`kleio.storage.base.Store.lineage`), so creating one copies nothing: one trial
document, its ``new`` status event and the blobs of the current code snapshot, whatever the
size of the parent's journal.

Its id is :func:`kleio.identity.trial_id` of its command with the parent reference, so the
same parent, cut and options give the same trial again, which is then resumed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from kleio.argv import apply_overrides  # the one rule for walking options
from kleio.errors import UsageError
from kleio.storage.base import Event, Store
from kleio.trial import short_id

# -- cut points ----------------------------------------------------------------------------


def _typed(text: str, like: Any) -> Any:
    """``text`` converted to the type of the logged value ``like``; a sentinel if it cannot."""
    if isinstance(like, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        return _NO_MATCH
    try:
        if isinstance(like, int):
            number = float(text)
            return int(number) if number.is_integer() else _NO_MATCH
        if isinstance(like, float):
            return float(text)
    except ValueError:
        return _NO_MATCH
    if isinstance(like, str):
        return text
    import json

    try:
        return json.loads(text)
    except ValueError:
        return _NO_MATCH


_NO_MATCH = object()


def _matches(value: Any, text: str) -> bool:
    if value is None:
        return text.strip().lower() in ("none", "null")
    converted = _typed(text, value)
    return converted is not _NO_MATCH and converted == value


def _nearest(values: list[Any], text: str, count: int = 5) -> list[Any]:
    unique: list[Any] = []
    for value in values:
        if value not in unique:
            unique.append(value)
    try:
        target = float(text)
    except ValueError:
        return unique[:count]
    numbers = [v for v in unique if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numbers:
        return unique[:count]
    # Closest first, so that the hint suggests the closest value.
    return sorted(numbers, key=lambda v: (abs(v - target), v))[:count]


def resolve_timestamp(store: Store, doc: dict[str, Any], spec: str) -> tuple[dict[str, Any], int]:
    """Resolve ``--timestamp KEY=VALUE`` or ``--timestamp ISO-TIME`` on a trial's lineage.

    ``KEY=VALUE`` finds the last statistic whose ``KEY`` equals ``VALUE`` once converted to
    the type of the logged value (``epoch=10`` matches ``10`` and ``10.0``, not ``"ten"``).
    The cut keeps everything logged after that statistic until the next statistic that does
    not carry ``KEY=VALUE``: the checkpoint and the output of epoch 10 belong to epoch 10,
    also a ``kleio_logger.checkpoint`` logged right after it with its own statistic
    (``step`` and its metrics, then its file).
    An ISO time (``2024-05-01T12:00``, local time unless it names its zone) cuts after the
    last event logged at or before it.

    Returns:
        ``(parent_doc, cut)``: the trial whose own events hold the cut (the trial itself, or
        one of its ancestors when the cut lies in the inherited part) and the sequence number.

    Raises:
        UsageError: the spec is malformed, or nothing in the lineage matches it.
    """
    key, eq, value = spec.partition("=")
    if eq and key.strip():
        return _cut_at_statistic(store, doc, key.strip(), value.strip())
    return _cut_at_time(store, doc, spec)


def _cut_at_step(
    store: Store, lineage: list[tuple[dict[str, Any], int | None]], key: str, text: str
) -> tuple[dict[str, Any], int] | None:
    """The cut of ``KEY=VALUE`` for a step key, from the runs the store keeps (see
    :mod:`kleio.storage.summary`): a few indexed queries, no statistic decoded. None when a
    trial of the lineage has no runs to trust, or nothing matches (the caller then scans,
    which also finds the words of the error)."""
    found: tuple[dict[str, Any], int | None, dict[str, Any]] | None = None
    for member, upto in lineage:
        runs = store.step_runs(trial_id=member["id"], key=key)
        if runs is None:
            return None
        for run in runs:
            if upto is not None and run["first_seq"] > upto:
                break
            if _matches(run["value"], text):
                found = (member, upto, run)
    if found is None:
        return None
    owner, upto, run = found
    last = run["last_seq"]
    if upto is not None and last > upto:  # the run goes on past the cut inherited
        tail = store.read_events(
            trial_id=owner["id"], kinds=("statistic",), upto=upto, limit=1, reverse=True
        )
        last = tail[0].seq if tail else run["first_seq"]
    after = store.next_seq_of(trial_id=owner["id"], kind="statistic", after=last)
    if after is not None:
        after = _past_a_checkpoint(store, owner["id"], after, upto, key)
    if after is not None and (upto is None or after <= upto):
        return owner, after - 1
    if upto is not None:
        return owner, upto
    return owner, store.last_seq(trial_id=owner["id"]) or last


def _cut_at_statistic(
    store: Store, doc: dict[str, Any], key: str, text: str
) -> tuple[dict[str, Any], int]:
    lineage = store.lineage(trial_id=doc["id"])
    quick = _cut_at_step(store, lineage, key, text)
    if quick is not None:
        return quick
    uptos = {d["id"]: upto for d, upto in lineage}
    docs = {d["id"]: d for d, _ in lineage}
    found: Event | None = None
    after: Event | None = None  # the first statistic past the match that does not match
    seen: list[Any] = []
    keys: set[str] = set()
    for event in store.iter_lineage_events(trial_id=doc["id"], kinds=("statistic",)):
        data = event.data
        if key in data:
            seen.append(data[key])
            if _matches(data[key], text):
                found, after = event, None
                continue
        elif len(keys) < 50:
            keys.update(data)
        if found is not None and after is None:
            after = event
    if found is None:
        short = short_id(doc["id"])
        if not seen:
            listed = ", ".join(sorted(keys)[:10]) or "none"
            raise UsageError(
                f"no statistic of trial {short}'s lineage has the key {key!r} "
                f"(keys logged: {listed})",
                f"see them with 'kleio cat {short} --statistics'",
            )
        nearest = _nearest(seen, text)
        raise UsageError(
            f"no statistic of trial {short}'s lineage has {key} == {text} "
            f"(nearest values: {', '.join(repr(v) for v in nearest)})",
            f"give one of the logged values, e.g. --timestamp {key}={nearest[0]}",
        )
    owner = found.trial_id
    limit = uptos[owner]
    boundary = None
    if after is not None and after.trial_id == owner:
        boundary = _past_a_checkpoint(store, owner, after.seq, limit, key)
    if boundary is not None and (limit is None or boundary <= limit):
        cut = boundary - 1
    else:
        cut = limit if limit is not None else (store.last_seq(trial_id=owner) or found.seq)
    return docs[owner], cut


def _past_a_checkpoint(
    store: Store, trial_id: str, boundary: int, upto: int | None, key: str
) -> int | None:
    """The seq of the statistic that ends a ``KEY=VALUE`` cut, given ``boundary``, the first
    statistic past the match: past it when it is a checkpoint's own (what
    ``kleio_logger.checkpoint`` journals: ``step=S`` and its metrics, without ``KEY``, then
    its file with metadata ``step=S``), and past each such checkpoint that follows (a model's
    and its optimizer's), so that the checkpoints logged right after the matched statistic
    are inherited whole; None when no statistic follows them."""
    while True:
        pair = store.read_events(
            trial_id=trial_id,
            kinds=("statistic", "artifact"),
            after=boundary - 1,
            upto=upto,
            limit=2,
        )
        if len(pair) < 2:
            return boundary
        stat, saved = pair
        metadata = saved.data.get("metadata") if saved.kind == "artifact" else None
        if (
            stat.kind != "statistic"
            or key in stat.data
            or "step" not in stat.data
            or not isinstance(metadata, dict)
            or metadata.get("step", stat) != stat.data["step"]
        ):
            return boundary
        after = store.next_seq_of(trial_id=trial_id, kind="statistic", after=saved.seq)
        if after is None:
            return None
        boundary = after


def _cut_at_time(store: Store, doc: dict[str, Any], spec: str) -> tuple[dict[str, Any], int]:
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(spec.strip())
    except ValueError:
        raise UsageError(
            f"--timestamp {spec!r} is neither KEY=VALUE nor an ISO time",
            "write e.g. --timestamp epoch=10 or --timestamp 2024-05-01T12:30:00",
        ) from None
    limit = moment.timestamp()  # a naive time is local time
    docs = {d["id"]: d for d, _ in store.lineage(trial_id=doc["id"])}
    cut: tuple[dict[str, Any], int] | None = None
    for event in store.iter_lineage_events(trial_id=doc["id"]):
        if event.time > limit:
            break
        cut = (docs[event.trial_id], event.seq)
    if cut is None:
        raise UsageError(
            f"trial {short_id(doc['id'])}'s lineage has no event at or before {spec}",
            "give a later time (see 'kleio info ID' for its history)",
        )
    return cut


# -- branches ------------------------------------------------------------------------------


def make_branch(store: Store, parent_doc: dict[str, Any], **options: Any) -> dict[str, Any]:
    """:func:`create_branch`, returning the branch's document only."""
    return create_branch(store, parent_doc, **options)[0]


def create_branch(
    store: Store,
    parent_doc: dict[str, Any],
    *,
    cut: int,
    argv_overrides: Sequence[str] = (),
    reason: str,
    argv: Sequence[str] | None = None,
    cwd: str | None = None,
    current: tuple[dict[str, Any], dict[str, bytes]] | None = None,
    tags: Sequence[str] = (),
) -> tuple[dict[str, Any], bool]:
    """Create (or find again) the branch of ``parent_doc`` cut at ``cut``.

    Args:
        store: the journal.
        parent_doc: the trial branched from.
        cut: the last ``seq`` of the parent's own events the branch inherits (-1: none, a
            fresh start that keeps the lineage link).
        argv_overrides: option tokens replacing or adding to the parent's (see
            :func:`apply_overrides`).
        reason: why the branch was made, kept in the document (``branch_reason``).
        argv: the command to branch, as typed, when the caller has it unredacted (``kleio
            run --allow-code-change python ...``); by default the parent's recorded one.
        cwd: where the command runs; by default the parent's directory in this checkout.
        current: ``(doc, blobs)`` from :func:`kleio.trial.build_trial` for the same command,
            when the caller already took the current snapshot.
        tags: tags added to the parent's.

    Returns:
        ``(doc, new)``: the branch's trial document, as stored, and whether this call
        created it (False: the same branch existed). It holds the *current* code,
        environment and host snapshots, and ``parent = {"id": parent id, "cut": cut}``.

    Raises:
        UsageError: the parent's command held secrets (it cannot be replayed), or an
            override is a positional argument.
    """
    from kleio.identity import trial_id
    from kleio.redact import redact_argv
    from kleio.trial import build_trial, execution_dir, store_trial

    short = short_id(parent_doc["id"])
    if argv is None:
        if parent_doc.get("redacted"):
            raise UsageError(
                f"trial {short}'s command held secrets that were not journalled, so it "
                "cannot be branched by id",
                "run the full command again with --allow-any-change, or run a new command",
            )
        argv = parent_doc.get("argv") or parent_doc.get("command") or []
    child_argv = apply_overrides(argv, argv_overrides)
    if cwd is None:
        cwd = execution_dir(parent_doc, os.getcwd())
    if current is not None and current[0].get("argv") == redact_argv(list(child_argv))[0]:
        doc, blobs = dict(current[0]), current[1]
    else:
        doc, blobs = build_trial(child_argv, cwd, None, [])  # type: ignore[arg-type]
    parent = {"id": parent_doc["id"], "cut": int(cut)}
    doc["parent"] = parent
    doc["id"] = trial_id(
        project=doc["project"],
        command=doc["command"],
        config_files=doc["config_files"],
        parent=parent,
    )
    doc["branch_reason"] = reason
    doc["tags"] = sorted(set(parent_doc.get("tags") or []) | set(tags))
    new = store_trial(store, doc, blobs)
    return store.get_trial(trial_id=doc["id"]) or doc, new


__all__ = [
    "apply_overrides",
    "create_branch",
    "make_branch",
    "resolve_timestamp",
]
