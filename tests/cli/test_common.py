"""What the commands share (kleio.cli.common): how journalled text shows on a terminal, the
files ``-o`` writes, the checks of a tag, and which journal a reading command opens."""

from __future__ import annotations

import json

import pytest

from kleio import errors
from kleio.cli.common import printable, printable_values, table
from tests.conftest import git, run_kleio, write

# Journalled text a program controls: an option, a metric's name, a statistic, an
# artifact's name and metadata, each holding control characters; and output of its own.
HOSTILE = """
    import argparse
    from kleio.client.logger import kleio_logger as k

    p = argparse.ArgumentParser()
    p.add_argument("--name", default="x")
    p.add_argument("--seed", type=int, default=0)
    p.parse_args()
    k.declare_metrics(**{"acc\\x1b[2J": "max"})
    say = "h\\u00e9llo\\nworld\\t\\x1b[31mred\\x9b"
    k.log_statistic(**{"step": 1, "acc\\x1b[2J": 0.5, "say": say})
    k.log_artifact("f\\x1b[31m.bin", b"x", tag="\\x1b]0;pwned\\x07")
    print("\\x1b[32mgreen\\x1b[0m")
"""

#: What no human output may carry: ESC, BEL, a C1 control (as UTF-8 or as a byte), CR.
RAW = ("\x1b", "\x07", "\x9b", "\r")


def test_printable_escapes_controls_as_python_writes_them_and_nothing_else():
    assert printable("a\x1b[31mb\n\t\x00\x7f\x85\x9b") == "a\\x1b[31mb\\n\\t\\x00\\x7f\\x85\\x9b"
    assert printable("line\r\nnext\ttab\x07", lines=True) == "line\\r\nnext\ttab\\x07"
    plain = "héllo wörld 日本 C:\\path\\x1b"  # a backslash is text: nothing to escape
    assert printable(plain) is plain
    assert printable(printable("\x1b\n")) == printable("\x1b\n")  # twice changes nothing
    # An undecodable byte stays for emit() to write back, unless it would be a C1 control.
    assert printable("x\udcffy\udc9b") == "x\udcffy\\udc9b"


def test_printable_escapes_what_shows_text_in_another_order_or_not_at_all():
    invisible = "\u202e\u2066\u200b\u200d\ufeff\u2028\u2029\u061c\u00ad"
    assert printable(f"a{invisible}b") == "a" + ascii(invisible)[1:-1] + "b"
    assert all(c.isprintable() is False for c in invisible)  # (Python's repr escapes them)
    from kleio.client.stderr import one_line

    assert one_line(f"x\x1b{invisible}\ny") == "x\\x1b" + ascii(invisible)[1:-1] + "\\ny"
    assert one_line("a\nb\x07", lines=True) == "a\nb\\x07"


def test_a_tag_stored_before_the_rules_can_still_be_removed():
    from kleio.cli.common import check_tag
    from kleio.errors import UsageError

    for old in ("a,b", "c\x1bd", " padded ", "x" * 300, "password=hunter2"):
        assert check_tag(old, "hint", adding=False) == old
        with pytest.raises(UsageError):
            check_tag(old, "hint")
    with pytest.raises(UsageError):
        check_tag("", "hint", adding=False)
    with pytest.raises(UsageError, match="not a tag"):
        check_tag("a\u202eb", "hint")


def test_an_error_quoting_stored_text_escapes_it(git_repo, db_uri):
    assert run_kleio("python", "train.py", "--seed", "1", cwd=git_repo).returncode == 0
    refused = run_kleio("ls", "--columns", "no\x1b]0;pwn\x07such", cwd=git_repo)
    assert refused.returncode == errors.EXIT_USAGE
    assert "no\\x1b]0;pwn\\x07such" in refused.stderr and "\x1b" not in refused.stderr


def test_printable_values_reaches_every_string_and_survives_deep_nesting():
    record = {"k\x1b": ["v\n", {"w": "\x07"}], "n": 1.5, "none": None}
    assert printable_values(record) == {"k\\x1b": ["v\\n", {"w": "\\x07"}], "n": 1.5, "none": None}
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    assert "<nested too deeply>" in str(printable_values({"a": deep}))


def test_a_table_escapes_its_headers_and_cells_so_rows_stay_rows():
    shown = table(["NAME\x1b[2J", "V"], [["a\nb", "c\x1b]0;x\x07"], ["d", "e"]])
    assert shown == ("NAME\\x1b[2J  V\na\\nb         c\\x1b]0;x\\x07\nd            e\n")


@pytest.fixture
def hostile(git_repo, db_uri):
    """Two trials of the hostile program, newest first: ids."""
    write(git_repo / "hostile.py", HOSTILE)
    git(git_repo, "add", "hostile.py")
    git(git_repo, "commit", "-qm", "hostile")
    for name in ("a\x1b[2Jb", "c\nd"):
        ran = run_kleio("-q", "python", "hostile.py", "--name", name, cwd=git_repo)
        assert ran.returncode == 0, ran.stderr
    return [row["id"] for row in json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)]


def test_no_human_output_carries_a_control_character_from_the_journal(hostile, git_repo):
    first, second = hostile
    noted = run_kleio("note", first, "evil\x1b]0;pwned\x07\x1b[2J\nsecond line", cwd=git_repo)
    assert noted.returncode == 0, noted.stderr
    shown = {
        args: run_kleio(*args, cwd=git_repo)
        for args in [
            ("ls",),
            ("ls", "--columns", "name,acc\x1b[2J"),
            ("info", first),
            ("diff", first, second),
            ("diff", first, second, first),
            ("artifacts", first),
            ("cat", "--statistics", first),
            ("note", first),
        ]
    }
    for args, result in shown.items():
        assert result.returncode == 0, (args, result.stderr)
        assert not any(raw in result.stdout for raw in RAW), (args, result.stdout)
    assert "f\\x1b[31m.bin" in shown["artifacts", first].stdout
    assert "tag=\\x1b]0;pwned\\x07" in shown["artifacts", first].stdout
    assert "--name 'a\\x1b[2Jb'" in shown["ls",].stdout
    assert "name = c\\nd" in shown["info", first].stdout
    assert "name: c\\nd → a\\x1b[2Jb" in shown["diff", first, second].stdout
    statistics = shown["cat", "--statistics", first].stdout.splitlines()
    assert statistics[0].split() == ["STEP", "ACC\\x1b[2J", "SAY"]
    assert statistics[1].split() == ["1", "0.5", "héllo\\nworld\\t\\x1b[31mred\\x9b"]
    assert len(statistics) == 2  # the newline in the value did not split its row
    # A note keeps its lines; its escape sequences show.
    assert shown["note", first].stdout == "evil\\x1b]0;pwned\\x07\\x1b[2J\nsecond line\n"
    # JSON escapes them its own way, and a program's output is replayed as it printed it.
    cells = json.loads(run_kleio("cat", "--statistics", "--json", first, cwd=git_repo).stdout)
    assert cells["say"] == "héllo\nworld\t\x1b[31mred\x9b"
    assert run_kleio("cat", first, cwd=git_repo).stdout.startswith("\x1b[32mgreen\x1b[0m\n")


@pytest.mark.parametrize(
    "args",
    [
        ("info", "abcd"),
        ("tag", "abcd"),
        ("cat", "abcd"),
        ("diff", "abcd", "ef01"),
        ("artifacts", "abcd"),
        ("best",),
        ("export",),
        ("ls",),
    ],
)
def test_a_reading_command_leaves_an_empty_file_alone_as_no_journal(tmp_path, args):
    empty = tmp_path / "e.db"
    empty.touch()
    result = run_kleio("--db", str(empty), *args, cwd=tmp_path)
    if args == ("ls",):  # (ls answers "no trials yet" and exits 0, as without the file)
        assert result.returncode == 0 and str(empty) in result.stderr + result.stdout
        assert empty.stat().st_size == 0 and not (tmp_path / "e.db-wal").exists()
        return
    assert result.returncode == errors.EXIT_STORE
    expected = f"error: there is no journal at {empty} yet (the file is empty)."
    assert result.stderr.startswith(expected)
    assert empty.stat().st_size == 0 and not (tmp_path / "e.db-wal").exists()


def test_json_output_escapes_what_a_terminal_must_not_get_and_stays_the_same_value():
    import json as _json

    from kleio.cli.common import json_line

    value = {"k\u202e": "a\x7fb\x9bc\x85d\u2028e é日"}
    line = json_line(value)
    assert _json.loads(line) == value
    assert line == '{"k\\u202e": "a\\u007fb\\u009bc\\u0085d\\u2028e é日"}\n'.encode()
