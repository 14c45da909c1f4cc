"""The code snapshot: the commit, the uncommitted diff and the untracked sources (DESIGN §2).

Taken before every run, so git is asked once (``git status --porcelain=v2``), plus one
``git diff`` only when the working tree is dirty (see :mod:`kleio.git`). Without git, the
script's content is hashed (and stored when small).

Secrets in the recorded code (the diff, untracked sources, the script) are masked before
anything is stored (:func:`kleio.redact.redact_text`, :func:`kleio.snapshot.masking.mask_patch`);
a text with no word a secret pattern starts with is skipped at ``str.find`` speed.
"""

from __future__ import annotations

import os

from kleio import git
from kleio.hashing import sha256_hex
from kleio.redact import REDACTED, redact_text

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; annotations are strings anyway
    from typing import Any

    from kleio.process import Finished

#: Untracked files larger than this, binary, or not source code are not recorded.
MAX_UNTRACKED_SIZE = 256 * 1024
#: At most this many untracked files are recorded (sorted by path).
MAX_UNTRACKED_FILES = 50
#: A diff larger than this is hashed but not stored.
MAX_DIFF_BLOB = 32 * 1024 * 1024
#: Without git, the script's content is stored when it is at most this large.
MAX_SCRIPT_BLOB = 256 * 1024
#: A config file named on the command line, outside the repository, is stored up to this size.
MAX_CONFIG_BLOB = 256 * 1024

# Untracked files worth recording: code, not data. Formats a program commonly writes into its
# own working directory (.json, .yaml, .csv, .txt, .log) are left out, or a trial's own output
# would count as a code change on resume; config files named on the command line are part of
# the trial's identity anyway (kleio.identity.config_files).
SOURCE_EXTENSIONS = frozenset(
    {
        ".py", ".pyx", ".pxd", ".pyi", ".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp",
        ".cu", ".cuh", ".f", ".f90", ".jl", ".r", ".lua", ".rs", ".go", ".java", ".scala",
        ".js", ".ts", ".sh", ".bash", ".zsh", ".toml", ".cfg", ".ini",
    }
)  # fmt: skip
SOURCE_NAMES = frozenset({"Makefile", "Dockerfile", "CMakeLists.txt", "requirements.txt"})


def _sha256(data: bytes) -> str:
    return sha256_hex(data)


def _is_source(path: str) -> bool:
    name = os.path.basename(path)
    return name in SOURCE_NAMES or os.path.splitext(name)[1].lower() in SOURCE_EXTENSIONS


def _untracked_sources(
    root: str, paths: list[str], blobs: dict[str, bytes], masked: dict[str, int]
) -> tuple[list[dict[str, Any]], int]:
    recorded: list[dict[str, Any]] = []
    skipped = 0
    for path in sorted(paths):
        if not _is_source(path):
            continue
        if len(recorded) >= MAX_UNTRACKED_FILES:
            skipped += 1
            continue
        full = os.path.join(root, path)
        try:
            if os.path.getsize(full) > MAX_UNTRACKED_SIZE:
                continue
            with open(full, "rb") as handle:
                content = handle.read(MAX_UNTRACKED_SIZE + 1)
        except OSError:
            continue
        if len(content) > MAX_UNTRACKED_SIZE or b"\0" in content[:8192]:
            continue
        text = content.decode("utf-8", "surrogateescape")
        masked_text = redact_text(text, path)
        if masked_text != text:
            masked[path] = max(1, masked_text.count(REDACTED) - text.count(REDACTED))
            content = masked_text.encode("utf-8", "surrogateescape")
        # The hash is the stored (masked) content's, as for the diff: see code_snapshot.
        digest = _sha256(content)
        blobs[digest] = content
        recorded.append({"path": path, "sha256": digest, "size": len(content)})
    return recorded, skipped


def _script_snapshot(cwd: str, script: str | None, blobs: dict[str, bytes]) -> dict[str, Any]:
    doc: dict[str, Any] = {"vcs": None, "script": None, "script_sha256": None}
    if not script:
        return doc
    path = os.path.normpath(os.path.join(cwd, script))
    doc["script"] = path
    try:
        with open(path, "rb") as handle:
            content = handle.read()
    except OSError:
        return doc  # a module name (python -m) or a program on PATH: nothing to hash
    if len(content) <= MAX_SCRIPT_BLOB:
        # Stored, so masked (unless binary), and hashed as stored (see code_snapshot).
        text = content.decode("utf-8", "surrogateescape")
        masked = text if b"\0" in content[:8192] else redact_text(text, path)
        if masked != text:
            doc["secrets_masked"] = {
                os.path.basename(path): max(1, masked.count(REDACTED) - text.count(REDACTED))
            }
            content = masked.encode("utf-8", "surrogateescape")
        blobs[_sha256(content)] = content
    doc["script_sha256"] = _sha256(content)
    return doc


def _config_file_snapshot(
    cwd: str,
    root: str | None,
    config_files: dict[str, str],
    blobs: dict[str, bytes],
    masked: dict[str, int],
) -> list[dict[str, Any]]:
    """The config files named on the command line that lie outside the repository.

    Inside it, git has them (committed, or in the diff); outside, only their hash would be
    known, so a small one is stored (masked, like any recorded code) for ``kleio diff`` and
    ``kleio checkout``. A larger one is listed with its size and no content.
    """
    inside_root = os.path.realpath(root) + os.sep if root is not None else None
    recorded = []
    for key in sorted(config_files):
        full = os.path.normpath(os.path.join(cwd, os.path.expanduser(key)))
        if inside_root is not None and os.path.realpath(full).startswith(inside_root):
            continue
        try:
            with open(full, "rb") as handle:
                content = handle.read(MAX_CONFIG_BLOB + 1)
        except OSError:
            continue
        entry: dict[str, Any] = {
            "path": key,
            "absolute": full,
            "sha256": None,
            "size": len(content),
        }
        if len(content) <= MAX_CONFIG_BLOB and b"\0" not in content[:8192]:
            text = content.decode("utf-8", "surrogateescape")
            masked_text = redact_text(text, full)
            if masked_text != text:
                masked[key] = max(1, masked_text.count(REDACTED) - text.count(REDACTED))
                content = masked_text.encode("utf-8", "surrogateescape")
            entry["sha256"] = _sha256(content)  # the stored, masked content's (see below)
            entry["size"] = len(content)
            blobs[entry["sha256"]] = content
        else:
            entry["size"] = os.path.getsize(full) if os.path.exists(full) else len(content)
        recorded.append(entry)
    return recorded


def code_snapshot(
    cwd: str, root: str | None, script: str | None, config_files: dict[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Describe the code a trial runs.

    Args:
        cwd: the command's working directory.
        root: the repository root (:func:`kleio.git.find_root`), or None.
        script: the script as typed (:func:`kleio.argv.script_of`), used without git.
        config_files: the config files the command names (the ``config_files`` of
            :func:`kleio.identity.describe_command`): those outside the repository are
            recorded as ``config_files`` (``[{"path", "absolute", "sha256", "size"}]``, the
            content stored when at most :data:`MAX_CONFIG_BLOB` bytes, else ``sha256`` None).

    Returns:
        ``(doc, blobs)``: the JSON-compatible snapshot and the bytes it refers to by sha256
        (the diff, small untracked sources, or the script), for the caller to store. With git
        the doc holds ``vcs`` ("git"), ``repository``, ``branch`` (None when detached),
        ``commit`` (None before the first commit), ``detached``, ``dirty``, ``diff_sha256``,
        ``diff_size``, ``diffstat`` (``[{"path", "added", "removed"}]``), ``untracked``
        (``[{"path", "sha256", "size"}]``), ``untracked_skipped`` and, when secrets were
        masked, ``secrets_masked`` (``{path: values a checkout shows masked}``, see
        :func:`kleio.snapshot.masking.mask_patch`): the blobs hold the masked text, and the hashes
        are the blobs'. Without git (or when git
        cannot be run) it holds ``vcs`` (None), ``script`` (absolute) and ``script_sha256``;
        the caller should warn once that the code is only known by the script's hash.
    """
    blobs: dict[str, bytes] = {}
    doc = _code(cwd, root, script, blobs)
    if config_files:
        masked: dict[str, int] = {}
        found = _config_file_snapshot(cwd, root, config_files, blobs, masked)
        if found:
            doc["config_files"] = found
        if masked:
            doc["secrets_masked"] = dict(
                sorted({**doc.get("secrets_masked", {}), **masked}.items())
            )
    return doc, blobs


def _code(
    cwd: str, root: str | None, script: str | None, blobs: dict[str, bytes]
) -> dict[str, Any]:
    if root is None:
        return _script_snapshot(cwd, script, blobs)
    failure = "git status failed"
    try:
        status = git.status(root)
    except TimeoutError:
        status, failure = None, f"git status did not answer within {git.TIMEOUT:g} s"
    except OSError as missing:  # git missing
        status, failure = None, f"git status failed: {missing.strerror or missing}"
    if status is None or status.returncode != 0:
        fallback = _script_snapshot(cwd, script, blobs)
        fallback["vcs_error"] = failure if status is None else git.decode(status.stderr)[:500]
        return fallback
    state = git.parse_status(status.stdout)
    doc: dict[str, Any] = {
        "vcs": "git",
        "repository": git.project_of(root, cwd),
        "branch": state["branch"],
        "commit": state["commit"],
        "detached": state["branch"] is None,
        "dirty": state["dirty"],
        "diff_sha256": None,
        "diff_size": 0,
        "diffstat": [],
    }
    masked: dict[str, int] = {}
    if state["dirty"]:
        base = state["commit"] or git.EMPTY_TREE
        try:
            # Explicit prefixes: diff.noprefix or diff.mnemonicPrefix in the user's config
            # would make a patch that `git apply` (which strips "a/", "b/") misplaces.
            diff: Finished | None = git.run(
                root, "diff", base, "--no-color", "--no-ext-diff", "--no-textconv",
                "--no-renames", "--binary", "--src-prefix=a/", "--dst-prefix=b/",
                "--numstat", "-z", "-p",
            )  # fmt: skip
        except OSError:  # git missing, or too slow (TimeoutError)
            diff = None  # dirty, but what changed is unknown: diff_sha256 stays None
        if diff is not None and diff.returncode == 0:
            # --numstat -z then -p: NUL-separated stats, an empty record, then the patch.
            stats, _, patch = diff.stdout.partition(b"\0\0")
            doc["diffstat"] = git.parse_numstat(stats)
            if len(patch) <= MAX_DIFF_BLOB:
                from kleio.snapshot.masking import mask_patch

                patch, found = mask_patch(patch)
                masked.update(found)
                blobs[_sha256(patch)] = patch
            # The hash is the *stored*, masked diff's. So the blob stays content-addressed, and
            # no hash of a secret is stored: a hash of the original would let anyone who reads
            # the journal test guesses of a short password offline against the masked text.
            # Change detection still sees every edit but one: a new value of a masked secret
            # alone is no code change, as a new --password is no new trial. A diff too large
            # to store is never read back, so its hash is the original's.
            doc["diff_sha256"] = _sha256(patch)
            doc["diff_size"] = len(patch)
    doc["untracked"], doc["untracked_skipped"] = _untracked_sources(
        root, state["untracked"], blobs, masked
    )
    if masked:
        doc["secrets_masked"] = dict(sorted(masked.items()))
    return doc


__all__ = ["code_snapshot"]
