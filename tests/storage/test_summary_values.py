"""What every backend's summaries hold and in what order (review h2 #15), on every backend
through the ``store`` fixture, whichever way a summary is made: kept by the store as
statistics are appended, or folded from the events on read (a branch's cut, a trial an older
kleio wrote).

* Entries and declared modes come in the order of their names (code points), as SQLite's
  primary key ``(trial, name)`` keeps them, never in an order a server happens to return.
* A summary value (``last``, ``min``, ``max``) is a number as the store keeps it: an integer
  outside int64 is a float (an infinity past the largest float), within it an ``int``.
* An infinity is a value like any other (NaN alone is never best): ``-inf`` is the best of
  a ``min`` metric.
"""

from __future__ import annotations

import math

import pytest

from kleio.storage.base import first_seq
from kleio.storage.summary import metric_entry
from tests.storage.test_contract import ev, make_doc
from tests.storage.test_summaries import forget

EXEC1 = first_seq(1)
NAMES = ["zeta", "b", "a10", "A", "a2", "é", "_x", "mid"]


def summaries(store, trial_id):
    """The trial's summary kept by the store, read from its events, and up to a cut."""
    kept = store.read_summaries(trial_ids=[trial_id])[trial_id]
    cut = store.summarize_events(trial_id=trial_id, upto=EXEC1 + 100)
    forget(store, trial_id)
    folded = store.read_summaries(trial_ids=[trial_id])[trial_id]
    (batched,) = store.summarize_events_of(cuts=[(trial_id, EXEC1 + 100)]).values()
    return {"kept": kept, "cut": cut, "folded": folded, "batched": batched}


def test_entries_and_modes_come_in_the_order_of_their_names(store):
    store.create_trial(doc=make_doc("t"))
    modes = {name: "max" for name in reversed(NAMES)}
    store.append_events(
        trial_id="t",
        events=[ev(EXEC1, "metrics", metrics=modes)]
        + [ev(EXEC1 + 1 + i, **{n: float(i) for n in NAMES[i::2]}) for i in range(len(NAMES))],
    )
    for how, found in summaries(store, "t").items():
        assert list(found["entries"]) == sorted(NAMES), how
        assert list(found["modes"]) == sorted(NAMES), how


def test_integers_outside_int64_are_summarized_as_floats_whatever_the_read(store):
    store.create_trial(doc=make_doc("t"))
    values = {"small": 7, "edge": 2**63 - 1, "low": -(2**63), "big": 2**70, "neg": -(2**64)}
    store.append_events(trial_id="t", events=[ev(EXEC1 + 1, step=2**63, **values)])
    ranked = store.rank_trials(metric="edge", mode="max", default_mode=None, descending=True)
    assert [(doc["id"], best, type(best)) for doc, best in ranked] == [("t", 2**63 - 1, int)]
    for how, found in summaries(store, "t").items():
        entries = found["entries"]
        for name, value in values.items():
            entry = entries[name]
            want = value if -(2**63) <= value < 2**63 else float(value)
            for field in ("last", "min", "max"):
                assert entry[field] == want and type(entry[field]) is type(want), (how, name)
        assert type(entries["small"]["min_step"]) is float, how  # 2**63: past int64


@pytest.mark.capability("nan")  # infinities: the nx-27017 wire server refuses them
def test_an_infinity_is_a_value_and_nan_is_never_best(store):
    store.create_trial(doc=make_doc("t"))
    store.append_events(
        trial_id="t",
        events=[
            ev(EXEC1 + 1, epoch=1, loss=0.5),
            ev(EXEC1 + 2, epoch=2, loss=-math.inf),
            ev(EXEC1 + 3, epoch=3, loss=math.nan),
        ],
    )
    store.create_trial(doc=make_doc("u", created_at=2000.0))
    store.append_events(trial_id="u", events=[ev(EXEC1 + 1, epoch=1, loss=0.1)])
    ranked = store.rank_trials(metric="loss", mode="min", default_mode=None, descending=False)
    assert [(doc["id"], best) for doc, best in ranked] == [("t", -math.inf), ("u", 0.1)]
    for how, found in summaries(store, "t").items():
        loss = metric_entry(found["entries"]["loss"], "min")
        assert (loss["best"], loss["best_step"], loss["count"]) == (-math.inf, 2, 3), how
        assert math.isnan(loss["last"]), how
        assert metric_entry(found["entries"]["loss"], "max")["best"] == 0.5, how
