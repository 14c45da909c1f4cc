"""The second process of the table's first pass: every other large batch made by a forked
child, the results in the order of the batches, and the same results whatever happens to the
child (it dies, it cannot start, the reader stops early)."""

from __future__ import annotations

import os
import random
import threading

import pytest

from kleio.cli import cat_helper
from kleio.cli.cat_helper import MIN_ROWS, first_pass
from kleio.cli.cat_table import stream_table, table_blocks
from kleio.storage.base import JoinedTexts, decode, encode

needs_two_cores = pytest.mark.skipif(
    cat_helper._cores() < 2 or not hasattr(os, "fork"), reason="one core, or no fork"
)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """As in ``kleio cat``: threads other tests of this process left running (a dashboard's
    server) would keep the child from starting."""
    monkeypatch.setattr(threading, "active_count", lambda: 1)


def joined(rows, first=0):
    texts = [encode({"step": first + i}) for i in range(rows)]
    return JoinedTexts("".join(t + "\n" for t in texts), rows)


def who(batch):
    """Which process made the batch, and what it holds."""
    if type(batch) is JoinedTexts:
        return os.getpid(), batch.rows, batch.texts()[0]
    return os.getpid(), len(batch), batch


@needs_two_cores
def test_every_other_large_batch_is_made_by_the_child_in_order():
    batches = [joined(MIN_ROWS, i * MIN_ROWS) for i in range(6)] + [["x"]]
    found = list(first_pass(iter(batches), who))
    assert [f[2] for f in found] == [who(b)[2] for b in batches]
    makers = [f[0] for f in found]
    child = {pid for pid in makers if pid != os.getpid()}
    assert len(child) == 1 and makers[:6] == [child.pop(), os.getpid()] * 3
    assert makers[6] == os.getpid()  # (a list is always made here)


def test_small_batches_or_no_helper_never_fork(monkeypatch):
    def refuse():
        raise AssertionError("forked")

    monkeypatch.setattr(os, "fork", refuse)
    small = [joined(MIN_ROWS - 1) for _ in range(4)]
    assert [f[0] for f in first_pass(iter(small), who)] == [os.getpid()] * 4
    large = [joined(MIN_ROWS) for _ in range(4)]
    assert [f[0] for f in first_pass(iter(large), who, helper=False)] == [os.getpid()] * 4


def test_a_process_running_threads_makes_every_batch_itself(monkeypatch):
    monkeypatch.setattr(threading, "active_count", lambda: 2)  # (over the fixture's)
    large = [joined(MIN_ROWS) for _ in range(4)]
    assert [f[0] for f in first_pass(iter(large), who)] == [os.getpid()] * 4


@needs_two_cores
def test_a_child_that_dies_leaves_its_batches_to_this_process():
    parent = os.getpid()

    def dying(batch):
        if os.getpid() != parent and batch.texts()[0] == encode({"step": 2 * MIN_ROWS}):
            os._exit(3)  # the child, on its second batch
        return who(batch)

    batches = [joined(MIN_ROWS, i * MIN_ROWS) for i in range(8)]
    found = list(first_pass(iter(batches), dying))
    assert [f[2] for f in found] == [who(b)[2] for b in batches]
    makers = [f[0] for f in found]
    assert makers[0] != parent and makers[1:] == [parent] * 7


@needs_two_cores
def test_a_reader_that_stops_early_leaves_no_child_behind():
    batches = (joined(MIN_ROWS, i * MIN_ROWS) for i in range(10))
    results = first_pass(batches, who)
    first = next(results)
    assert first[0] != os.getpid()
    results.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(first[0], os.WNOHANG)  # reaped: not a child any more


def test_the_table_is_the_same_bytes_with_or_without_the_child():
    rng = random.Random(4)
    batches = []
    for index in range(5):  # widths that grow in the child's batches and in this one's
        stats = [
            {"step": index * 9000 + i, "loss": rng.random() * 10 ** rng.randint(-8, 8 * index)}
            for i in range(MIN_ROWS + 7)
        ]
        if index == 3:
            stats[5]["note"] = "x" * 40  # one statistic with a key of its own
        texts = [encode(s) for s in stats]
        batches.append(JoinedTexts("".join(t + "\n" for t in texts), len(texts)))
    with_child = "".join(table_blocks(lambda: iter(batches)))
    alone = "".join(table_blocks(lambda: iter(batches), helper=False))
    rows = [decode(t) for b in batches for t in b.texts()]
    assert with_child == alone == "".join(stream_table(lambda: iter(rows)))


@needs_two_cores
def test_a_batch_of_large_text_is_made_here(monkeypatch):
    """The child would hold its batch's decoded statistics while this process holds the
    next one's: wide statistics (a tester's 10 KB ones) doubled the peak memory."""
    batches = [joined(MIN_ROWS, i * MIN_ROWS) for i in range(4)]
    monkeypatch.setattr(cat_helper, "MAX_TEXT", len(batches[0].text) - 1)
    assert [f[0] for f in first_pass(iter(batches), who)] == [os.getpid()] * 4
    monkeypatch.setattr(cat_helper, "MAX_TEXT", len(batches[0].text))
    assert os.getpid() not in [f[0] for f in first_pass(iter(batches), who)][:1]
