"""Secrets in the recorded code: masked in sources and diffs, diffs still apply."""

from __future__ import annotations

import subprocess

import pytest

from kleio.redact import REDACTED, redact_text
from kleio.snapshot.masking import mask_patch, restore_patch
from tests.conftest import git

PEM_LINES = [
    "-----BEGIN RSA PRIVATE KEY-----",
    "MIIEpAIBAAKCAQEA7",
    "q9Zx",
    "-----END RSA PRIVATE KEY-----",
]


@pytest.mark.parametrize(
    ("line", "path", "expected"),
    [
        ('API_KEY = "sk-abcdefghijklmnopqrstuvwxyz"', "a.py", 'API_KEY = "***"'),
        ('password: str = "hunter2"', "a.py", 'password: str = "***"'),
        (
            'os.environ["AWS_SECRET_ACCESS_KEY"] = "wJalrXUtn/K7MDENG"',
            "a.py",
            'os.environ["AWS_SECRET_ACCESS_KEY"] = "***"',
        ),
        ('client = Client(api_key="abc123")', "a.py", 'client = Client(api_key="***")'),
        ('{"password": "x"}', "a.json", '{"password": "***"}'),
        ('conn = "host=h;password=abc;user=u"', "a.py", 'conn = "host=h;password=***;user=u"'),
        (
            'url = "https://h/x?api_key=abc&page=2"',
            "a.py",
            'url = "https://h/x?api_key=***&page=2"',
        ),
        ("# see mongodb://u:pa/ss@h/db", "a.py", "# see mongodb://u:***@h/db"),
        ('run("prog --password hunter2")', "a.py", 'run("prog --password ***")'),
        ('aws = "AKIAABCDEFGHIJKLMNOP"', "a.py", 'aws = "***"'),
        (
            'h = {"Authorization": "Bearer abcdefghijklmnop"}',
            "a.py",
            'h = {"Authorization": "Bearer ***"}',
        ),
        ("  password: hunter2", "conf.yaml", "  password: ***"),
        ("AWS_SECRET_ACCESS_KEY=wJalr", ".env", "AWS_SECRET_ACCESS_KEY=***"),
        ("export GITHUB_TOKEN=ghp_abc", "run.sh", "export GITHUB_TOKEN=***"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG",
            "credentials",
            "aws_secret_access_key = ***",
        ),
        ("//registry.npmjs.org/:_authToken=abc", ".npmrc", "//registry.npmjs.org/:_authToken=***"),
    ],
)
def test_secrets_in_sources_are_masked(line, path, expected):
    assert redact_text(line + "\n", path) == expected + "\n"


@pytest.mark.parametrize(
    ("line", "path"),
    [
        ('key = "lr"', "a.py"),  # a dictionary key, not a credential
        ('token = "[CLS]"', "a.py"),
        ("db_password = get_password()", "a.py"),  # code, not a value
        ("password = hunter2", "a.py"),  # in a program a bare word is a variable
        ("f(api_key=api_key, auth=auth)", "a.py"),
        ("secret_token: ${TOKEN}", "conf.yaml"),  # a reference
        ("password: ''", "conf.yaml"),
        ("use_auth: true", "conf.yaml"),
        ("  key: learning_rate", "conf.yaml"),
        ("for key, value in sorted(items):", "a.py"),
        ("max_tokens = 512", "a.py"),
    ],
)
def test_ordinary_code_is_left_alone(line, path):
    assert redact_text(line, path) == line


def test_a_pem_key_keeps_its_lines():
    text = 'KEY = """\n' + "\n".join(PEM_LINES) + '\n"""\nX = 1\n'
    masked = redact_text(text, "keys.py")
    assert masked.splitlines() == [
        'KEY = """',
        PEM_LINES[0],
        REDACTED,
        REDACTED,
        PEM_LINES[3],
        '"""',
        "X = 1",
    ]


def test_masking_keeps_every_line_and_every_other_byte():
    text = "a = 1\r\npassword: hunter2\r\n\xe9t\xe9 = '\udcff'\n\n"
    masked = redact_text(text, "c.yaml")
    assert masked == "a = 1\r\npassword: ***\r\n\xe9t\xe9 = '\udcff'\n\n"


def _repo(tmp_path, files):
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for name, text in files.items():
        (repo / name).write_text(text, encoding="utf-8")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def _diff(repo):
    return subprocess.run(
        ["git", "diff", "HEAD", "--binary", "--src-prefix=a/", "--dst-prefix=b/"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout


def test_a_masked_patch_applies_once_restored_from_the_commit(tmp_path):
    # The commit holds a key; the working tree removes it and adds another secret: both are
    # masked in the recorded diff, and the diff still applies to the commit.
    repo = _repo(
        tmp_path,
        {
            "train.py": 'import os\nAPI_KEY = "sk-committedcommittedcommitted"\nlr = 0.1\n',
            "my file.yaml": "user: me\npassword: old\n",
        },
    )
    (repo / "train.py").write_text(
        'import os\nAPI_KEY = os.environ["KEY"]\nlr = 0.2\n', encoding="utf-8"
    )
    (repo / "my file.yaml").write_text("user: me\npassword: new-secret\n", encoding="utf-8")
    (repo / "blob.bin").write_bytes(b"\0password=x\0")
    git(repo, "add", "-N", "blob.bin")
    original = _diff(repo)
    masked, found = mask_patch(original)
    assert b"committed" not in masked and b"new-secret" not in masked and b"old" not in masked
    # Same lines, but for the blob ids of the masked files (hashes of their secrets).
    assert masked.count(b"\n") == original.count(b"\n") - 2
    assert [line for line in masked.splitlines() if line.startswith(b"index ")] == [
        line for line in original.splitlines() if line.startswith(b"index 0000000")
    ]
    assert b"Binary" in masked or b"GIT binary patch" in masked  # kept as git wrote it
    # Counted: what a checkout shows masked (added lines), not what it puts back.
    assert found == {"my file.yaml": 1}

    def base(path):
        shown = subprocess.run(
            ["git", "cat-file", "blob", f"HEAD:{path}"], cwd=repo, capture_output=True
        )
        return shown.stdout if shown.returncode == 0 else None

    restored = restore_patch(masked, base)
    assert b"sk-committedcommittedcommitted" in restored  # from the commit, not the journal
    assert b"new-secret" not in restored
    git(repo, "reset", "-q", "--hard")
    (repo / "p.diff").write_bytes(restored)
    git(repo, "apply", "p.diff")
    assert (repo / "train.py").read_text(encoding="utf-8").endswith("lr = 0.2\n")
    assert (repo / "my file.yaml").read_text(encoding="utf-8") == "user: me\npassword: ***\n"


def test_restoring_never_takes_a_line_that_does_not_match():
    patch = (
        b"diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,2 +1,2 @@\n"
        b' KEY = "***"\n-x = 1\n+x = 2\n'
    )
    assert restore_patch(patch, lambda path: b'OTHER = "y"\nx = 1\n') == patch
    assert b'KEY = "abc"' in restore_patch(patch, lambda path: b'KEY = "abc"\nx = 1\n')
    assert restore_patch(patch, lambda path: None) == patch


def test_quoted_paths_are_read(tmp_path):
    name = 'q"u\to\u00e9.yaml'
    repo = _repo(tmp_path, {name: "password: a\nx: 1\n"})
    (repo / name).write_text("password: a\nx: 2\n", encoding="utf-8")
    masked, found = mask_patch(_diff(repo))
    assert b"password: ***" in masked and found == {}  # a context line: not counted
    restored = restore_patch(
        masked, lambda path: (repo / path).read_bytes() if path == name else None
    )
    assert b" password: a\n" in restored


def test_garbage_patches_do_not_crash():
    for patch in [
        b"",
        b"@@ -1 +1 @@\n+password=x\n",
        b'diff --git "a/\\q" "b\n',
        b"@@ -99999999999999999999,1 +1 @@\n",
        b"\xff\xfe password=x\n",
        b"diff --git a/x b/x\n@@ -1,1000000 +1,1000000 @@\n password: x",
    ]:
        masked, _ = mask_patch(patch)
        restore_patch(masked, lambda path: b"password: x\n")
