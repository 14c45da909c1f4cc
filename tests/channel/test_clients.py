"""kleio.channel.clients: a connection's records handed to the writer; refused artifacts."""

from __future__ import annotations

import _socket
import os
import socket

from kleio.channel.clients import Connection, accept
from kleio.client import artifact_stream, record


class Writer:
    def __init__(self) -> None:
        self.events_sent: list[tuple[str, list[str]]] = []
        self.sent: list[object] = []
        self.problems: list[str] = []

    def events(self, kind: str, when: float, datas: list[str]) -> None:
        self.events_sent.append((kind, datas))

    def send(self, message: object) -> None:
        self.sent.append(message)

    def problem(self, key: str, message: str, count: int = 1) -> None:
        self.problems.append(key)


def test_accept_takes_a_connection_of_this_user(tmp_path):
    address = str(tmp_path / "c.sock")
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(1)
    listener.setblocking(False)
    assert accept(listener) == (None, False)  # nobody there yet
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(address)
        sock, refused = accept(listener)
        assert sock is not None and not refused
        sock.close()
    listener.close()


def test_records_and_artifacts_reach_the_writer(tmp_path):
    writer = Writer()
    ours, theirs = socket.socketpair()
    connection = Connection(ours, writer, str(tmp_path / "spool"))  # type: ignore[arg-type]
    connection.feed(record(b"S", '{"i":1}') + record(b"M", '{"metrics":{}}'))
    connection.feed(b"".join(artifact_stream('{"filename":"w","metadata":{}}', [b"abc"])))
    assert writer.events_sent == [("statistic", ['{"i":1}']), ("metrics", ['{"metrics":{}}'])]
    [artifact] = writer.sent
    with open(artifact.path, "rb") as handle:  # type: ignore[attr-defined]
        assert handle.read() == b"abc"
    os.remove(artifact.path)  # type: ignore[attr-defined]
    connection.close()
    theirs.close()


def test_an_artifact_that_cannot_be_kept_is_dropped_and_counted(tmp_path):
    writer = Writer()
    (tmp_path / "spool").write_text("a file, not a directory")
    ours, theirs = socket.socketpair()
    connection = Connection(ours, writer, str(tmp_path / "spool"))  # type: ignore[arg-type]
    connection.feed(b"".join(artifact_stream('{"filename":"w","metadata":{}}', [b"abc"])))
    connection.feed(record(b"S", '{"i":2}'))  # the connection lives on
    assert writer.problems == ["artifacts_dropped"] and writer.sent == []
    assert writer.events_sent == [("statistic", ['{"i":2}'])]
    connection.close()
    theirs.close()
