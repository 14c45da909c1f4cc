"""The environment snapshot: interpreter, distributions, platform, GPU, variables (DESIGN §2).

Built for speed, since it is taken before every run:

* the installed distributions are listed once per interpreter and cached in
  ``$XDG_CACHE_HOME/kleio/packages-<hash>.json``, valid while ``sys.executable`` and the
  ``mtime`` of every ``sys.path`` directory are unchanged (installing, removing or upgrading a
  distribution adds or removes a ``*.dist-info`` entry, which changes its directory's mtime);
* the GPUs are asked to ``nvidia-smi`` only on machines with an NVIDIA driver, once per boot.

Which of its differences refuse a resume is :mod:`kleio.snapshot.compare`'s.
"""

from __future__ import annotations

import os
import sys

from kleio.cjson import dumps, loads
from kleio.hashing import sha256_hex
from kleio.redact import redact_env

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; annotations are strings anyway
    from typing import Any

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

_NVIDIA_TIMEOUT = 5.0


def _sha256(data: bytes) -> str:
    return sha256_hex(data)


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "kleio")


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return loads(handle.read())
    except (OSError, ValueError):
        return None


def _write_json(path: str, data: Any) -> None:
    """Write atomically; a cache that cannot be written is simply not a cache."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(dumps(data, sort_keys=True))
        os.replace(temporary, path)
    except OSError:
        pass


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
    from kleio.trial import which  # shutil's costs milliseconds of imports (bz2, lzma...)

    return which("nvidia-smi") is not None


def _run_nvidia_smi(*args: str) -> str | None:
    from kleio.process import run

    try:
        result = run(["nvidia-smi", *args], timeout=_NVIDIA_TIMEOUT)
    except OSError:  # missing, or too slow (TimeoutError)
        return None
    return result.stdout.decode("utf-8", "replace") if result.returncode == 0 else None


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


__all__ = [
    "ENV_VARIABLES",
    "PLACEMENT_VARIABLES",
    "REPRODUCIBILITY_VARIABLES",
    "env_snapshot",
    "gpu_info",
    "installed_packages",
    "packages_cache_path",
]
