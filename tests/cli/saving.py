"""What the tests of ``kleio save`` and ``kleio worker`` share: saving a trial through the
real entry point, listing the journal by short id, and a program that appends its arguments
to a file."""

from __future__ import annotations

import json

from tests.conftest import run_kleio, write


def ls(cwd):
    result = run_kleio("ls", "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return {row["id"][:7]: row for row in json.loads(result.stdout)}


def save(cwd, *args):
    result = run_kleio("save", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    prefix = "trial saved with id: "
    assert result.stdout.startswith(prefix), result.stdout
    return result.stdout[len(prefix) :].strip()


def append_script(repo, out):
    return write(
        repo / "append.py",
        f"""
        import sys
        with open({str(out)!r}, "a") as handle:
            handle.write(" ".join(sys.argv[1:]) + "\\n")
        print("ran", *sys.argv[1:])
    """,
    )
