"""Read what a page of trials shows in a constant number of requests, whatever its length.

A row of ``kleio ls`` needs the trial's summaries (metrics), its status events (first start,
duration, a lost trial's last status) and, for a branch, its lineage: the ancestors'
documents, their summaries up to each cut and their metric declarations. Read trial by trial
that was three or more requests a row (over a network, a round trip each: 150 for ``kleio ls
--limit 50`` on MongoDB). :func:`prefetch` reads them for the whole page with the store's
batched reads (:mod:`kleio.storage.batched`): two requests for the summaries, one for the
status events, one per generation of ancestors, and a few for the ancestors' parts, however
many rows the page has. What is read is handed to each :class:`~kleio.api.trial.Trial`,
which reads nothing more for those values.

Left to one request each: the last event of an execution that ended without a final status
and was followed by another (a runner that died, then a failover), found only in such trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kleio.api.trial import Trial
    from kleio.storage.base import Store

#: The summary of a trial the store does not know (removed while it was being listed).
EMPTY: dict[str, Any] = {
    "entries": {},
    "modes": {},
    "primary": None,
    "last_stat_seq": None,
    "runs_ok": False,
}


def prefetch(store: Store, trials: Sequence[Trial]) -> None:
    """Read the summaries, status events and lineages of those of ``trials`` not read yet."""
    wanted = [t for t in trials if t._summary is None]
    if not wanted:
        return
    ids = [t.id for t in wanted]
    found = store.read_summaries(trial_ids=ids)
    statuses = store.read_events_of(trial_ids=ids, kinds=("status",))
    for trial in wanted:
        trial._summary = found.get(trial.id) or dict(EMPTY)
        trial._status_events = statuses.get(trial.id, [])
    branches = [t for t in wanted if t.parent is not None]
    if branches:
        _lineages(store, branches)


def _lineages(store: Store, branches: list[Trial]) -> None:
    """Each branch's lineage parts (summaries up to each cut, then its own) and declarations
    (its ancestors' metric events up to each cut, then its own)."""
    chains = store.lineages(docs=[t.doc for t in branches])
    ancestors = {doc["id"] for chain in chains.values() for doc, _ in chain[:-1]}
    parts = store.read_summaries(trial_ids=sorted(ancestors))
    declared = store.read_events_of(
        trial_ids=sorted(ancestors | {t.id for t in branches}), kinds=("metrics",)
    )
    cuts = set()
    for chain in chains.values():
        for doc, upto in chain[:-1]:
            last = (parts.get(doc["id"]) or EMPTY)["last_stat_seq"]
            if upto is not None and last is not None and last > upto:
                cuts.add((doc["id"], upto))  # cut before its last statistic: count up to it
    cut_parts = store.summarize_events_of(cuts=sorted(cuts))
    for trial in branches:
        lineage_parts: list[dict[str, Any]] = []
        datas: list[Any] = []
        for doc, upto in chains[trial.id]:
            own = doc["id"] == trial.id and upto is None
            part = trial._summary if own else parts.get(doc["id"])
            if upto is not None and (doc["id"], upto) in cut_parts:
                part = cut_parts[(doc["id"], upto)]
            if part is not None:
                lineage_parts.append(part)
            datas += [e.data for e in declared.get(doc["id"], ()) if upto is None or e.seq <= upto]
        trial._lineage_parts = lineage_parts
        trial._lineage_declared = datas
