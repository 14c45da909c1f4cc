"""The host snapshot: where a trial's execution ran (DESIGN §2).

The host name is :func:`kleio.reservation.hostname`, the one that names runners. Memory and
CPUs come from ``os.sysconf`` and ``/proc``, not psutil; GPUs from the cached
``nvidia-smi`` answer of :func:`kleio.snapshot.environment.gpu_info`. Nothing here refuses a
resume: a scheduler places each execution where it likes.
"""

from __future__ import annotations

import os

from kleio.reservation import hostname
from kleio.snapshot.environment import gpu_info

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; annotations are strings anyway
    from typing import Any


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


def _configured_hostname() -> str:
    """The ``hostname`` setting of the current directory's configuration ("" if unset)."""
    from kleio.config import load_config
    from kleio.errors import ConfigError

    try:
        return load_config().hostname
    except ConfigError:  # told to the user by whoever loads the configuration for the run
        return ""


def host_snapshot(configured_hostname: str | None = None) -> dict[str, Any]:
    """Describe the machine: hostname, user, CPUs, CPU model, memory and GPUs.

    Args:
        configured_hostname: the ``hostname`` setting, when the caller loaded the
            configuration; by default it is read here, so that ``hostname:`` in
            ``kleio.yaml`` names the host in the snapshot as it names the runner.
    """
    if configured_hostname is None:
        configured_hostname = _configured_hostname()
    try:
        available = len(os.sched_getaffinity(0))  # what a batch scheduler gave this job
    except (AttributeError, OSError):
        available = None
    gpu = gpu_info()
    return {
        "hostname": hostname(configured_hostname),
        "user": _user(),
        "cpus": os.cpu_count(),
        "cpus_available": available,
        "cpu_model": _cpu_model(),
        "memory_bytes": _memory_bytes(),
        "gpus": [] if gpu is None else list(gpu.get("gpus") or []),
    }


__all__ = ["host_snapshot"]
