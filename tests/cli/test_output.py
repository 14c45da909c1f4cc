"""What commands write out (kleio.cli.output): the file of ``-o FILE``; the replayed lines of
a program are tested with ``cat`` and ``tail``."""

from __future__ import annotations

import errno
import os

import pytest

from kleio.cli.output import _cannot_write, open_output
from kleio.errors import UsageError


def test_open_output_writes_a_private_file_and_names_the_path_it_cannot_write(tmp_path):
    path = tmp_path / "out.csv"
    with open_output(str(path)) as out:
        out.write(b"a,b\n")
    assert path.read_bytes() == b"a,b\n" and path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(UsageError, match=r"cannot write to .*nosuch/x: the directory .*nosuch "):
        open_output(str(tmp_path / "nosuch" / "x"))
    with pytest.raises(UsageError, match="it is a directory"):
        open_output(str(tmp_path))


def test_each_failure_to_write_is_one_sentence_and_what_to_do():
    denied = str(_cannot_write("/srv/x", PermissionError(errno.EACCES, "Permission denied")))
    assert denied == "cannot write to /srv/x: permission denied. Give -o a path you may write to."
    full = str(_cannot_write("/srv/x", OSError(errno.ENOSPC, "No space left on device")))
    assert full == (
        "cannot write to /srv/x: No space left on device. Free some space or give -o another path."
    )
    odd = str(_cannot_write("/srv/\x1bx", OSError(errno.EROFS, "Read-only file system")))
    assert odd == "cannot write to /srv/\\x1bx: Read-only file system. Give -o another path."


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_failed_write_raises_the_same_error():
    out = open_output("/dev/full")
    with pytest.raises(UsageError, match="No space left on device"):
        out.write(b"x" * (1 << 20))
        out.close()
