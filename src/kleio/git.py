"""Git, in one module: every question kleio asks a repository.

The start path (a snapshot before every run) reads what it can from files: the repository
root is found by ``stat`` calls (:func:`find_root`), the origin from ``.git/config``
(:func:`origin_url`); git itself is run for the working tree's state (``git status``, one
``git diff`` when dirty) with :func:`run`. Rebuilding a trial's code (``kleio diff``,
``kleio checkout``, :mod:`kleio.codestate`) runs git plumbing through the same :func:`run`.

GitPython is not used: kleio needs the ``git`` program anyway (GitPython runs it too), and
importing GitPython would cost the start path tens of milliseconds.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; annotations are strings anyway
    from typing import Any

    from kleio.process import Finished, Running

#: The id of git's empty tree: the base of a repository without a commit.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
#: Seconds a git command may take before kleio gives up on it.
TIMEOUT = 30.0


def run(
    cwd: str,
    *args: str,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    timeout: float | None = None,
) -> Finished:
    """Run ``git ARGS`` in ``cwd``; return the finished process (output as bytes).

    ``--no-optional-locks``: never write the index, so that many jobs starting at once in one
    checkout (a cluster array on a shared file system) do not fight for ``index.lock``.

    Raises:
        OSError: git cannot be run, or (:class:`TimeoutError`) it took longer than
            ``timeout``.
    """
    from kleio.process import run as run_process

    return run_process(
        ["git", "-C", cwd, "--no-optional-locks", *args],
        env=env,
        input=input,
        timeout=TIMEOUT if timeout is None else timeout,
    )


#: The arguments of the working tree's state: branch, commit, changes, untracked files.
STATUS = ("status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all")

#: ``git status`` processes started ahead by :func:`start_status`, by repository root.
_started: dict[str, Running] = {}


def start_status(root: str) -> None:
    """Start ``git status`` in ``root`` now; :func:`status` collects its answer later.

    ``kleio run`` starts it first thing: git works on the other core while kleio imports
    what it needs, and the snapshot finds the answer ready. The state is still taken before
    the program starts.
    """
    from kleio.process import begin

    if root in _started:
        return
    try:
        _started[root] = begin(["git", "-C", root, "--no-optional-locks", *STATUS])
    except OSError:  # git missing: status() tells, as it always did
        pass


def abandon_started() -> None:
    """Kill the ``git status`` processes started ahead and never read (with what they
    started): kleio exits without needing them, they must not outlive it."""
    while _started:
        _, started = _started.popitem()
        started.kill()


def status(root: str) -> Finished:
    """``git status`` (:data:`STATUS`) of the repository at ``root``: the one
    :func:`start_status` started, else run now.

    Raises:
        OSError: git cannot be run, or (:class:`TimeoutError`) it took longer than
            :data:`TIMEOUT`.
    """
    started = _started.pop(root, None)
    if started is not None:
        return started.wait(TIMEOUT)
    return run(root, *STATUS)


def has_commit(repo: str, commit: str, env: dict[str, str] | None = None) -> bool:
    """Whether the repository at ``repo`` (with ``env``'s object directories) has ``commit``."""
    try:
        return (
            run(repo, "cat-file", "-e", f"{commit}^{{commit}}", env=env, timeout=120).returncode
            == 0
        )
    except OSError:
        return False


def find_root(start: str | None = None) -> str | None:
    """Return the closest directory at or above ``start`` holding ``.git``, or None."""
    path = os.path.abspath(start or os.getcwd())
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


# -- project -------------------------------------------------------------------------------


def scp_like(url: str) -> tuple[str, str] | None:
    """``(host, path)`` of git's scp-like syntax ``[user@]host:path``, else None.

    What the pattern ``^(?:[^@/:]+@)?(?P<host>[^/:]+):(?P<path>(?!//).*)$`` matches, without
    :mod:`re` (the start path reads the origin of every repository; a test compares the two).
    """
    at = url.find("@")
    if at > 0 and "/" not in url[:at] and ":" not in url[:at]:
        found = _host_path(url[at + 1 :])
        if found is not None:
            return found
    return _host_path(url)


def _host_path(text: str) -> tuple[str, str] | None:
    colon = text.find(":")
    if colon <= 0 or "/" in text[:colon]:
        return None
    path = text[colon + 1 :]
    newline = path.find("\n")
    if newline != -1:  # ``.*$``: to the end, or to a newline that ends the text
        if newline != len(path) - 1:
            return None
        path = path[:newline]
    if path.startswith("//"):
        return None
    return text[:colon], path


def git_dir(root: str) -> str | None:
    """The directory holding the repository's ``config``, for plain, worktree and submodule."""
    dot_git = os.path.join(root, ".git")
    if os.path.isdir(dot_git):
        return dot_git
    try:
        with open(dot_git, encoding="utf-8") as handle:
            line = handle.readline().strip()
    except OSError:
        return None
    if not line.startswith("gitdir:"):
        return None
    git_dir = os.path.normpath(os.path.join(root, line[len("gitdir:") :].strip()))
    # A linked worktree keeps its config in the common directory of the main repository.
    try:
        with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as handle:
            return os.path.normpath(os.path.join(git_dir, handle.read().strip()))
    except OSError:
        return git_dir


def _origin_from_config(text: str) -> str | None:
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]").strip()
            continue
        if section in ('remote "origin"', "remote.origin"):
            key, eq, value = line.partition("=")
            if eq and key.strip().lower() == "url":
                return config_value(value)
    return None


def config_value(raw: str) -> str:
    """A value of a git config file as git reads it: double quotes removed, a ``#`` or ``;``
    outside them starts a comment, backslash escapes read, surrounding blanks dropped (a URL
    with a comment after it must not become the project, credentials and all)."""
    raw = raw.lstrip(" \t")
    out: list[str] = []
    quoted = False
    kept = 0  # len(out) up to the last character that is not an unquoted blank
    index, size = 0, len(raw)
    while index < size:
        char = raw[index]
        index += 1
        if char == '"':
            quoted = not quoted
            continue
        if char == "\\" and index < size:
            char = {"n": "\n", "t": "\t", "b": "\b"}.get(raw[index], raw[index])
            index += 1
            out.append(char)
            kept = len(out)
            continue
        if not quoted and char in "#;":
            break
        out.append(char)
        if quoted or char not in " \t":
            kept = len(out)
    return "".join(out[:kept])


def origin_url(root: str) -> str | None:
    """Return the raw ``remote.origin.url`` of the repository at ``root``, or None.

    Read from the config file directly (a ``git`` process costs milliseconds); ``git config``
    answers only when the file uses ``include`` directives this reader does not follow.
    """
    found = git_dir(root)
    if found is None:
        return None
    try:
        with open(os.path.join(found, "config"), encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    url = _origin_from_config(text)
    if url is None and "[include" in text.lower():
        try:
            result = run(root, "config", "--get", "remote.origin.url", timeout=5)
        except OSError:
            return None
        url = result.stdout.decode("utf-8", "replace").strip() or None
    return url


_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")


def split_url(url: str) -> tuple[str, str, str]:
    """``(scheme, host, path)`` of ``url`` as :func:`urllib.parse.urlsplit` gives them
    (``scheme`` and ``host`` lower-cased, ``""`` when missing), without importing
    :mod:`urllib.parse` (and :mod:`re`) on the start path; a test compares the two."""
    for char in "\t\r\n":  # removed anywhere, as urlsplit does
        url = url.replace(char, "")
    scheme, rest = "", url
    colon = url.find(":")
    if (
        colon > 0
        and url[0].isascii()
        and url[0].isalpha()
        and all(char in _SCHEME_CHARS for char in url[:colon])
    ):
        scheme, rest = url[:colon].lower(), url[colon + 1 :]
    netloc = ""
    if rest[:2] == "//":
        end = len(rest)
        for char in "/?#":
            found = rest.find(char, 2)
            if found != -1 and found < end:
                end = found
        netloc, rest = rest[2:end], rest[end:]
    for char in "?#":
        found = rest.find(char)
        if found != -1:
            rest = rest[:found]
    host = netloc.rpartition("@")[2]
    bracketed = "[" in host  # an IPv6 address: [::1]:80
    host = host.partition("[")[2].partition("]")[0] if bracketed else host.partition(":")[0]
    return scheme, host.lower(), rest


def normalize_remote(url: str) -> str:
    """Spell a git remote URL one way, without credentials: ``host/owner/name``.

    ``git@github.com:a/b.git``, ``ssh://git@github.com:22/a/b``, ``https://user:pw@github.com/a/b/``
    all become ``github.com/a/b``. A local path stays a path (without a trailing ``.git``).
    """
    url = url.strip()
    if "://" in url:
        scheme, host, path = split_url(url)
        if scheme != "file":
            path = host + "/" + path.lstrip("/")
    else:
        found = scp_like(url)
        # ``C:/x`` is a Windows path, not host ``C``.
        if found is not None and len(found[0]) > 1:
            path = found[0].lower() + "/" + found[1].lstrip("/")
        else:
            path = url
    path = path.rstrip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    return path.rstrip("/")


def project_of(root: str | None, cwd: str) -> str:
    """Name the project: the normalized origin URL, else the repository root, else ``cwd``."""
    if root is not None:
        url = origin_url(root)
        if url:
            return normalize_remote(url)
        return os.path.abspath(root)
    return os.path.abspath(cwd)


# -- working tree state ---------------------------------------------------------------


def decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def parse_status(output: bytes) -> dict[str, Any]:
    commit: str | None = None
    branch: str | None = None
    dirty = False
    untracked: list[str] = []
    records = output.split(b"\0")
    index = 0
    while index < len(records):
        record = records[index]
        index += 1
        if record.startswith(b"# branch.oid "):
            oid = decode(record[len(b"# branch.oid ") :])
            commit = None if oid == "(initial)" else oid
        elif record.startswith(b"# branch.head "):
            head = decode(record[len(b"# branch.head ") :])
            branch = None if head == "(detached)" else head
        elif record.startswith((b"1 ", b"u ")):
            dirty = True
        elif record.startswith(b"2 "):
            dirty = True
            index += 1  # a rename or copy is followed by its original path
        elif record.startswith(b"? "):
            untracked.append(decode(record[2:]))
    return {"commit": commit, "branch": branch, "dirty": dirty, "untracked": untracked}


def parse_numstat(output: bytes) -> list[dict[str, Any]]:
    stats = []
    for record in output.split(b"\0"):
        if not record:
            continue
        added, removed, path = record.split(b"\t", 2)
        stats.append(
            {
                "path": decode(path),
                # "-" marks a binary file: git counts no lines for it.
                "added": None if added == b"-" else int(added),
                "removed": None if removed == b"-" else int(removed),
            }
        )
    return stats


__all__ = [
    "EMPTY_TREE",
    "decode",
    "find_root",
    "git_dir",
    "has_commit",
    "normalize_remote",
    "origin_url",
    "parse_numstat",
    "parse_status",
    "project_of",
    "run",
]
