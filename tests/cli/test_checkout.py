"""End-to-end tests of kleio checkout: the recorded code put back, and a tampered journal
refused."""

from __future__ import annotations

import os

from kleio import errors
from kleio.storage import open_store
from tests.cli.recorded_code import _tampered
from tests.cli.test_run import short_id, write
from tests.conftest import git, run_kleio


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
