"""kleio.ledger.events: record i of a marked range is always event seq+1+i."""

from __future__ import annotations

import json

from kleio.ledger.events import chunk_events
from kleio.ledger.reader import Chunk


def test_record_i_of_a_chunk_is_always_event_seq_plus_one_plus_i(tmp_path):
    chunk = Chunk("1-a.log", 0, 30, [b'S{"i":0}', b"garbage", b'S{"i":2}'])
    marker, events = chunk_events(
        chunk, 100, 5.0, str(tmp_path), lambda path, header: ("0" * 64, 0)
    )
    assert marker[:2] == (100, "ledger")
    assert json.loads(marker[3]) == {"file": "1-a.log", "from": 0, "to": 30, "n": 3, "e": 2}
    assert [(seq, kind) for seq, kind, _, _ in events] == [(101, "statistic"), (103, "statistic")]


def test_an_artifact_record_naming_a_file_that_is_not_a_blob_is_skipped(tmp_path):
    asked = []
    chunk = Chunk(
        "1-a.log",
        0,
        10,
        [
            b'B{"blob": "runner.json", "sha256": "x", "size": 1}',
            b'B{"blob": "../../etc/passwd.blob"}',
        ],
    )
    _, events = chunk_events(
        chunk, 1, 1.0, str(tmp_path), lambda path, header: asked.append(path) or None
    )
    assert events == [] and asked == [str(tmp_path / "passwd.blob")]
