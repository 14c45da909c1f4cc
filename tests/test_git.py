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
    urls = ["git@github.com:a/b.git", "github.com:a/b", "u@h://x", "ssh://h/p", "C:/x", "h:",
            ":p", "@h:p", "a@b@c:d", "u@h:/abs", "h:p\nq", "u/x@h:p", "u:x@h:p", "host:p//q"]
    rng = random.Random(5)
    urls += ["".join(rng.choice("ab@:/.\n") for _ in range(rng.randrange(10)))
             for _ in range(20000)]
    for url in urls:
        assert scp_like(url) == _by_pattern(url), url


def test_urls_are_split_as_urlsplit_splits_them():
    from urllib.parse import urlsplit

    from kleio.git import split_url

    urls = ["https://user:pw@GitHub.com:443/a/b.git", "ssh://git@github.com:22/a/b",
            "file:///srv/repos/x.git", "file://host/x", "git+ssh://h/p?q#f", "http://[::1]:80/p",
            "https://h", "a:b://c", "1x://h/p", "https://u@h@v/p", "https://h/p\tq\n"]
    rng = random.Random(9)
    urls += ["".join(rng.choice("ab:/@?#[].1\t") for _ in range(rng.randrange(14)))
             for _ in range(20000)]
    for url in urls:
        try:
            parts = urlsplit(url)
            expected = (parts.scheme, (parts.hostname or "").lower(), parts.path)
        except ValueError:  # an invalid IPv6 host: urlsplit refuses it
            continue
        assert split_url(url) == expected, url
