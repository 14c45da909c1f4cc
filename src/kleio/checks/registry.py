"""Find the installed checks (entry-point group ``kleio.checks``) and configure them.

A package adds a check by naming its class in its metadata, e.g. in ``pyproject.toml``::

    [project.entry-points."kleio.checks"]
    loss_spike = "mypackage.checks:LossSpike"

kleio's own checks are listed in its ``setup.cfg`` the same way. They are also always
available from :data:`kleio.checks.builtin.BUILTIN`, so that an installation made before a
check was added (an editable install not reinstalled) still has every built-in one.

Scanning the installed distributions for entry points takes tens of milliseconds, so the
result is cached per interpreter beside the package-list cache of :mod:`kleio.snapshot`, with
the same key (the interpreter and the modification times of its ``sys.path``).
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kleio.checks import SEVERITIES, Check, Context
from kleio.errors import ConfigError

if TYPE_CHECKING:
    from kleio.config import Config

GROUP = "kleio.checks"


def _scan_entry_points() -> dict[str, str]:
    import importlib.metadata

    if sys.version_info >= (3, 10):
        found = importlib.metadata.entry_points(group=GROUP)
    else:  # pragma: no cover - Python 3.9
        found = importlib.metadata.entry_points().get(GROUP, [])
    specs: dict[str, str] = {}
    for entry in found:
        specs.setdefault(entry.name, entry.value)  # first on sys.path wins, as import does
    return specs


def entry_point_specs() -> dict[str, str]:
    """``{name: "module:Class"}`` of the ``kleio.checks`` entry points, cached."""
    import os

    from kleio.snapshot import environment as snapshot

    tag = snapshot._sha256(sys.executable.encode("utf-8", "surrogateescape"))[:16]
    path = os.path.join(snapshot._cache_dir(), f"checks-{tag}.json")
    key = snapshot._packages_key()
    cached = snapshot._read_json(path)
    if (
        isinstance(cached, dict)
        and cached.get("key") == key
        and isinstance(cached.get("checks"), dict)
    ):
        return {str(k): str(v) for k, v in cached["checks"].items()}
    specs = _scan_entry_points()
    snapshot._write_json(path, {"key": key, "checks": specs})
    return specs


def _load(name: str, spec: str) -> type[Check]:
    module_name, _, attribute = spec.partition(":")
    target: Any = importlib.import_module(module_name.strip())
    for part in attribute.strip().split(".") if attribute.strip() else ():
        target = getattr(target, part)
    if not (isinstance(target, type) and issubclass(target, Check)):
        raise TypeError(f"{spec} is not a subclass of kleio.checks.Check")
    if target.name != name:
        raise TypeError(f"{spec} is named {target.name!r}, not {name!r} as its entry point")
    if target.severity not in SEVERITIES:
        raise TypeError(
            f"{spec} has severity {target.severity!r}, not one of {', '.join(SEVERITIES)}"
        )
    return target


def available(problems: list[str] | None = None) -> dict[str, type[Check]]:
    """``{name: class}`` of every check that loads, built-in ones first.

    A check that cannot be loaded is left out, and why is added to ``problems``.
    """
    from kleio.checks.builtin import BUILTIN

    specs = dict(BUILTIN)
    try:
        for name, spec in entry_point_specs().items():
            specs.setdefault(name, spec)
    except Exception as error:  # broken metadata must not cost the built-in checks
        if problems is not None:
            problems.append(f"cannot list the installed checks ({error})")
    classes: dict[str, type[Check]] = {}
    for name, spec in specs.items():
        try:
            classes[name] = _load(name, spec)
        except Exception as error:
            if problems is not None:
                problems.append(f"check {name!r} ({spec}) cannot be loaded: {error}")
    return classes


def _options(cls: type[Check], given: Any, problems: list[str]) -> dict[str, float] | None:
    """The thresholds of one check: its defaults updated with ``given``; None: turned off."""
    options = {key: float(value) for key, value in cls.defaults.items()}
    if given is None or given is True:
        return options
    if given is False:
        return None
    for key, value in given.items():
        if key == "enabled":
            if value is False:
                return None
            continue
        if key not in options:
            valid = ", ".join(sorted(options)) or "none"
            problems.append(
                f"check {cls.name!r} has no threshold {key!r} (its thresholds: {valid})"
            )
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            problems.append(
                f"threshold {cls.name}.{key} must be a finite number, 0 or more, not {value!r}"
            )
            continue
        options[key] = float(value)
    return options


def build(settings: Mapping[str, Any] | None, context: Context, problems: list[str]) -> list[Check]:
    """Instantiate every installed check that ``settings`` (the ``checks`` setting) leaves on.

    What is wrong with the settings or with a check is added to ``problems``; the other
    checks are built anyway.
    """
    settings = dict(settings or {})
    classes = available(problems)
    for name in settings:
        if name not in classes:
            problems.append(
                f"setting 'checks' names no installed check {name!r} (installed: "
                f"{', '.join(classes)})"
            )
    checks: list[Check] = []
    for name, cls in classes.items():
        options = _options(cls, settings.get(name), problems)
        if options is None:
            continue
        try:
            checks.append(cls(context, options))
        except Exception as error:
            problems.append(f"check {name!r} cannot start: {error!r}")
    return checks


def unknown_stop_on(stop_on: Sequence[str], problems: list[str] | None = None) -> list[str]:
    """The names in ``stop_on`` that are no installed check."""
    classes = available(problems)
    return [name for name in stop_on if name not in classes]


def validate(config: Config) -> None:
    """Refuse, before a run, ``checks`` and ``stop_on`` settings that name no check.

    Raises:
        ConfigError: the first problem, with the installed checks as the hint.
    """
    problems: list[str] = []
    build(config.checks, Context(), problems)
    unknown = unknown_stop_on(config.stop_on, problems)
    if unknown:
        problems.insert(0, f"setting 'stop_on' names no installed check {unknown[0]!r}")
    if problems:
        if "(installed: " in problems[0]:  # the message names them already
            hint = "'kleio check --list' describes the installed checks and their thresholds"
        else:
            hint = (
                f"installed checks: {', '.join(available())} ('kleio check --list' describes them)"
            )
        raise ConfigError(problems[0], hint)
