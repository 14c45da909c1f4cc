"""What differs between two snapshots, and which differences refuse a resume (DESIGN §2).

:func:`code_changes`, :func:`env_changes` and :func:`host_changes` list every difference as a
:class:`Change`; ``refuses`` says whether the change gate refuses a resume because of it.
The rule is documented in docs/reproducibility.rst.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from kleio.snapshot.environment import _VARIABLES_V1, REPRODUCIBILITY_VARIABLES

# Distributions whose version never makes a different experiment.
_IGNORED_PACKAGES = frozenset({"kleio", "pip"})


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
    sources (or, without git, the script) make the code. The config files named outside the
    repository are listed last and never refuse (see :func:`_config_file_changes`).
    """

    def change(subject: str, message: str) -> Change:
        return Change("code", subject, message, True)

    configs = _config_file_changes(old, new)
    if old.get("vcs") != new.get("vcs"):
        return [
            change(
                "vcs", f"version control: {old.get('vcs') or 'none'} → {new.get('vcs') or 'none'}"
            ),
            *configs,
        ]
    if old.get("vcs") is None:
        if old.get("script_sha256") != new.get("script_sha256"):
            return [
                change("script", f"script {new.get('script') or old.get('script')} changed"),
                *configs,
            ]
        return configs
    found = []
    if old.get("commit") != new.get("commit"):
        found.append(
            change("commit", f"commit {_short(old.get('commit'))} → {_short(new.get('commit'))}")
        )
    if old.get("diff_sha256") != new.get("diff_sha256"):
        found += _diff_changes(old, new)
    return found + _untracked_changes(old, new) + configs


def _diff_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """The files whose uncommitted change differs (every one refuses a resume)."""
    old_stats = {s["path"]: s for s in old.get("diffstat") or []}
    new_stats = {s["path"]: s for s in new.get("diffstat") or []}
    found = [] if new_stats else [Change("code", "diff", "uncommitted changes removed", True)]
    in_diff = [
        Change("code", f"diff:{path}", f"uncommitted change: {_stat_line(stat)}", True)
        for path, stat in sorted(new_stats.items())
        if old_stats.get(path) != stat
    ]
    in_diff += [
        Change("code", f"diff:{path}", f"uncommitted change reverted: {path}", True)
        for path in sorted(set(old_stats) - set(new_stats))
    ]
    if not in_diff:  # same line counts, other content: name every changed file
        in_diff = [
            Change("code", f"diff:{path}", f"uncommitted change: {_stat_line(stat)}", True)
            for path, stat in sorted(new_stats.items())
        ]
    return found + in_diff


def _untracked_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """The untracked sources added, removed or changed (every one refuses a resume)."""
    old_files = {f["path"]: f["sha256"] for f in old.get("untracked") or []}
    new_files = {f["path"]: f["sha256"] for f in new.get("untracked") or []}
    found = []
    for path in sorted(set(old_files) | set(new_files)):
        if path not in old_files:
            message = f"untracked file added: {path}"
        elif path not in new_files:
            message = f"untracked file removed: {path}"
        elif old_files[path] != new_files[path]:
            message = f"untracked file changed: {path}"
        else:
            continue
        found.append(Change("code", f"untracked:{path}", message, True))
    return found


def _config_file_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """The config files outside the repository that differ: listed, never refusing.

    Their content is part of the trial's identity (:func:`kleio.identity.config_files`): a
    changed file is another trial, never a changed one. And trials recorded before these
    files were stored have none.
    """
    old_files = {f.get("path"): f for f in old.get("config_files") or [] if isinstance(f, dict)}
    new_files = {f.get("path"): f for f in new.get("config_files") or [] if isinstance(f, dict)}
    found = []
    for path in sorted(set(old_files) | set(new_files), key=str):
        if path not in old_files:
            message = f"config file added: {path}"
        elif path not in new_files:
            message = f"config file removed: {path}"
        elif (old_files[path].get("sha256"), old_files[path].get("size")) != (
            new_files[path].get("sha256"),
            new_files[path].get("size"),
        ):
            message = f"config file changed: {path}"
        else:
            continue
        found.append(Change("code", f"config:{path}", message, False))
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
    return (
        _python_changes(old, new)
        + _platform_changes(old, new)
        + _package_changes(old, new)
        + _variable_changes(old, new)
        + _gpu_changes(old, new)
    )


def _python_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Another implementation or version refuses; the same one elsewhere is only listed."""
    old_py, new_py = old.get("python") or {}, new.get("python") or {}
    old_version = (old_py.get("implementation"), old_py.get("version"))
    new_version = (new_py.get("implementation"), new_py.get("version"))
    moved = old_py.get("executable") != new_py.get("executable")
    if old_version != new_version:
        line = f"python {' '.join(map(str, old_version))} → {' '.join(map(str, new_version))}"
        if moved:
            line += f" ({old_py.get('executable')} → {new_py.get('executable')})"
        return [Change("env", "python", line, True)]
    if moved:
        return [
            Change(
                "env",
                "python-executable",
                f"python executable {old_py.get('executable')} → {new_py.get('executable')}",
                False,
            )
        ]
    return []


def _platform_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    old_platform, new_platform = old.get("platform") or {}, new.get("platform") or {}
    return [
        Change(
            "env",
            f"platform:{key}",
            f"platform {key} {old_platform.get(key)} → {new_platform.get(key)}",
            key != "release",
        )  # the kernel release differs between nodes
        for key in ("system", "machine", "release")
        if old_platform.get(key) != new_platform.get(key)
    ]


def _package_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """A package removed or changed refuses (unless ignored, as pip); one added never."""
    old_packages, new_packages = old.get("packages") or {}, new.get("packages") or {}
    found = []
    for name in sorted(set(old_packages) | set(new_packages)):
        counts = name not in _IGNORED_PACKAGES
        if name not in old_packages:
            found.append(
                Change(
                    "env", f"package:{name}", f"package added: {name} {new_packages[name]}", False
                )
            )
        elif name not in new_packages:
            found.append(
                Change(
                    "env",
                    f"package:{name}",
                    f"package removed: {name} {old_packages[name]}",
                    counts,
                )
            )
        elif old_packages[name] != new_packages[name]:
            found.append(
                Change(
                    "env",
                    f"package:{name}",
                    f"package {name} {old_packages[name]} → {new_packages[name]}",
                    counts,
                )
            )
    return found


def _variable_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    old_vars, new_vars = old.get("variables") or {}, new.get("variables") or {}
    return [
        Change(
            "env",
            f"variable:{name}",
            f"variable {name} {old_vars.get(name, '(unset)')} → {new_vars.get(name, '(unset)')}",
            _variable_refuses(name, old),
        )
        for name in sorted(set(old_vars) | set(new_vars))
        if old_vars.get(name) != new_vars.get(name)
    ]


def _gpu_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    old_gpu, new_gpu = old.get("gpu") or {}, new.get("gpu") or {}
    return [
        Change(
            "env",
            f"gpu:{key}",
            f"gpu {key} {old_gpu.get(key) or '(none)'} → {new_gpu.get(key) or '(none)'}",
            False,
        )
        for key in ("driver", "cuda")
        if old_gpu.get(key) != new_gpu.get(key)
    ]


def host_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """What differs between two ``host`` snapshots: shown by ``kleio diff``, never refusing.

    A scheduler places each execution where it likes: a preempted trial must resume on
    another node.
    """
    found = []
    for key in ("hostname", "cpus_available", "cpu_model"):
        if old.get(key) != new.get(key):
            found.append(
                Change(
                    "host",
                    f"host:{key}",
                    f"host {key.replace('_', ' ')} {old.get(key)} → {new.get(key)}",
                    False,
                )
            )
    old_gpus = [g.get("name") for g in old.get("gpus") or [] if isinstance(g, dict)]
    new_gpus = [g.get("name") for g in new.get("gpus") or [] if isinstance(g, dict)]
    if old_gpus != new_gpus:
        before = ", ".join(map(str, old_gpus)) or "(none)"
        after = ", ".join(map(str, new_gpus)) or "(none)"
        found.append(Change("host", "host:gpus", f"host gpus {before} → {after}", False))
    return found
