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

import errno
import math
import os
import stat

from kleio.errors import ConfigError
from kleio.git import find_root

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any, Callable


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


class Bounds:
    """The documented range of a numeric setting (both ends included)."""

    __slots__ = ("high", "low", "unit")

    def __init__(self, low: float, high: float, unit: str) -> None:
        self.low, self.high, self.unit = low, high, unit


def _shown(value: Any) -> str:
    """A bad value as an error message quotes it: its repr, clipped to stay one short line.

    reprlib bounds the work too: YAML aliases can make a value whose whole repr is huge.
    """
    import reprlib

    shorten = reprlib.Repr()
    shorten.maxstring = shorten.maxother = 60
    shorten.maxlevel, shorten.maxlist, shorten.maxdict = 2, 4, 4
    text = shorten.repr(value)
    return text if len(text) <= 60 else text[:50] + "…" + text[-9:]


def _plain(number: float) -> str:
    """A bound as the docs write it: 3600, 0.05, 2592000 (never 2.592e+06)."""
    return str(int(number)) if number == int(number) else repr(number)


def _bounded_float(bounds: Bounds) -> Callable[[str, Any], float]:
    """A parser for a finite number of ``bounds.unit`` between ``bounds.low`` and ``.high``.

    ``nan``, ``inf`` and values such as ``1e308`` are refused: an infinite flush interval
    journals nothing, and a heartbeat interval beyond what a timer accepts crashes the runner.
    """

    def parse(name: str, value: Any) -> float:
        # bool is an int to Python, but 'heartbeat_interval: yes' is a mistake, not 1 second.
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"setting {name!r} must be a number, not {_shown(value)}")
        try:
            number = float(value)
        except (ValueError, OverflowError):
            raise ConfigError(f"setting {name!r} must be a number, not {_shown(value)}") from None
        if not (math.isfinite(number) and bounds.low <= number <= bounds.high):
            raise ConfigError(
                f"setting {name!r} must be a finite number from {_plain(bounds.low)} to "
                f"{_plain(bounds.high)} {bounds.unit}, not {_shown(value)}"
            )
        return number

    return parse


#: ``512KiB``: compiled on first use (:mod:`re` stays off the start path).
_SIZE = r"\s*([0-9]+)\s*((?:[km]i?)?b)?\s*"
_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2}


def _bounded_size(bounds: Bounds) -> Callable[[str, Any], int]:
    """A parser for a whole number of bytes: ``1048576``, ``512KiB``, ``4MiB``, ``4MB``."""

    def parse(name: str, value: Any) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            import re

            match = re.fullmatch(_SIZE, value, re.IGNORECASE)
            if match:
                # More digits than any bound has: out of range, without converting a huge
                # string (int() refuses more than 4300 digits).
                digits = match.group(1).lstrip("0") or "0"
                number = (int(digits) if len(digits) <= 20 else 10**20) * _SIZE_UNITS[
                    (match.group(2) or "").lower()]
        if number is None:
            raise ConfigError(
                f"setting {name!r} must be a whole number of bytes (e.g. 1048576 or 1MiB), "
                f"not {_shown(value)}"
            )
        if not bounds.low <= number <= bounds.high:
            raise ConfigError(
                f"setting {name!r} must be from {_plain(bounds.low)} to {_plain(bounds.high)} "
                f"{bounds.unit}, not {_shown(value)}"
            )
        return number

    return parse


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"setting {name!r} must be a non-empty string, not {_shown(value)}")
    if "\x00" in value:
        raise ConfigError(f"setting {name!r} must not hold a NUL character")
    return value


def _checks(name: str, value: Any) -> dict[str, Any]:
    """``checks:``: ``{CHECK: {THRESHOLD: NUMBER}}``, ``{CHECK: off}``; JSON text in the
    environment. Which checks and thresholds exist is checked by :mod:`kleio.checks`."""
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"setting {name!r} must be JSON text in the environment, e.g. "
                              '\'{"silent": {"after": 600}}\'') from None
    if not isinstance(value, dict):
        raise ConfigError(f"setting {name!r} must map check names to thresholds (e.g. "
                          f"{{silent: {{after: 600}}, plateau: off}}), not {_shown(value)}")
    found: dict[str, Any] = {}
    for check, given in value.items():
        if given in (False, "off", "false", "no"):
            found[str(check)] = False
        elif given in (True, None, "on", "true", "yes"):
            found[str(check)] = True
        elif isinstance(given, dict):
            found[str(check)] = {str(k): v for k, v in given.items()}
        else:
            raise ConfigError(f"setting {name!r}: check {str(check)!r} must have a mapping of "
                              f"thresholds, or off, not {_shown(given)}")
    return found


def _names(name: str, value: Any) -> list[str]:
    """A list of names, or the text ``a,b`` (``--stop-on nan,diverged``)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"setting {name!r} must be a list of check names (e.g. "
                          f"[nan, diverged]), not {_shown(value)}")
    return [item.strip() for item in items if item.strip()]


def _hostname(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigError(f"setting {name!r} must be a host name, not {_shown(value)}")
    text = str(value)
    # The name is shown in tables and compared with the holder's: no line breaks or NULs,
    # and text every backend stores (undecodable bytes arrive as lone surrogates).
    if any(ord(char) < 32 or ord(char) == 127 or 0xD800 <= ord(char) <= 0xDFFF
           for char in text):
        raise ConfigError(
            f"setting {name!r} must be UTF-8 text without control characters, not {_shown(text)}")
    return text


def _metrics(name: str, value: Any) -> dict[str, str]:
    """``metrics:``: ``{NAME: min|max, ..., primary: NAME}``, or the text ``a:min,b:max``
    (the first named is then the primary metric), as in ``KLEIO_METRICS``."""
    from kleio.metrics import parse_mode, parse_spec

    try:
        if isinstance(value, str):
            found: dict[str, str] = {}
            for spec in (part for part in value.split(",") if part.strip()):
                key, mode = parse_spec(spec)
                found.setdefault("primary", key)
                if mode is not None:
                    found[key] = mode
            return found
        if isinstance(value, dict):
            return {str(k): (str(v) if k == "primary" else parse_mode(v))
                    for k, v in value.items()}
    except ValueError as error:
        raise ConfigError(f"setting {name!r}: {error}") from None
    raise ConfigError(f"setting {name!r} must map metric names to min or max (e.g. "
                      f"{{val_loss: min, primary: val_loss}}), not {_shown(value)}")


#: Documented ranges (docs/reference/configuration.rst); ``tests/test_config.py`` checks both
#: ends of each.
BOUNDS: dict[str, Bounds] = {
    "heartbeat_interval": Bounds(0.05, 3600.0, "seconds"),
    # The smallest stale_after must stay tiny: a test (and a user) may shorten it on another
    # host to fail a trial over at once. It is not checked against heartbeat_interval: the
    # two are read on different machines (the runner's and whoever judges its heartbeat).
    "stale_after": Bounds(0.01, 2592000.0, "seconds"),
    "flush_interval": Bounds(0.001, 60.0, "seconds"),
    "stop_grace": Bounds(0.1, 3600.0, "seconds"),
    # The upper end stays below MongoDB's 16 MiB document limit (one event per statistic).
    "max_statistic_size": Bounds(1024, 16_000_000, "bytes"),
}


class Setting:
    """One setting: its name in kleio.yaml, its variable, default, parser and help."""

    __slots__ = ("default", "env", "help", "name", "parse")

    def __init__(self, name: str, env: str, default: Callable[[], Any],
                 parse: Callable[[str, Any], Any], help: str) -> None:
        self.name, self.env, self.default, self.parse, self.help = (
            name, env, default, parse, help)


SETTINGS: tuple[Setting, ...] = (
    Setting("db", "KLEIO_DB", _default_db, _string, "journal URI: sqlite://PATH or mongodb://..."),
    Setting(
        "heartbeat_interval",
        "KLEIO_HEARTBEAT_INTERVAL",
        lambda: 5.0,
        _bounded_float(BOUNDS["heartbeat_interval"]),
        "seconds between two heartbeats of a runner",
    ),
    Setting(
        "stale_after",
        "KLEIO_STALE_AFTER",
        lambda: 60.0,
        _bounded_float(BOUNDS["stale_after"]),
        "seconds without heartbeat after which a runner is considered dead",
    ),
    Setting(
        "flush_interval",
        "KLEIO_FLUSH_INTERVAL",
        lambda: 0.2,
        _bounded_float(BOUNDS["flush_interval"]),
        "longest delay, in seconds, before a received event is written to the journal",
    ),
    Setting("spool_dir", "KLEIO_SPOOL_DIR", _default_spool, _string,
            "where events wait while the journal is unreachable"),
    Setting("hostname", "KLEIO_HOSTNAME", lambda: "", _hostname,
            "host name recorded for runners (default: the machine's)"),
    Setting(
        "max_statistic_size",
        "KLEIO_MAX_STATISTIC_SIZE",
        lambda: 1048576,
        _bounded_size(BOUNDS["max_statistic_size"]),
        "largest encoded size, in bytes, of one logged statistic",
    ),
    Setting(
        "stop_grace",
        "KLEIO_STOP_GRACE",
        lambda: 10.0,
        _bounded_float(BOUNDS["stop_grace"]),
        "seconds a program asked to stop has after SIGTERM before it gets SIGKILL",
    ),
    Setting("metrics", "KLEIO_METRICS", dict, _metrics,
            "metric modes for reading commands: {NAME: min|max, primary: NAME}"),
    Setting("checks", "KLEIO_CHECKS", dict, _checks,
            "thresholds of the checks run on every trial: {CHECK: {THRESHOLD: N}|off}"),
    Setting("stop_on", "KLEIO_STOP_ON", list, _names,
            "checks whose finding stops the program, as 'kleio stop' does: [nan, diverged]"),
)

SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


def user_config_path() -> str:
    return os.path.join(xdg_dir("XDG_CONFIG_HOME", ".config"), "kleio", "config.yaml")


def project_config_path(cwd: str | None = None) -> str:
    root = find_root(cwd) or os.path.abspath(cwd or os.getcwd())
    return os.path.join(root, "kleio.yaml")


#: A configuration file names a few settings: anything larger is not one.
MAX_CONFIG_FILE = 1 << 20


def read_config_file(path: str) -> dict[str, Any]:
    """Read one YAML configuration file; a missing file is empty.

    A setting given an empty value (``stale_after:``) counts as unset, like an empty
    environment variable.
    """
    try:
        # O_NONBLOCK: opening a FIFO for reading would wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            info = os.fstat(fd)
            # A FIFO would block and /dev/zero never end: only a file of sensible size.
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CONFIG_FILE:
                what = "not a regular file" if not stat.S_ISREG(info.st_mode) else (
                    f"{info.st_size} bytes, more than {MAX_CONFIG_FILE}")
                raise ConfigError(f"configuration file {path} is {what}",
                                  "replace it with a YAML file of settings, or remove it")
            raw = b""
            while chunk := os.read(fd, MAX_CONFIG_FILE + 1 - len(raw)):
                raw += chunk
        finally:
            os.close(fd)
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ConfigError(
            f"cannot read configuration file {path}: {error.strerror}",
            "fix its permissions or remove it",
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"configuration file {path} is not UTF-8 text (byte 0x{raw[error.start]:02x} at "
            f"offset {error.start})",
            "save it as UTF-8",
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
    except (ValueError, RecursionError) as error:
        # PyYAML lets these through: an integer of more than 4300 digits, deep nesting.
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise ConfigError(
            f"configuration file {path} cannot be read as YAML ({reason})", "fix or remove it"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"configuration file {path} must hold a mapping of settings",
            "write it as 'db: sqlite:///path/to/kleio.db'",
        )
    # Keys may be numbers or dates in YAML; compare their text so sorting never fails.
    unknown = sorted(str(key) for key in data if key not in SETTINGS_BY_NAME)
    if unknown:
        valid = ", ".join(SETTINGS_BY_NAME)
        raise ConfigError(
            f"configuration file {path} has unknown setting {unknown[0]!r}",
            f"valid settings are: {valid}",
        )
    return {key: value for key, value in data.items() if value is not None and value != ""}


class Config:
    """The effective settings, typed, and where each came from: built once by
    :func:`load_config` and handed to the core, which reads attributes (``config.stale_after``)
    instead of looking names up. Immutable: :meth:`replace` makes a changed copy."""

    __slots__ = ("checks", "db", "flush_interval", "heartbeat_interval", "hostname",
                 "max_statistic_size", "metrics", "sources", "spool_dir", "stale_after",
                 "stop_grace", "stop_on")

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
        shown = ", ".join(f"{setting.name}={getattr(self, setting.name)!r}"
                          for setting in SETTINGS if setting.name != "db")
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
                    raise ConfigError(f"{error.message} (set by {where})",
                                      f"fix it in {where}") from None
                values[setting.name] = value
                sources[setting.name] = label
                break
        else:
            values[setting.name] = setting.default()
            sources[setting.name] = "default"
    return Config(values, sources)
