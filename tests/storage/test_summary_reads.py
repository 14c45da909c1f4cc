"""The summary reads every backend shares (kleio.storage.summary_reads), on every backend
through the ``store`` fixture: a trial summarized up to a cut starts from the summary mark
before the cut, and gives what folding all its statistics up to the cut gives.
"""

from __future__ import annotations

from kleio.storage.base import first_seq
from kleio.storage.summary import fold_all
from tests.storage.test_contract import ev, make_doc

EXEC1 = first_seq(1)


def test_a_branch_cut_mid_trial_summarizes_from_the_mark_before_the_cut(store, monkeypatch):
    import kleio.storage.mongodb_summaries as mongodb_summaries
    import kleio.storage.sqlite as sqlite

    monkeypatch.setattr(sqlite, "MARK_EVERY", 10)
    monkeypatch.setattr(mongodb_summaries, "MARK_EVERY", 10)
    store.create_trial(doc=make_doc("p"))
    # Values with short decimals: the nx-27017 wire server keeps 15 digits of an updated
    # double, which MongoDB keeps whole.
    for low in range(0, 95, 7):
        store.append_events(
            trial_id="p",
            events=[
                ev(EXEC1 + i, time=1.0, step=i, loss=(1 + (i % 13)) / 8)
                for i in range(low, min(95, low + 7))
            ],
        )
    read = []
    real = store._iter_own
    monkeypatch.setattr(store, "_iter_own", lambda *a, **k: read.append(k) or real(*a, **k))
    for cut in (EXEC1 + 3, EXEC1 + 37, EXEC1 + 94):
        got = store.summarize_events(trial_id="p", upto=cut)["entries"]
        expected = fold_all(
            (e.seq, e.data) for e in store.read_events(trial_id="p", kinds=("statistic",), upto=cut)
        ).entries
        for entry in (*got.values(), *expected.values()):  # per trial, not per part
            entry.pop("last_seq"), entry.pop("min_seq"), entry.pop("max_seq")
        assert got == expected, cut
    marks = [k.get("after") for k in read if k.get("after") is not None]
    assert [m - EXEC1 for m in marks] == [29, 89]  # the 30th and the 90th statistics
    # Statistics out of order: marks no longer hold, the reader folds from the start.
    store.append_events(trial_id="p", events=[ev(EXEC1 - 1, time=1.0, step=-1, loss=9.0)])
    read.clear()
    store.summarize_events(trial_id="p", upto=EXEC1 + 94)
    assert [k.get("after") for k in read if k.get("after") is not None] == []
