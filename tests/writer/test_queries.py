"""kleio.writer.queries: the program's questions answered from its lineage in the journal."""

from __future__ import annotations

import io
import socket

from kleio.client import read_reply
from kleio.storage.base import encode, first_seq
from kleio.writer.queries import answer, send
from tests.ledger.conftest import TRIAL, reserved_journal


def test_statistics_and_the_newest_matching_artifact(tmp_path):
    store = reserved_journal(tmp_path / "k.db")
    sha, size = store.put_blob(fileobj=io.BytesIO(b"weights"))
    base = first_seq(1)
    store.append_events(
        trial_id=TRIAL,
        events=[
            (base + 1, "statistic", 1.0, encode({"epoch": 1})),
            (
                base + 2,
                "artifact",
                2.0,
                encode({"filename": "w", "metadata": {"epoch": 1}, "sha256": sha, "size": size}),
            ),
        ],
    )
    assert answer(store, TRIAL, {"op": "statistics"}) == ({"statistics": [{"epoch": 1}]}, None)
    reply, handle = answer(
        store, TRIAL, {"op": "artifact", "filename": "w", "metadata": {"epoch": 1}}
    )
    with handle:
        assert (reply["found"], reply["size"], handle.read()) == (True, 7, b"weights")
    assert answer(store, TRIAL, {"op": "artifact", "metadata": {"epoch": 2}}) == (
        {"found": False},
        None,
    )
    assert answer(store, TRIAL, {"op": "drop"}) == ({"error": "unknown query 'drop'"}, None)
    store.close()


def test_a_failed_query_is_an_answer_not_an_exception(tmp_path):
    class Broken:
        def iter_lineage_events(self, **kwargs):
            raise OSError("disk gone")

    ours, theirs = socket.socketpair()
    send(ours, {"op": "statistics"}, Broken(), TRIAL)  # type: ignore[arg-type]
    with theirs.makefile("rb") as reader:
        assert read_reply(reader) == ({"error": "query failed: disk gone"}, None)
    ours.close()
    theirs.close()
