"""kleio.client.connection: reaching the runner's socket, or saying why not."""

from __future__ import annotations

import socket

import pytest

from kleio.client.connection import connect


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
