"""kleio.ledger.reader: complete records of growing files, in linear time and bounded memory."""

from __future__ import annotations

import json
import os

from kleio.ledger import reader as reader_module
from kleio.ledger.events import chunk_events
from kleio.ledger.reader import Chunk, LedgerFile, LedgerReader


def test_records_are_cut_whole_and_a_huge_one_costs_one_copy(tmp_path):
    path = tmp_path / "1-a.log"
    big = b"S" + json.dumps({"x": "y" * (3 << 20)}).encode() + b"\n"
    path.write_bytes(b'S{"i":0}\n' + big + b'S{"i":1')
    reader = LedgerFile(str(path))
    chunks = []
    size = os.path.getsize(path)
    while reader.read_to < size:
        chunk = reader.read(1 << 16)
        if chunk is not None:
            chunks.append(chunk)
    lines = [line for chunk in chunks for line in chunk.lines]
    assert lines[0] == b'S{"i":0}' and lines[1] == big[:-1]
    assert reader.offset == 9 + len(big)  # the torn last record is not handed over
    assert chunks[0].start == 0 and chunks[-1].end == reader.offset
    assert not reader.at_end()
    with open(path, "ab") as handle:
        handle.write(b"}\n")
    assert reader.read().lines == [b'S{"i":1}']
    assert reader.at_end()
    reader.close()


def test_a_reader_ignores_what_is_not_a_regular_file_and_closes_ended_writers(tmp_path):
    directory = tmp_path / "d"
    directory.mkdir()
    os.mkfifo(directory / "1-fifo.log")  # would block an open() for ever
    (directory / "2-dir.log").mkdir()
    (directory / "3-link.log").symlink_to(tmp_path / "elsewhere")
    (directory / "999999998-x.log").write_bytes(b'S{"i":0}\n')
    reader = LedgerReader(str(directory))
    chunks = reader.poll()
    assert [c.lines for c in chunks] == [[b'S{"i":0}']]
    assert reader.ignored == {"1-fifo.log", "2-dir.log", "3-link.log"}
    reader.close_finished()  # its writer (a pid that cannot exist) has ended
    assert reader.files["999999998-x.log"].fd == -1
    assert reader.poll() == []
    reader.close()


def test_an_endless_record_is_skipped_in_bounded_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(reader_module, "MAX_RECORD", 1000)
    path = tmp_path / "1-a.log"
    path.write_bytes(b"S" + b"x" * 5000 + b'\nS{"i":1}\n')
    reader = LedgerFile(str(path))
    lines = []
    while reader.read_to < os.path.getsize(path):
        chunk = reader.read(100)
        assert reader.partial_size <= 1100
        if chunk is not None:
            lines += chunk.lines
    assert lines == [b"", b'S{"i":1}']  # the same index as a recovery gives it
    marker, events = chunk_events(
        Chunk("1-a.log", 0, reader.offset, path.read_bytes().split(b"\n")[:2]),
        10,
        1.0,
        str(tmp_path),
        lambda path, header: None,
    )
    assert [seq for seq, *_ in events] == [12]
    reader.close()
