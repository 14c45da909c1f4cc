"""``--db`` after the command as before it: reading commands anywhere before ``--``, ``run``
and ``save`` among their leading options; the program's own ``--db`` stays the program's."""

from __future__ import annotations

import json

from tests.conftest import git, run_kleio, write

PROGRAM = "import sys\nprint(' '.join(sys.argv[1:]))\n"


def _repo(git_repo):
    write(git_repo / "echo.py", PROGRAM)
    git(git_repo, "add", "echo.py")
    git(git_repo, "commit", "-qm", "echo")


def _ids(repo, *args):
    result = run_kleio("ls", "--json", *args, cwd=repo)
    assert result.returncode == 0, result.stderr
    return [row["id"] for row in json.loads(result.stdout)]


def test_run_and_save_take_db_before_the_program_and_pass_the_programs_own(git_repo, tmp_path):
    _repo(git_repo)
    other = tmp_path / "other.db"
    ran = run_kleio("run", "--db", str(other), "python", "echo.py", "--db", "mine", cwd=git_repo)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "--db mine\n"  # the program's --db is the program's
    saved = run_kleio("save", f"--db={other}", "-q", "python", "echo.py", "2", cwd=git_repo)
    assert saved.returncode == 0, saved.stderr
    # Both went to the other journal, none to the default one.
    assert len(_ids(git_repo, "--db", str(other))) == 2
    assert "there is no journal" in run_kleio("ls", cwd=git_repo).stdout  # the default: none
    # An empty one is refused, not taken for "not given" (the default journal).
    for command in ("run", "save"):
        empty = run_kleio(command, "--db=", "python", "echo.py", cwd=git_repo)
        assert empty.returncode == 65 and "must be a non-empty string" in empty.stderr
    assert "there is no journal" in run_kleio("ls", cwd=git_repo).stdout


def test_reading_commands_take_db_anywhere_before_the_double_dash(git_repo, tmp_path):
    _repo(git_repo)
    other = tmp_path / "other.db"
    assert run_kleio("--db", str(other), "python", "echo.py", cwd=git_repo).returncode == 0
    (trial,) = _ids(git_repo, "--db", str(other))
    assert _ids(git_repo, f"--db={other}", "--all") == [trial]
    info = run_kleio("info", trial, "--json", "--db", str(other), cwd=git_repo)
    assert json.loads(info.stdout)["id"] == trial
    # Given twice, the one after the command wins, as the more specific.
    missing = tmp_path / "missing.db"
    later = run_kleio("--db", str(missing), "ls", "--json", "--db", str(other), cwd=git_repo)
    assert [row["id"] for row in json.loads(later.stdout)] == [trial]
    bare = run_kleio("ls", "--db", cwd=git_repo)
    assert bare.returncode == 64 and bare.stderr == (
        "error: --db needs a URI. E.g. --db sqlite:///tmp/kleio.db.\n"
    )


def test_branch_takes_db_before_the_id_and_masks_secrets_in_its_reason(git_repo, tmp_path):
    _repo(git_repo)
    other = tmp_path / "other.db"
    assert run_kleio("--db", str(other), "python", "echo.py", cwd=git_repo).returncode == 0
    (trial,) = _ids(git_repo, "--db", str(other))
    made = run_kleio(
        "branch", "--db", str(other), "--no-run", "-q", trial, "--password", "hunter2",
        cwd=git_repo,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "hunter2" not in made.stdout + made.stderr
    assert len(_ids(git_repo, f"--db={other}", "--all")) == 2
    (branch,) = [i for i in _ids(git_repo, "--db", str(other), "--all") if i != trial]
    info = run_kleio("info", branch, "--json", "--db", str(other), cwd=git_repo)
    assert "hunter2" not in info.stdout
    assert json.loads(info.stdout)["branch_reason"].startswith("--password '***'")


def test_each_reading_command_s_help_lists_db(git_repo):
    from kleio.cli import _TAKES_A_PROGRAM, COMMANDS

    for name in sorted(set(COMMANDS) - _TAKES_A_PROGRAM):
        shown = run_kleio(name, "--help", cwd=git_repo)
        assert shown.returncode == 0, (name, shown.stderr)
        assert "--db URI" in shown.stdout, name
