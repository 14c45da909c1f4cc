"""kleio.git: what it parses without git or re."""

from __future__ import annotations

import random
import re

from kleio.git import scp_like

PATTERN = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^/:]+):(?P<path>(?!//).*)$")


def _by_pattern(url):
    match = PATTERN.match(url)
    return None if match is None else (match.group("host"), match.group("path"))


def test_scp_like_urls_are_read_as_the_pattern_reads_them():
    urls = [
        "git@github.com:a/b.git",
        "github.com:a/b",
        "u@h://x",
        "ssh://h/p",
        "C:/x",
        "h:",
        ":p",
        "@h:p",
        "a@b@c:d",
        "u@h:/abs",
        "h:p\nq",
        "u/x@h:p",
        "u:x@h:p",
        "host:p//q",
    ]
    rng = random.Random(5)
    urls += [
        "".join(rng.choice("ab@:/.\n") for _ in range(rng.randrange(10))) for _ in range(20000)
    ]
    for url in urls:
        assert scp_like(url) == _by_pattern(url), url


def test_urls_are_split_as_urlsplit_splits_them():
    from urllib.parse import urlsplit

    from kleio.git import split_url

    urls = [
        "https://user:pw@GitHub.com:443/a/b.git",
        "ssh://git@github.com:22/a/b",
        "file:///srv/repos/x.git",
        "file://host/x",
        "git+ssh://h/p?q#f",
        "http://[::1]:80/p",
        "https://h",
        "a:b://c",
        "1x://h/p",
        "https://u@h@v/p",
        "https://h/p\tq\n",
    ]
    rng = random.Random(9)
    urls += [
        "".join(rng.choice("ab:/@?#[].1\t") for _ in range(rng.randrange(14))) for _ in range(20000)
    ]
    for url in urls:
        try:
            parts = urlsplit(url)
            expected = (parts.scheme, (parts.hostname or "").lower(), parts.path)
        except ValueError:  # an invalid IPv6 host: urlsplit refuses it
            continue
        assert split_url(url) == expected, url


def test_origin_is_read_from_the_config_file_as_git_reads_it(tmp_path):
    """Quotes, escapes and a comment after the value: the URL git uses, and so a project
    without the credentials (a comment once made the quoted URL, password and all, the
    project)."""
    import subprocess

    from kleio.git import origin_url, project_of
    from tests.conftest import git

    values = [
        '"https://alice:pw1@github.com/o/r.git" ; work account',
        "https://github.com/o/r.git # c",
        '"a b" ; x',
        'a\\"b',
        "x;y",
        '"x;y"',
        "  spaced  ",
        "git@host.com:o/r.git",
    ]
    for number, value in enumerate(values):
        repo = tmp_path / f"r{number}"
        repo.mkdir()
        git(repo, "init", "-q")
        with open(repo / ".git" / "config", "a", encoding="utf-8") as handle:
            handle.write(f'[remote "origin"]\n\turl = {value}\n')
        expected = subprocess.run(
            ["git", "-C", str(repo), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.rstrip("\n")
        assert origin_url(str(repo)) == expected, value
    first = tmp_path / "r0"
    assert project_of(str(first), str(first)) == "github.com/o/r"
