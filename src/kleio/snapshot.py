"""Snapshots taken at every start: code, environment and host (DESIGN §2).

This runs before every wrapped command, so it is built for speed:

* git is asked once (``git status --porcelain=v2``), plus one ``git diff`` only when the
  working tree is dirty; GitPython is never imported;
* the installed distributions are listed once per interpreter and cached in
  ``$XDG_CACHE_HOME/kleio/packages-<hash>.json``, valid while ``sys.executable`` and the
  ``mtime`` of every ``sys.path`` directory are unchanged (installing, removing or upgrading a
  distribution adds or removes a ``*.dist-info`` entry, which changes its directory's mtime);
* the GPUs are asked to ``nvidia-smi`` only on machines with an NVIDIA driver, once per boot;
* memory and CPUs come from ``os.sysconf`` and ``/proc``, not psutil.

Secrets in the recorded code (the diff, untracked sources, the script) are masked before
anything is stored (:func:`kleio.redact.redact_text`, :func:`kleio.codestate.mask_patch`);
a text with no word a secret pattern starts with is skipped at ``str.find`` speed.

:func:`changes` compares two snapshots for change detection on resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from typing import NamedTuple

from kleio.identity import project_of
from kleio.redact import REDACTED, redact_env, redact_text

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; annotations are strings anyway
    from typing import Any

#: Untracked files larger than this, binary, or not source code are not recorded.
MAX_UNTRACKED_SIZE = 256 * 1024
#: At most this many untracked files are recorded (sorted by path).
MAX_UNTRACKED_FILES = 50
#: A diff larger than this is hashed but not stored.
MAX_DIFF_BLOB = 32 * 1024 * 1024
#: Without git, the script's content is stored when it is at most this large.
MAX_SCRIPT_BLOB = 256 * 1024

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

#: Variables that change a program's results deterministically: a different value is a
#: different experiment, so a change refuses a resume (docs/reproducibility.rst).
REPRODUCIBILITY_VARIABLES = (
    "PYTHONHASHSEED",  # str and bytes hashes: set and dict iteration orders
    "CUBLAS_WORKSPACE_CONFIG",  # deterministic cuBLAS (torch.use_deterministic_algorithms)
    "TF_DETERMINISTIC_OPS",
    "TF_CUDNN_DETERMINISTIC",
    "TF_ENABLE_ONEDNN_OPTS",  # oneDNN kernels round differently
    "NVIDIA_TF32_OVERRIDE",  # TF32 matrix products on or off
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
    "MKL_CBWR",  # MKL's conditional numerical reproducibility
)
#: Where and on how many threads a program runs: a scheduler changes these on every
#: allocation, so they are recorded and shown by ``kleio diff`` but never refuse a resume.
PLACEMENT_VARIABLES = (
    "CUDA_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "SLURM_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
)
#: Environment variables recorded in the env snapshot (after redaction): the two lists
#: above, and a few that say which installation runs (shown by ``diff``, never refusing).
ENV_VARIABLES = (
    *REPRODUCIBILITY_VARIABLES,
    *PLACEMENT_VARIABLES,
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "CONDA_DEFAULT_ENV",
)
# The list of recorded variables grows; ``variables_version`` in a snapshot says which list
# it was taken with. A variable the old snapshot did not look at (unset then, or not) must not
# refuse the resume of a trial created before it was added.
_VARIABLES_VERSION = 2
_VARIABLES_V1 = frozenset({
    "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
    "PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG", "PYTHONPATH", "VIRTUAL_ENV",
    "CONDA_DEFAULT_ENV", "SLURM_JOB_ID", "SLURM_ARRAY_TASK_ID",
})  # fmt: skip

# Distributions whose version never makes a different experiment.
_IGNORED_PACKAGES = frozenset({"kleio", "pip"})

_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_GIT_TIMEOUT = 30.0
_NVIDIA_TIMEOUT = 5.0


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "kleio")


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _write_json(path: str, data: Any) -> None:
    """Write atomically; a cache that cannot be written is simply not a cache."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle, sort_keys=True)
        os.replace(temporary, path)
    except OSError:
        pass


# -- code ----------------------------------------------------------------------------------


def _git(root: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        # --no-optional-locks: never write the index, so that many jobs starting at once in
        # one checkout (a cluster array on a shared file system) do not fight for index.lock.
        ["git", "--no-optional-locks", *args],
        cwd=root,
        capture_output=True,
        timeout=_GIT_TIMEOUT,
    )


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _parse_status(output: bytes) -> dict[str, Any]:
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
            oid = _decode(record[len(b"# branch.oid ") :])
            commit = None if oid == "(initial)" else oid
        elif record.startswith(b"# branch.head "):
            head = _decode(record[len(b"# branch.head ") :])
            branch = None if head == "(detached)" else head
        elif record.startswith((b"1 ", b"u ")):
            dirty = True
        elif record.startswith(b"2 "):
            dirty = True
            index += 1  # a rename or copy is followed by its original path
        elif record.startswith(b"? "):
            untracked.append(_decode(record[2:]))
    return {"commit": commit, "branch": branch, "dirty": dirty, "untracked": untracked}


def _parse_numstat(output: bytes) -> list[dict[str, Any]]:
    stats = []
    for record in output.split(b"\0"):
        if not record:
            continue
        added, removed, path = record.split(b"\t", 2)
        stats.append(
            {
                "path": _decode(path),
                # "-" marks a binary file: git counts no lines for it.
                "added": None if added == b"-" else int(added),
                "removed": None if removed == b"-" else int(removed),
            }
        )
    return stats


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


def code_snapshot(cwd: str, root: str | None, script: str | None) -> tuple[dict, dict[str, bytes]]:
    """Describe the code a trial runs.

    Args:
        cwd: the command's working directory.
        root: the repository root (:func:`kleio.identity.find_repo_root`), or None.
        script: the script as typed (:func:`kleio.identity.script_of`), used without git.

    Returns:
        ``(doc, blobs)``: the JSON-compatible snapshot and the bytes it refers to by sha256
        (the diff, small untracked sources, or the script), for the caller to store. With git
        the doc holds ``vcs`` ("git"), ``repository``, ``branch`` (None when detached),
        ``commit`` (None before the first commit), ``detached``, ``dirty``, ``diff_sha256``,
        ``diff_size``, ``diffstat`` (``[{"path", "added", "removed"}]``), ``untracked``
        (``[{"path", "sha256", "size"}]``), ``untracked_skipped`` and, when secrets were
        masked, ``secrets_masked`` (``{path: values a checkout shows masked}``, see
        :func:`kleio.codestate.mask_patch`): the blobs hold the masked text, and the hashes
        are the blobs'. Without git (or when git
        cannot be run) it holds ``vcs`` (None), ``script`` (absolute) and ``script_sha256``;
        the caller should warn once that the code is only known by the script's hash.
    """
    blobs: dict[str, bytes] = {}
    if root is None:
        return _script_snapshot(cwd, script, blobs), blobs
    try:
        status = _git(root, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all")
    except (OSError, subprocess.SubprocessError):
        status = None
    if status is None or status.returncode != 0:
        fallback = _script_snapshot(cwd, script, blobs)
        error = "git status failed" if status is None else _decode(status.stderr)[:500]
        fallback["vcs_error"] = error
        return fallback, blobs
    state = _parse_status(status.stdout)
    doc: dict[str, Any] = {
        "vcs": "git",
        "repository": project_of(root, cwd),
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
        base = state["commit"] or _EMPTY_TREE
        try:
            # Explicit prefixes: diff.noprefix or diff.mnemonicPrefix in the user's config
            # would make a patch that `git apply` (which strips "a/", "b/") misplaces.
            diff: subprocess.CompletedProcess[bytes] | None = _git(
                root, "diff", base, "--no-color", "--no-ext-diff", "--no-textconv",
                "--no-renames", "--binary", "--src-prefix=a/", "--dst-prefix=b/",
                "--numstat", "-z", "-p",
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            diff = None  # dirty, but what changed is unknown: diff_sha256 stays None
        if diff is not None and diff.returncode == 0:
            # --numstat -z then -p: NUL-separated stats, an empty record, then the patch.
            stats, _, patch = diff.stdout.partition(b"\0\0")
            doc["diffstat"] = _parse_numstat(stats)
            if len(patch) <= MAX_DIFF_BLOB:
                from kleio.codestate import mask_patch

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
    return doc, blobs


# -- environment ---------------------------------------------------------------------------


def _packages_key() -> str:
    """What the installed distributions depend on: the interpreter and its path's mtimes."""
    parts = [sys.executable]
    try:
        cwd = os.getcwd()
    except OSError:  # the working directory was removed
        cwd = ""
    for entry in sys.path:
        # The working directory (``python -m kleio``) changes with every file a program
        # writes; a distribution installed there is not worth a cache miss on every start.
        if not entry or entry == cwd:
            continue
        try:
            parts.append(f"{entry}\0{os.stat(entry).st_mtime_ns}")
        except OSError:
            parts.append(f"{entry}\0-")
    return _sha256("\n".join(parts).encode("utf-8", "surrogateescape"))


def _scan_packages() -> dict[str, str]:
    import importlib.metadata  # slow to import and slower to run: only on a cache miss
    import re

    packages: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if not name:
            continue
        # PEP 503 spelling, first one on sys.path wins (as import does).
        packages.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version or "")
    return dict(sorted(packages.items()))


def packages_cache_path() -> str:
    """The cache file of the current interpreter's distribution list."""
    tag = _sha256(sys.executable.encode("utf-8", "surrogateescape"))[:16]
    return os.path.join(_cache_dir(), f"packages-{tag}.json")


def installed_packages() -> dict[str, str]:
    """``{normalized name: version}`` of the current interpreter's distributions, cached."""
    path = packages_cache_path()
    key = _packages_key()
    cached = _read_json(path)
    if isinstance(cached, dict) and cached.get("key") == key:
        packages = cached.get("packages")
        if isinstance(packages, dict):
            return packages
    packages = _scan_packages()
    _write_json(path, {"key": key, "executable": sys.executable, "packages": packages})
    return packages


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _has_nvidia() -> bool:
    if os.path.exists("/proc/driver/nvidia/version"):
        return True
    import shutil

    return shutil.which("nvidia-smi") is not None


def _run_nvidia_smi(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["nvidia-smi", *args], capture_output=True, text=True, timeout=_NVIDIA_TIMEOUT
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def _probe_gpus() -> dict[str, Any] | None:
    output = _run_nvidia_smi(
        "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"
    )
    if output is None:
        return None
    gpus = []
    driver = None
    for line in output.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) >= 3:
            gpus.append({"name": fields[0], "memory": fields[1]})
            driver = fields[2]
    cuda = None
    summary = _run_nvidia_smi()
    if summary:
        import re

        match = re.search(r"CUDA Version:\s*([0-9.]+)", summary)
        cuda = match.group(1) if match else None
    return {"driver": driver, "cuda": cuda, "gpus": gpus}


def gpu_info() -> dict[str, Any] | None:
    """``{"driver", "cuda", "gpus": [{"name", "memory"}]}`` of NVIDIA GPUs, or None.

    Asked once per boot (keyed on the kernel's boot id) and cached: ``nvidia-smi`` takes
    tens to hundreds of milliseconds.
    """
    if not _has_nvidia():
        return None
    boot = _boot_id()
    path = os.path.join(_cache_dir(), f"gpu-{boot}.json") if boot else None
    if path:
        cached = _read_json(path)
        if isinstance(cached, dict) and "info" in cached:
            return cached["info"]
    info = _probe_gpus()
    if path:
        _write_json(path, {"info": info})
    return info


def _platform() -> dict[str, str]:
    if hasattr(os, "uname"):
        uname = os.uname()
        return {"system": uname.sysname, "release": uname.release, "machine": uname.machine}
    import platform

    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
    }


def env_snapshot() -> dict[str, Any]:
    """Describe the current interpreter and its environment.

    The interpreter is this process's: when the wrapped command runs another Python, the
    caller must say so (see the runner).
    """
    version = sys.version_info
    gpu = gpu_info()
    return {
        "python": {
            "version": f"{version.major}.{version.minor}.{version.micro}",
            "implementation": sys.implementation.name,
            "executable": sys.executable,
        },
        "platform": _platform(),
        "packages": installed_packages(),
        "variables": redact_env({k: os.environ[k] for k in ENV_VARIABLES if k in os.environ}),
        "variables_version": _VARIABLES_VERSION,
        "gpu": None if gpu is None else {"driver": gpu.get("driver"), "cuda": gpu.get("cuda")},
    }


# -- host ----------------------------------------------------------------------------------


def _user() -> str | None:
    for name in ("USER", "LOGNAME", "USERNAME"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, AttributeError, KeyError, OSError):
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            head = handle.read(8192)  # the first processor is enough; the file can be huge
    except OSError:
        return None
    for line in head.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model", "Hardware"):
            return value.strip() or None
    return None


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def hostname() -> str:
    """The host name recorded for runners: ``$KLEIO_HOSTNAME`` or the machine's."""
    override = os.environ.get("KLEIO_HOSTNAME")
    if override:
        return override
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


def host_snapshot() -> dict[str, Any]:
    """Describe the machine: hostname, user, CPUs, CPU model, memory and GPUs."""
    try:
        available = len(os.sched_getaffinity(0))  # what a batch scheduler gave this job
    except (AttributeError, OSError):
        available = None
    gpu = gpu_info()
    return {
        "hostname": hostname(),
        "user": _user(),
        "cpus": os.cpu_count(),
        "cpus_available": available,
        "cpu_model": _cpu_model(),
        "memory_bytes": _memory_bytes(),
        "gpus": [] if gpu is None else list(gpu.get("gpus") or []),
    }


# -- change detection ----------------------------------------------------------------------


class Change(NamedTuple):
    """One difference between two snapshots.

    Attributes:
        kind: ``"code"``, ``"env"`` or ``"host"``.
        subject: what differs, stable for programs: ``commit``, ``diff:PATH``,
            ``untracked:PATH``, ``script``, ``vcs``, ``python``, ``python-executable``,
            ``platform:KEY``, ``package:NAME``, ``variable:NAME``, ``gpu:KEY``, ``host:KEY``.
        message: the line shown to people (``str(change)``).
        refuses: whether the change refuses a resume (see docs/reproducibility.rst).
    """

    kind: str
    subject: str
    message: str
    refuses: bool

    def __str__(self) -> str:
        return self.message


def _short(commit: str | None) -> str:
    return commit[:7] if commit else "(no commit)"


def _stat_line(stat: dict[str, Any]) -> str:
    if stat.get("added") is None:
        return f"{stat['path']} (binary)"
    return f"{stat['path']} (+{stat['added']} -{stat['removed']})"


def code_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """What differs between two ``code`` snapshots; every code change refuses a resume.

    The branch name is not compared: only the commit, the uncommitted diff and the untracked
    sources (or, without git, the script) make the code.
    """

    def change(subject: str, message: str) -> Change:
        return Change("code", subject, message, True)

    if old.get("vcs") != new.get("vcs"):
        return [change("vcs", f"version control: {old.get('vcs') or 'none'} → "
                              f"{new.get('vcs') or 'none'}")]
    if old.get("vcs") is None:
        if old.get("script_sha256") != new.get("script_sha256"):
            return [change("script", f"script {new.get('script') or old.get('script')} changed")]
        return []
    found = []
    if old.get("commit") != new.get("commit"):
        found.append(change("commit", f"commit {_short(old.get('commit'))} → "
                                      f"{_short(new.get('commit'))}"))
    if old.get("diff_sha256") != new.get("diff_sha256"):
        old_stats = {s["path"]: s for s in old.get("diffstat") or []}
        new_stats = {s["path"]: s for s in new.get("diffstat") or []}
        if not new_stats:
            found.append(change("diff", "uncommitted changes removed"))
        in_diff = [
            change(f"diff:{path}", f"uncommitted change: {_stat_line(stat)}")
            for path, stat in sorted(new_stats.items())
            if old_stats.get(path) != stat
        ]
        in_diff += [
            change(f"diff:{path}", f"uncommitted change reverted: {path}")
            for path in sorted(set(old_stats) - set(new_stats))
        ]
        if not in_diff:  # same line counts, other content: name every changed file
            in_diff = [change(f"diff:{path}", f"uncommitted change: {_stat_line(s)}")
                       for path, s in sorted(new_stats.items())]
        found += in_diff
    old_files = {f["path"]: f["sha256"] for f in old.get("untracked") or []}
    new_files = {f["path"]: f["sha256"] for f in new.get("untracked") or []}
    for path in sorted(set(old_files) | set(new_files)):
        if path not in old_files:
            found.append(change(f"untracked:{path}", f"untracked file added: {path}"))
        elif path not in new_files:
            found.append(change(f"untracked:{path}", f"untracked file removed: {path}"))
        elif old_files[path] != new_files[path]:
            found.append(change(f"untracked:{path}", f"untracked file changed: {path}"))
    return found


def _variable_refuses(name: str, old: dict[str, Any]) -> bool:
    if name not in REPRODUCIBILITY_VARIABLES:
        return False
    version = old.get("variables_version")
    return name in _VARIABLES_V1 or (isinstance(version, int) and version >= 2)


def env_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """What differs between two ``env`` snapshots, each saying whether it refuses a resume.

    Refusing: the Python implementation or version, the platform's system or machine, a
    package removed or changed in version, a variable of :data:`REPRODUCIBILITY_VARIABLES`.
    Listed but never refusing: a package added (installing the test extras must not stop a
    resume), the interpreter's path at the same version, the kernel release, the GPU driver
    and CUDA version (a cluster's nodes differ; the CUDA runtime that matters comes with a
    package such as ``torch``), placement variables (:data:`PLACEMENT_VARIABLES`) and the
    other recorded variables, and the versions of kleio and pip.
    """
    found = []
    old_py, new_py = old.get("python") or {}, new.get("python") or {}
    old_version = (old_py.get("implementation"), old_py.get("version"))
    new_version = (new_py.get("implementation"), new_py.get("version"))
    moved = old_py.get("executable") != new_py.get("executable")
    if old_version != new_version:
        line = f"python {' '.join(map(str, old_version))} → {' '.join(map(str, new_version))}"
        if moved:
            line += f" ({old_py.get('executable')} → {new_py.get('executable')})"
        found.append(Change("env", "python", line, True))
    elif moved:
        found.append(Change("env", "python-executable",
                            f"python executable {old_py.get('executable')} → "
                            f"{new_py.get('executable')}", False))
    old_platform, new_platform = old.get("platform") or {}, new.get("platform") or {}
    for key in ("system", "machine", "release"):  # the kernel release differs between nodes
        if old_platform.get(key) != new_platform.get(key):
            found.append(Change("env", f"platform:{key}", f"platform {key} "
                                f"{old_platform.get(key)} → {new_platform.get(key)}",
                                key != "release"))
    old_packages, new_packages = old.get("packages") or {}, new.get("packages") or {}
    for name in sorted(set(old_packages) | set(new_packages)):
        counts = name not in _IGNORED_PACKAGES
        if name not in old_packages:
            found.append(Change("env", f"package:{name}",
                                f"package added: {name} {new_packages[name]}", False))
        elif name not in new_packages:
            found.append(Change("env", f"package:{name}",
                                f"package removed: {name} {old_packages[name]}", counts))
        elif old_packages[name] != new_packages[name]:
            found.append(Change("env", f"package:{name}", f"package {name} "
                                f"{old_packages[name]} → {new_packages[name]}", counts))
    old_vars, new_vars = old.get("variables") or {}, new.get("variables") or {}
    for name in sorted(set(old_vars) | set(new_vars)):
        if old_vars.get(name) != new_vars.get(name):
            before = old_vars.get(name, "(unset)")
            after = new_vars.get(name, "(unset)")
            found.append(Change("env", f"variable:{name}", f"variable {name} {before} → {after}",
                                _variable_refuses(name, old)))
    old_gpu, new_gpu = old.get("gpu") or {}, new.get("gpu") or {}
    for key in ("driver", "cuda"):
        if old_gpu.get(key) != new_gpu.get(key):
            found.append(Change("env", f"gpu:{key}", f"gpu {key} {old_gpu.get(key) or '(none)'} "
                                f"→ {new_gpu.get(key) or '(none)'}", False))
    return found


def host_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """What differs between two ``host`` snapshots: shown by ``kleio diff``, never refusing.

    A scheduler places each execution where it likes: a preempted trial must resume on
    another node.
    """
    found = []
    for key in ("hostname", "cpus_available", "cpu_model"):
        if old.get(key) != new.get(key):
            found.append(Change("host", f"host:{key}", f"host {key.replace('_', ' ')} "
                                f"{old.get(key)} → {new.get(key)}", False))
    old_gpus = [g.get("name") for g in old.get("gpus") or [] if isinstance(g, dict)]
    new_gpus = [g.get("name") for g in new.get("gpus") or [] if isinstance(g, dict)]
    if old_gpus != new_gpus:
        before = ", ".join(map(str, old_gpus)) or "(none)"
        after = ", ".join(map(str, new_gpus)) or "(none)"
        found.append(Change("host", "host:gpus", f"host gpus {before} → {after}", False))
    return found


def changes(old: dict[str, Any], new: dict[str, Any], kind: str) -> list[str]:
    """The lines of the changes that refuse a resume (transitional: use :func:`code_changes`
    and :func:`env_changes`, which also list what does not refuse).

    Args:
        old: the trial's snapshot.
        new: the snapshot taken now.
        kind: ``"code"`` or ``"env"``.
    """
    if kind == "code":
        listed = code_changes(old, new)
    elif kind == "env":
        listed = env_changes(old, new)
    else:
        raise ValueError(f"kind must be 'code' or 'env', not {kind!r}")
    return [change.message for change in listed if change.refuses]


__all__ = [
    "Change",
    "changes",
    "code_changes",
    "code_snapshot",
    "env_changes",
    "env_snapshot",
    "gpu_info",
    "host_changes",
    "host_snapshot",
    "hostname",
    "installed_packages",
    "packages_cache_path",
]
