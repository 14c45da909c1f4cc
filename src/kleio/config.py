"""Layered configuration: flags, environment, project file, user file, defaults.

Highest first:

1. command-line flags (``--db URI``);
2. environment variables (``KLEIO_DB``, ...);
3. the project file ``kleio.yaml`` at the root of the git repository (or the current directory);
4. the user file ``$XDG_CONFIG_HOME/kleio/config.yaml`` (``~/.config/kleio/config.yaml``);
5. defaults.

PyYAML is imported only when a configuration file exists, to keep start-up fast.
"""

from __future__ import annotations

import os
from typing import Any, Callable, NamedTuple

from kleio.errors import ConfigError


def xdg_dir(variable: str, fallback: str) -> str:
    """Return an XDG base directory (``$VARIABLE`` or ``~/<fallback>``)."""
    value = os.environ.get(variable)
    if value and os.path.isabs(value):
        return value
    return os.path.join(os.path.expanduser("~"), fallback)


def _default_db() -> str:
    return "sqlite://" + os.path.join(xdg_dir("XDG_DATA_HOME", ".local/share"), "kleio", "kleio.db")


def _default_spool() -> str:
    return os.path.join(xdg_dir("XDG_STATE_HOME", ".local/state"), "kleio", "spool")


def _positive_float(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r} must be a number, not {value!r}") from None
    if number <= 0:
        raise ConfigError(f"setting {name!r} must be positive, not {value!r}")
    return number


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"setting {name!r} must be a non-empty string, not {value!r}")
    return value


class Setting(NamedTuple):
    name: str
    env: str
    default: Callable[[], Any]
    parse: Callable[[str, Any], Any]
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("db", "KLEIO_DB", _default_db, _string, "journal URI: sqlite://PATH or mongodb://..."),
    Setting(
        "heartbeat_interval",
        "KLEIO_HEARTBEAT_INTERVAL",
        lambda: 5.0,
        _positive_float,
        "seconds between two heartbeats of a runner",
    ),
    Setting(
        "stale_after",
        "KLEIO_STALE_AFTER",
        lambda: 60.0,
        _positive_float,
        "seconds without heartbeat after which a runner is considered dead",
    ),
    Setting(
        "flush_interval",
        "KLEIO_FLUSH_INTERVAL",
        lambda: 0.2,
        _positive_float,
        "longest delay, in seconds, before a received event is written to the journal",
    ),
    Setting("spool_dir", "KLEIO_SPOOL_DIR", _default_spool, _string,
            "where events wait while the journal is unreachable"),
    Setting("hostname", "KLEIO_HOSTNAME", lambda: "", lambda n, v: str(v),
            "host name recorded for runners (default: the machine's)"),
)

SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


def find_project_root(start: str | None = None) -> str | None:
    """Return the closest directory at or above ``start`` holding ``.git``, or None."""
    path = os.path.abspath(start or os.getcwd())
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def user_config_path() -> str:
    return os.path.join(xdg_dir("XDG_CONFIG_HOME", ".config"), "kleio", "config.yaml")


def project_config_path(cwd: str | None = None) -> str:
    root = find_project_root(cwd) or os.path.abspath(cwd or os.getcwd())
    return os.path.join(root, "kleio.yaml")


def read_config_file(path: str) -> dict[str, Any]:
    """Read one YAML configuration file; a missing file is empty."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ConfigError(
            f"cannot read configuration file {path}: {error.strerror}",
            "fix its permissions or remove it",
        ) from None
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"configuration file {path} is not valid YAML{where}", "fix or remove it"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"configuration file {path} must hold a mapping of settings",
            "write it as 'db: sqlite:///path/to/kleio.db'",
        )
    unknown = sorted(set(data) - set(SETTINGS_BY_NAME))
    if unknown:
        valid = ", ".join(SETTINGS_BY_NAME)
        raise ConfigError(
            f"configuration file {path} has unknown setting {unknown[0]!r}",
            f"valid settings are: {valid}",
        )
    return data


class Config:
    """Effective settings and where each came from."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def db(self) -> str:
        return str(self.values["db"])


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

    config = Config()
    for setting in SETTINGS:
        for source, values in layers:
            if setting.name in values:
                label = f"{setting.env}" if source == "environment" else source
                try:
                    value = setting.parse(setting.name, values[setting.name])
                except ConfigError as error:
                    raise ConfigError(f"{error.message} (set by {label})",
                                      f"fix it in {label}") from None
                config.values[setting.name] = value
                config.sources[setting.name] = label
                break
        else:
            config.values[setting.name] = setting.default()
            config.sources[setting.name] = "default"
    return config
