"""Before a run: what would make the trial not reproducible, or not run where it is meant to.

:func:`warnings` gives sentences for the launch code to print as ``kleio: warning: ...``.
They are never refusals: the run goes on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

#: An option or variable whose name says it holds a seed (``--seed``, ``random_seed``,
#: ``PYTHONHASHSEED``, ``PL_GLOBAL_SEED``).
SEED_NAME = re.compile(r"seed", re.IGNORECASE)
#: Variables that choose NVIDIA GPUs (the ones the host snapshot lists), and the words meaning
#: "no device" or "every device".
GPU_VARIABLES = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")
_NOT_A_DEVICE_LIST = {"", "all", "none", "void", "-1", "nodevfiles"}


def _has_seed_option(doc: Mapping[str, Any]) -> bool:
    config = doc.get("config") or {}
    if any(SEED_NAME.search(str(key)) for key in config):
        return True
    # Options kleio could not parse as options (hydra's seed=1, a positional 'seed'), and
    # the command line itself when the document has no parsed configuration.
    words = [str(word) for word in (config.get("_pos") or [])]
    words += [str(word) for word in (doc.get("argv") or doc.get("command") or [])[1:]]
    return any(SEED_NAME.search(word.split("=", 1)[0]) for word in words)


def seed_warning(doc: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    """A sentence when neither an option nor the environment sets a seed."""
    if _has_seed_option(doc):
        return None
    if any(SEED_NAME.search(name) and value for name, value in environ.items()):
        return None
    return (
        "no seed-like option (such as --seed) and no seed in the environment (such as "
        "PYTHONHASHSEED): this trial may not give the same result when run again; pass a "
        "seed to make it reproducible"
    )


def _devices(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def gpu_warnings(doc: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """Sentences for GPU variables that name devices this host does not have.

    The GPUs are the host snapshot's (``nvidia-smi``). Devices named by UUID (``GPU-...``,
    ``MIG-...``) are not compared, only numbers.
    """
    host = doc.get("host") or {}
    gpus = host.get("gpus")
    if not isinstance(gpus, list):
        return []
    found: list[str] = []
    for name in GPU_VARIABLES:
        value = environ.get(name)
        if value is None or value.strip().lower() in _NOT_A_DEVICE_LIST:
            continue
        devices = _devices(value)
        if not gpus:
            found.append(
                f"{name}={value} but this host has no NVIDIA GPU (nvidia-smi finds "
                "none): the program will run on the CPU, or fail"
            )
            continue
        missing = [d for d in devices if d.isdigit() and int(d) >= len(gpus)]
        if missing:
            found.append(
                f"{name}={value} names device {missing[0]}, but this host has "
                f"{len(gpus)} GPU{'s' if len(gpus) != 1 else ''} (0 to "
                f"{len(gpus) - 1})"
            )
    return found


def warnings(doc: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[str]:
    """Warnings for a trial about to run (its document: command, configuration, host).

    Args:
        doc: the trial document (``config``, ``argv``, ``host`` are read).
        environ: the environment the program gets (default: this process's).

    Returns:
        Sentences without the ``kleio: warning:`` prefix, in the order to print them.
    """
    environ = os.environ if environ is None else environ
    found: list[str] = []
    seed = seed_warning(doc, environ)
    if seed:
        found.append(seed)
    found.extend(gpu_warnings(doc, environ))
    return found
