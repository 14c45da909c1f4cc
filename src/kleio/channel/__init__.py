"""The I/O side of a runner: tee and journal the program's output, read its clients.

One thread (:mod:`kleio.channel.thread`) copies the child's stdout/stderr to the terminal as
they come and cuts them into journal lines (:mod:`kleio.channel.output`,
:mod:`kleio.channel.lines`), tails the ledger files every process of the program appends its
statistics and artifacts to (:mod:`kleio.ledger`), and reads the connections that come over
the Unix-domain socket (:mod:`kleio.channel.clients`; wire format in :mod:`kleio.client`).
Only processes of the user may connect: the socket's directory is private and checked, and
every peer's uid is checked.
"""

from __future__ import annotations

from kleio.channel.lines import LineCutter
from kleio.channel.thread import IOThread

__all__ = ["IOThread", "LineCutter"]
