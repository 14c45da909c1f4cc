"""kleio.client.artifacts: an artifact's header, its bytes in chunks, its ledger blob file."""

from __future__ import annotations

import io
import os

import pytest

from kleio.client import BLOB, loads
from kleio.client.artifacts import CHUNK, chunks, header_of, to_ledger, write_blob


def test_header_checks_filename_and_metadata():
    assert loads(header_of("w.pt", {"epoch": 3})) == {"filename": "w.pt", "metadata": {"epoch": 3}}
    with pytest.raises(TypeError, match="non-empty string"):
        header_of("", {})
    with pytest.raises(TypeError, match="metadata 'm' is a set"):
        header_of("w.pt", {"m": {1}})


def test_chunks_of_bytes_and_of_a_file():
    data = os.urandom(CHUNK + 10)
    assert [len(c) for c in chunks(data)] == [CHUNK, 10]
    assert chunks(b"") == [b""]
    assert b"".join(chunks(io.BytesIO(data))) == data
    with pytest.raises(TypeError, match="binary mode"):
        chunks(io.StringIO("text"))  # type: ignore[arg-type]


def test_to_ledger_writes_the_bytes_then_gives_their_record(tmp_path):
    path = str(tmp_path / "1-ab-1.blob")
    line = to_ledger(path, "1-ab-1.blob", "w.pt", {"epoch": 3}, [b"ab", b"", b"c"])
    assert line[:1] == BLOB and line.endswith(b"\n")
    entry = loads(line[1:])
    assert (entry["blob"], entry["size"], entry["metadata"]) == ("1-ab-1.blob", 3, {"epoch": 3})
    assert entry["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with open(path, "rb") as written:
        assert written.read() == b"abc"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_a_failed_write_leaves_no_blob(tmp_path):
    path = str(tmp_path / "x.blob")

    def broken():
        yield b"start"
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="cannot store artifact 'w.pt'"):
        write_blob(path, "w.pt", broken())
    assert not os.path.exists(path)
    with pytest.raises(OSError, match="cannot store artifact 'w.pt'"):
        write_blob(str(tmp_path / "missing" / "x.blob"), "w.pt", [b"a"])
