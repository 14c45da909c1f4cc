"""kleio.client.connection: reaching the runner's socket, or saying why not."""

from __future__ import annotations

import socket

import pytest

from kleio.client.connection import ask, connect


def test_no_runner_is_one_sentence(tmp_path):
    with pytest.raises(RuntimeError, match="cannot reach the runner at .*started by kleio"):
        connect(str(tmp_path / "none.sock"))


def test_a_runner_of_this_user_is_reached(tmp_path):
    address = str(tmp_path / "c.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(address)
        server.listen(1)
        client = connect(address)
        accepted, _ = server.accept()
        client.sendall(b"S{}\n")
        assert accepted.recv(16) == b"S{}\n"
        client.close()
        accepted.close()


def test_ask_returns_the_answer_and_its_bytes_or_raises_the_runners_error():
    ours, theirs = socket.socketpair()
    theirs.sendall(b'{"found":true,"size":3}\nabc')  # the runner answers each in turn
    assert ask(ours, {"op": "artifact"}) == ({"found": True, "size": 3}, b"abc")
    theirs.sendall(b'{"error":"no such trial"}\n')
    with pytest.raises(RuntimeError, match="kleio: no such trial"):
        ask(ours, {"op": "statistics"})
    assert theirs.recv(100).count(b"Q{") == 2  # both queries reached the runner's side
    ours.close()
    theirs.close()
