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


#: Reads a directory of ended writers' files with 64 descriptors; with ``free``, all but that
#: many are taken by the rest of the process first, as the runner's journal and sockets are.
LIMITED_READER = """
import os, resource, sys
from kleio.ledger.reader import LedgerReader
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
free = int(sys.argv[2])
if free:
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        for fd in held[-free:]:
            os.close(fd)
reader = LedgerReader(sys.argv[1])
records = sum(len(chunk.lines) for chunk in reader.poll())
if not free:  # one left for what the journal, a socket or an import needs
    os.close(os.open(os.devnull, os.O_RDONLY))
records += sum(len(chunk.lines) for chunk in reader.drain())
print(records)
"""


def _ended_writers(directory, count):
    directory.mkdir()
    for i in range(count):  # pids that cannot exist: their writers have ended
        (directory / f"{999_000_000 + i}-x.log").write_bytes(b'S{"i":%d}\n' % i)
    return directory


def _read_limited(directory, free=0):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", LIMITED_READER, str(directory), str(free)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_reader_leaves_descriptors_to_the_rest_of_the_runner(tmp_path):
    """Opening files until the kernel refused one left the journal none: its next write
    failed (EMFILE) and dropped its statistics (CI: 347 of 400 read back)."""
    result = _read_limited(_ended_writers(tmp_path / "d", 200))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "200\n"


def test_a_drain_reads_every_file_while_descriptors_are_held_elsewhere(tmp_path):
    """A drain whose first open (its listdir's) failed, the poll before it having used every
    descriptor left, returned with files unread; it closes the finished ones and goes on."""
    result = _read_limited(_ended_writers(tmp_path / "d", 200), free=5)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "200\n"


def test_a_writer_that_appends_then_ends_between_the_checks_keeps_its_record(tmp_path, monkeypatch):
    """The file read to its end, then the writer appends and exits, then its end is seen:
    the file must stay open for the record (closed, it was never read, then removed)."""
    directory = tmp_path / "d"
    directory.mkdir()
    path = directory / "999999998-x.log"
    path.write_bytes(b'S{"i":0}\n')
    reader = LedgerReader(str(directory))
    assert [c.lines for c in reader.poll()] == [[b'S{"i":0}']]

    def last_record_then_exit(pid):
        with open(path, "ab") as handle:
            handle.write(b'S{"i":1}\n')
        return False

    monkeypatch.setattr(reader_module, "pid_alive", last_record_then_exit)
    reader.close_finished()
    assert [c.lines for c in reader.drain()] == [[b'S{"i":1}']]
    reader.close()


def test_a_drain_goes_on_once_the_files_it_read_to_their_end_can_be_closed(tmp_path):
    """Every open file had records left (its writer's last, before it ended) when the drain
    began, so none could be closed for the files waiting: the drain read them, then
    returned with those files unopened."""
    directory = _ended_writers(tmp_path / "d", 10)
    reader = LedgerReader(str(directory))
    reader.max_open = 4
    assert len(reader.poll()) == 4
    for name in reader.files:
        with open(directory / name, "ab") as handle:
            handle.write(b'S{"last":1}\n')
    records = [line for chunk in reader.drain() for line in chunk.lines]
    assert len(records) == 4 + 6 and sorted(reader.files) == sorted(os.listdir(directory))
    assert reader.open_files <= 4
    reader.close()
