"""Layered configuration: flags, environment, project file, user file, defaults.

Highest first:

1. command-line flags (``--db URI``);
2. environment variables (``KLEIO_DB``, ...);
3. the project file ``kleio.yaml`` at the root of the git repository (or the current directory);
4. the user file ``$XDG_CONFIG_HOME/kleio/config.yaml`` (``~/.config/kleio/config.yaml``);
5. defaults.

One module a concern: :mod:`kleio.config.settings` (what each setting is),
:mod:`kleio.config.parsers` (how a value is checked), :mod:`kleio.config.files` (the files,
read safely; PyYAML only when one exists, to keep start-up fast); here, the typed
:class:`Config` and :func:`load_config`, which layers them.
"""

from __future__ import annotations

import os

from kleio.config.files import (
    MAX_CONFIG_FILE,
    project_config_path,
    read_config_file,
    user_config_path,
)
from kleio.config.parsers import Bounds
from kleio.config.settings import BOUNDS, SETTINGS, SETTINGS_BY_NAME, Setting, xdg_dir
from kleio.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any


class Config:
    """The effective settings, typed, and where each came from: built once by
    :func:`load_config` and handed to the core, which reads attributes (``config.stale_after``)
    instead of looking names up. Immutable: :meth:`replace` makes a changed copy."""

    __slots__ = (
        "checks",
        "db",
        "flush_interval",
        "heartbeat_interval",
        "hostname",
        "max_statistic_size",
        "metrics",
        "sources",
        "spool_dir",
        "stale_after",
        "stop_grace",
        "stop_on",
    )

    db: str
    heartbeat_interval: float
    stale_after: float
    flush_interval: float
    spool_dir: str
    #: The host name given by ``hostname:`` (empty: the machine's).
    hostname: str
    max_statistic_size: int
    stop_grace: float
    #: ``{NAME: min|max, ..., "primary": NAME}``.
    metrics: dict[str, str]
    #: ``{CHECK: {THRESHOLD: NUMBER} | True | False}``.
    checks: dict[str, Any]
    stop_on: list[str]
    #: Where each setting came from: ``"default"``, ``"command line"``, a variable, a file.
    sources: dict[str, str]

    def __init__(self, values: dict[str, Any], sources: dict[str, str]) -> None:
        missing = [setting.name for setting in SETTINGS if setting.name not in values]
        if missing:
            raise TypeError(f"Config needs every setting; missing {', '.join(missing)}")
        for setting in SETTINGS:
            object.__setattr__(self, setting.name, values[setting.name])
        object.__setattr__(self, "sources", dict(sources))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a Config is immutable; use config.replace({name}=...)")

    def value(self, name: str) -> Any:
        """The value of the setting ``name`` (as ``kleio config`` lists them)."""
        if name not in SETTINGS_BY_NAME:
            raise KeyError(name)
        return getattr(self, name)

    def replace(self, **changes: Any) -> Config:
        """A copy with some settings changed (parsed as if given on the command line)."""
        values = {setting.name: getattr(self, setting.name) for setting in SETTINGS}
        sources = dict(self.sources)
        for name, given in changes.items():
            setting = SETTINGS_BY_NAME.get(name)
            if setting is None:
                raise KeyError(name)
            values[name] = setting.parse(name, given)
            sources[name] = "command line"
        return Config(values, sources)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{setting.name}={getattr(self, setting.name)!r}"
            for setting in SETTINGS
            if setting.name != "db"
        )
        return f"<Config {shown}>"


def load_config(flags: dict[str, Any] | None = None, cwd: str | None = None) -> Config:
    """Resolve every setting from its highest-priority source."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    layers: list[tuple[str, dict[str, Any]]] = [("command line", flags)]
    env = {s.name: os.environ[s.env] for s in SETTINGS if os.environ.get(s.env)}
    layers.append(("environment", env))
    project_path = project_config_path(cwd)
    layers.append((project_path, read_config_file(project_path)))
    user_path = user_config_path()
    layers.append((user_path, read_config_file(user_path)))

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        for source, given in layers:
            if setting.name in given:
                label = f"{setting.env}" if source == "environment" else source
                try:
                    value = setting.parse(setting.name, given[setting.name])
                except ConfigError as error:
                    where = f"--{setting.name}" if source == "command line" else label
                    raise ConfigError(
                        f"{error.message} (set by {where})", f"fix it in {where}"
                    ) from None
                values[setting.name] = value
                sources[setting.name] = label
                break
        else:
            values[setting.name] = setting.default()
            sources[setting.name] = "default"
    return Config(values, sources)


__all__ = [
    "BOUNDS",
    "MAX_CONFIG_FILE",
    "SETTINGS",
    "SETTINGS_BY_NAME",
    "Bounds",
    "Config",
    "Setting",
    "load_config",
    "project_config_path",
    "read_config_file",
    "user_config_path",
    "xdg_dir",
]
