"""The program's connection to its runner: a Unix-domain socket served by the same user.

Imported on a process's first query or first record the ledger cannot take, not with the
logger: most programs only append to the ledger and never load ``socket``.
"""

from __future__ import annotations

import socket

from kleio.client import QUERY, encode_checked, read_reply, record
from kleio.private import peer_is_same_user

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

#: The send buffer asked for: an artifact's frames go out without waiting on the runner.
SEND_BUFFER = 4 << 20


def connect(address: str) -> socket.socket:
    """A connected socket to the runner at ``address``, checked to be served by this user.

    Raises:
        RuntimeError: the runner cannot be reached, or another user serves ``address``
            (nothing is sent to nor read from it).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        sock.connect(address)
    except OSError as error:
        sock.close()
        raise RuntimeError(
            f"kleio: cannot reach the runner at {address} ({error}); "
            "was this program started by kleio?"
        ) from None
    if not peer_is_same_user(sock):
        sock.close()
        raise RuntimeError(
            f"kleio: the channel {address} is served by another user; "
            "refusing to send to it or read from it"
        )
    return sock


def ask(sock: socket.socket, request: dict[str, Any]) -> tuple[Any, bytes | None]:
    """Send a query on ``sock``; return the runner's answer and the bytes that follow it.

    Raises:
        RuntimeError: the runner answered with an error (the message is the runner's).
    """
    sock.sendall(record(QUERY, encode_checked(request)))
    reader = sock.makefile("rb")
    try:
        reply, payload = read_reply(reader)
    finally:
        reader.close()
    if isinstance(reply, dict) and reply.get("error"):
        raise RuntimeError(f"kleio: {reply['error']}")
    return reply, payload
