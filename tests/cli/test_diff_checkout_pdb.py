"""End-to-end tests of kleio diff, checkout and pdb."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from kleio import errors
from kleio.storage import open_store
from tests.cli.test_branch import branched
from tests.cli.test_run import short_id, write
from tests.conftest import git, run_kleio

STATS = """
    import sys
    from kleio.client.logger import kleio_logger
    lr = float(sys.argv[2])
    for epoch in (1, 2, 3):
        kleio_logger.log_statistic(epoch=epoch, loss=lr / epoch, acc=0.5 + lr * epoch)
    kleio_logger.log_artifact("w.bin", b"weights-%d" % int(lr * 10), epoch=3)
"""


def _two_trials(git_repo):
    write(git_repo / "fit.py", STATS)
    git(git_repo, "add", "fit.py")
    git(git_repo, "commit", "-q", "-m", "fit")
    a = short_id(run_kleio("python", "fit.py", "--lr", "0.1", cwd=git_repo).stderr)
    with open(git_repo / "fit.py", "a", encoding="utf-8") as handle:
        handle.write("print('changed')\n")
    write(git_repo / "util.py", "HELPER = 1\n")
    result = run_kleio("branch", a, "--lr", "0.2", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    return a, branched(result.stderr)[1]


def test_diff_and_checkout(git_repo, db_uri, tmp_path):
    a, b = _two_trials(git_repo)
    result = run_kleio("diff", a, b, "--json", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    diff = json.loads(result.stdout)
    assert diff["options"] == [{"option": "lr", "a": "0.1", "b": "0.2"}]
    assert "uncommitted change: fit.py (+1 -0)" in diff["code"]["changes"]
    assert "+print('changed')" in diff["code"]["diff"]
    assert "+++ b/util.py" in diff["code"]["diff"]
    stats = {s["key"]: s for s in diff["statistics"]}
    # b is a branch of a cut at its end: its lineage holds a's statistics, then its own.
    assert stats["loss"]["best"] == [0.1 / 3, 0.1 / 3] and stats["loss"]["better"] == "lower"
    assert stats["acc"]["last"] == [0.5 + 0.1 * 3, 0.5 + 0.2 * 3]
    human = run_kleio("diff", a, b, cwd=git_repo).stdout
    assert "  lr: 0.1 → 0.2" in human and "+print('changed')" in human
    # checkout: the branch's code (commit + diff + untracked) in a new directory.
    out = tmp_path / "co"
    done = run_kleio("checkout", b, "-o", str(out), cwd=git_repo)
    assert done.returncode == 0, done.stderr
    assert (out / "fit.py").read_text() == (git_repo / "fit.py").read_text()
    assert (out / "util.py").read_text() == "HELPER = 1\n"
    head = git(out, "rev-parse", "HEAD").strip()
    assert head == git(git_repo, "rev-parse", "HEAD").strip()
    assert (
        git(out, "remote", "get-url", "origin").strip()
        == "https://example.invalid/team/project.git"
    )
    # In the checkout, the trial's command is the same trial, with the same code.
    again = run_kleio("run", b, cwd=out)
    assert again.returncode == errors.EXIT_NOT_RESERVABLE, again.stderr  # completed
    checkout_a = tmp_path / "a"
    assert run_kleio("checkout", a, "-o", str(checkout_a), cwd=git_repo).returncode == 0
    assert "changed" not in (checkout_a / "fit.py").read_text()
    assert not (checkout_a / "util.py").exists()
    refused = run_kleio("checkout", a, "-o", str(out), cwd=git_repo)
    assert refused.returncode == errors.EXIT_USAGE and "already exists" in refused.stderr


def test_pdb_reads_commands_from_stdin(git_repo, db_uri):
    a, b = _two_trials(git_repo)
    commands = (
        "p trial.statistics[-1]['epoch'], len(trial.statistics)\n"
        "p trial.artifact('w.bin')\n"
        "p trial.info['parent']['id'][:7]\n"
        "c\n"
    )
    result = run_kleio("pdb", b, input=commands, cwd=git_repo)
    assert result.returncode == 0, result.stderr
    assert "(3, 6)" in result.stdout
    assert "b'weights-2'" in result.stdout
    assert f"'{a}'" in result.stdout
    no_tty = subprocess.run(
        [sys.executable, "-m", "kleio", "pdb", b],
        cwd=git_repo,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    assert no_tty.returncode == errors.EXIT_NO_TTY
    assert no_tty.stderr.startswith("error: kleio pdb needs a terminal")


def test_pdb_rerun_stops_post_mortem_and_journals_nothing(git_repo, db_uri):
    write(
        git_repo / "crash.py",
        """
        import sys
        def divide(x):
            return 1 / x
        print("starting", sys.argv[1:])
        divide(int(sys.argv[2]))
    """,
    )
    first = run_kleio("python", "crash.py", "--x", "0", cwd=git_repo)
    assert first.returncode == 1
    trial = short_id(first.stderr)
    with open_store(db_uri) as store:
        [doc] = store.find_trials(id_prefix=trial)
        before = store.last_seq(trial_id=doc["id"])
    # It stops at the first line; 'c' runs it to the exception, post-mortem.
    result = run_kleio("pdb", "--rerun", trial, input="c\np x\nq\n", cwd=git_repo)
    assert "starting ['--x', '0']" in result.stdout
    assert "ZeroDivisionError" in result.stdout + result.stderr
    assert "-> return 1 / x" in result.stdout and "(Pdb) 0" in result.stdout
    assert "warning" not in result.stderr  # the code is the trial's
    # A breakpoint given on stdin stops the program there, before the crash.
    stopped = run_kleio(
        "pdb", "--rerun", trial, input="b crash.py:4\nc\np ('at', x)\nq\n", cwd=git_repo
    )
    assert "(Pdb) ('at', 0)" in stopped.stdout, stopped.stdout
    assert "Traceback" not in stopped.stdout + stopped.stderr  # stopped before the division
    with open_store(db_uri) as store:
        assert store.last_seq(trial_id=doc["id"]) == before
    # Today's code is not the trial's: said before the session starts.
    with open(git_repo / "crash.py", "a", encoding="utf-8") as handle:
        handle.write("print('edited')\n")
    edited = run_kleio("pdb", "--rerun", trial, input="q\n", cwd=git_repo)
    assert f"kleio pdb: warning: this is not the code trial {trial} ran" in edited.stderr
    assert "untracked file changed: crash.py" in edited.stderr


def test_checkout_puts_back_the_commit_and_says_what_stays_masked(git_repo, db_uri, tmp_path):
    write(
        git_repo / "train.py",
        """
        API_KEY = "sk-committedcommittedcommitted"
        print("ok")
    """,
    )
    git(git_repo, "commit", "-q", "-am", "a key")
    # The key leaves the code; a new secret comes in an untracked file.
    write(
        git_repo / "train.py",
        """
        import os
        API_KEY = os.environ.get("KEY")
        print("ok")
    """,
    )
    write(git_repo / "local.sh", "export DB_PASSWORD=hunter2\n")
    trial = short_id(run_kleio("python", "train.py", cwd=git_repo).stderr)
    out = tmp_path / "co"
    done = run_kleio("checkout", trial, "-o", str(out), cwd=git_repo)
    assert done.returncode == 0, done.stderr
    assert (out / "train.py").read_text() == (git_repo / "train.py").read_text()
    assert (out / "local.sh").read_text() == "export DB_PASSWORD=***\n"
    assert "secrets were masked as *** in local.sh: put them back" in done.stdout
    diff = run_kleio("diff", trial, trial, cwd=git_repo)
    assert diff.returncode == 0, diff.stderr


def _tampered(git_repo, db_uri, original=None, *, untracked=None, patch=None, **fields):
    """A trial (a new one, or ``original`` again) whose journal says what a tampered one
    would; returns its id."""
    if original is None:
        trial = short_id(run_kleio("python", "train.py", cwd=git_repo).stderr)
        with open_store(db_uri) as store:
            [original] = store.find_trials(id_prefix=trial)
    doc = json.loads(json.dumps(original))
    code = doc["code"]
    with open_store(db_uri) as store:
        if untracked is not None:
            digest, size = store.put_blob(fileobj=io.BytesIO(b"echo pwned\n"))
            code["untracked"] = [{"path": untracked, "sha256": digest, "size": size}]
        if patch is not None:
            code["diff_sha256"], code["diff_size"] = store.put_blob(fileobj=io.BytesIO(patch))
            code["dirty"] = True
    code.update(fields)
    # As whoever can write the journal file would: past the store's own API.
    with sqlite3.connect(db_uri[len("sqlite://") :]) as db:
        db.execute("UPDATE trials SET doc = ? WHERE id = ?", (json.dumps(doc), doc["id"]))
    db.close()
    return doc["id"][:7]


def _new_file(path, content=b"echo pwned\n", mode="100755"):
    lines = content.decode().splitlines()
    return (
        f"diff --git a/{path} b/{path}\nnew file mode {mode}\n--- /dev/null\n"
        f"+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{line}\n" for line in lines)
    ).encode()


def _symlink(path, target):
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 120000\n--- /dev/null\n"
        f"+++ b/{path}\n@@ -0,0 +1 @@\n+{target}\n\\ No newline at end of file\n"
    ).encode()


TAMPERINGS = [
    {"untracked": "../evil.py"},
    {"untracked": "sub/../../evil.py"},
    {"untracked": "ABSOLUTE"},
    {"untracked": ".git/hooks/post-checkout"},
    {"untracked": ".GIT/hooks/post-checkout"},  # .git on a case-insensitive disk
    {"untracked": ".g\u200cit/hooks/post-checkout"},  # .git on macOS
    {"untracked": "./x.py"},
    {"untracked": "a\0b.py"},
    {"untracked": "x" * 100_000},
    {"untracked": 7},
    {"patch": _new_file(".git/hooks/post-checkout")},
    {"patch": _new_file("../evil.py")},
    {"patch": _symlink("out", "../..")},  # a link out of the checkout
    {"patch": _symlink("abs", "/etc")},
    {"patch": _symlink("hooks", ".git/hooks")},  # a link into .git
    {"patch": _symlink("sub", "."), "untracked": "sub/x.py"},  # a file written through a link
    {"commit": "--upload-pack=touch pwned"},
    {"diff_sha256": "../../../../etc/passwd"},
]


def test_checkout_refuses_a_tampered_journal(git_repo, db_uri, tmp_path):
    trial = short_id(run_kleio("python", "train.py", cwd=git_repo).stderr)
    with open_store(db_uri) as store:
        [original] = store.find_trials(id_prefix=trial)
    checkouts = tmp_path / "checkouts"
    checkouts.mkdir()
    for tampering in TAMPERINGS:
        if tampering.get("untracked") == "ABSOLUTE":
            tampering = {"untracked": str(tmp_path / "evil.py")}
        _tampered(git_repo, db_uri, original, **tampering)
        out = checkouts / "co"
        refused = run_kleio("checkout", trial, "-o", str(out), cwd=git_repo)
        assert refused.returncode == errors.EXIT_USAGE, (tampering, refused.stderr)
        [line] = refused.stderr.splitlines()
        assert line.startswith("error: refusing the trial's recorded code: "), line
        assert line.endswith("The journal may have been altered; nothing was written."), line
        assert len(line) < 400, line
        assert not out.exists(), tampering  # what was written is removed
        assert list(checkouts.iterdir()) == [], tampering
        assert not (tmp_path / "evil.py").exists(), tampering
        assert not (git_repo / ".git" / "hooks" / "post-checkout").exists(), tampering


def test_diff_refuses_a_tampered_journal(git_repo, db_uri):
    good = short_id(run_kleio("python", "train.py", "--x", "1", cwd=git_repo).stderr)
    bad = _tampered(git_repo, db_uri, untracked="../evil.py")
    compared = run_kleio("diff", good, bad, cwd=git_repo)
    assert compared.returncode == errors.EXIT_USAGE
    assert compared.stderr.startswith(
        "error: refusing the trial's recorded code: untracked "
        "file '../evil.py' leaves the directory"
    )


def test_checkout_writes_nothing_through_a_link_in_the_commit(git_repo, db_uri, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    os.symlink(str(tmp_path / "elsewhere"), git_repo / "data")
    git(git_repo, "add", "data")
    git(git_repo, "commit", "-q", "-m", "a link to the data")
    trial = _tampered(git_repo, db_uri, untracked="data/evil.py")
    refused = run_kleio("checkout", trial, "-o", str(tmp_path / "co"), cwd=git_repo)
    assert refused.returncode == errors.EXIT_USAGE
    assert "file 'data/evil.py' is under a symbolic link" in refused.stderr
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_checkout_outside_git_writes_only_the_script_by_its_name(tmp_path, db_uri):
    plain = tmp_path / "plain"
    plain.mkdir()
    write(plain / "t.py", "TOKEN = 'ghp_abcdefghijklmnopqrstuvwxyz01'\nprint(1)\n")
    trial = short_id(run_kleio("python", "t.py", cwd=plain).stderr)
    done = run_kleio("checkout", trial, "-o", str(tmp_path / "co"), cwd=plain)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "co" / "t.py").read_text() == "TOKEN = '***'\nprint(1)\n"
    with open_store(db_uri) as store:
        [original] = store.find_trials(id_prefix=trial)
    for fields in [
        {"script": "/x/.."},
        {"script": "/x/.git"},
        {"script": "/x/"},
        {"script_sha256": "../../etc/passwd"},
    ]:
        _tampered(None, db_uri, original, **fields)
        refused = run_kleio("checkout", trial, "-o", str(tmp_path / "again"), cwd=plain)
        assert refused.returncode == errors.EXIT_USAGE, (fields, refused.stderr)
        assert refused.stderr.startswith("error: refusing the trial's recorded code: "), fields
        assert not (tmp_path / "again").exists()


def test_safe_path_accepts_names_and_refuses_places():
    from kleio.codestate import UnsafeSnapshot, safe_path

    for path in [
        "a.py",
        "pkg/mod.py",
        ".gitignore",
        ".github/ci.yml",
        "a/b.git",
        "git",
        "sp ace/\u00e9.py",
        "\udcff.py",
        "x" * 255,
    ]:
        assert safe_path(path, "file") == path
    for path in [
        "",
        "/etc/x",
        "../x",
        "a/../../x",
        "a//b",
        "a/",
        "./a",
        ".git",
        "a/.git/x",
        ".GIT/x",
        ".git./x",
        ".git::$INDEX_ALLOCATION/x",
        "git~1/x",
        ".g\u200cit/x",
        "a\0b",
        "x" * 256,
        "\ud800.py",
        None,
        3,
        ["a"],
    ]:
        with pytest.raises(UnsafeSnapshot):
            safe_path(path, "file")
