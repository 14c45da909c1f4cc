"""What counts as an environment change on resume, and what ``kleio diff`` shows (issue 8)."""

from __future__ import annotations

import json
import os

from kleio import errors
from tests.conftest import git, run_kleio, write

SCRIPT = """
    import os, sys
    sys.exit(int(os.environ.get("FAIL", "0")))
"""


def first_run(repo, **env):
    write(repo / "job.py", SCRIPT)
    git(repo, "add", "job.py")
    git(repo, "commit", "-q", "-m", "job")
    result = run_kleio("python", "job.py", cwd=repo, env={**os.environ, "FAIL": "1", **env})
    assert result.returncode == 1, result.stderr
    return result


def test_placement_and_host_never_refuse_a_resume(git_repo, db_uri):
    first_run(git_repo, CUDA_VISIBLE_DEVICES="0", OMP_NUM_THREADS="8", KLEIO_HOSTNAME="node1")
    # Another node of the cluster, other devices and thread counts: the same trial resumes.
    moved = {
        **os.environ,
        "FAIL": "0",
        "CUDA_VISIBLE_DEVICES": "2,3",
        "OMP_NUM_THREADS": "2",
        "MKL_NUM_THREADS": "2",
        "SLURM_JOB_ID": "77",
        "KLEIO_HOSTNAME": "node7",
    }
    result = run_kleio("run", "--allow-broken", "python", "job.py", cwd=git_repo, env=moved)
    assert result.returncode == 0, result.stderr
    assert "changed" not in result.stderr
    [row] = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)
    assert row["status"] == "completed"


def test_a_reproducibility_variable_refuses_a_resume(git_repo, db_uri):
    first_run(git_repo)
    seeded = {**os.environ, "FAIL": "0", "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    result = run_kleio("run", "--allow-broken", "python", "job.py", cwd=git_repo, env=seeded)
    assert result.returncode == errors.EXIT_CHANGED, result.stderr
    assert "variable CUBLAS_WORKSPACE_CONFIG (unset) → :4096:8" in result.stderr


def test_diff_lists_what_does_not_refuse(git_repo, db_uri):
    write(git_repo / "job.py", SCRIPT)
    git(repo := git_repo, "add", "job.py")
    git(repo, "commit", "-q", "-m", "job")
    a = run_kleio(
        "run",
        "-q",
        "python",
        "job.py",
        "--n",
        "1",
        cwd=repo,
        env={**os.environ, "OMP_NUM_THREADS": "8", "KLEIO_HOSTNAME": "node1"},
    )
    b = run_kleio(
        "run",
        "-q",
        "python",
        "job.py",
        "--n",
        "2",
        cwd=repo,
        env={**os.environ, "OMP_NUM_THREADS": "2", "KLEIO_HOSTNAME": "node7"},
    )
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    rows = json.loads(run_kleio("ls", "--json", cwd=repo).stdout)
    by_n = {row["command"][-1]: row["id"] for row in rows}
    shown = run_kleio("diff", by_n["1"], by_n["2"], cwd=repo)
    assert shown.returncode == 0, shown.stderr
    assert "  variable OMP_NUM_THREADS 8 → 2" in shown.stdout.splitlines()
    assert "  host hostname node1 → node7" in shown.stdout.splitlines()
    as_json = json.loads(run_kleio("diff", by_n["1"], by_n["2"], "--json", cwd=repo).stdout)
    assert "variable OMP_NUM_THREADS 8 → 2" in as_json["env"]


def test_a_trial_journalled_under_its_old_id_is_resumed_by_its_command(git_repo, db_uri):
    from kleio.identity import legacy_id
    from kleio.storage import open_store
    from kleio.trial import build_trial, store_trial

    argv = ["python", "train.py", "--lr", "0.1", "--epochs", "5"]
    doc, blobs = build_trial(argv, str(git_repo), None, [])
    old = legacy_id(doc)
    assert old is not None
    store = open_store(db_uri)
    try:
        store_trial(store, {**doc, "id": old}, blobs)  # as kleio 0.1 journalled it
    finally:
        store.close()
    result = run_kleio(*argv, cwd=git_repo)
    assert result.returncode == 0, result.stderr
    rows = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)
    assert [row["id"] for row in rows] == [old]
