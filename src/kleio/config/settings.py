"""Every setting: its name in kleio.yaml, its environment variable, default, parser, range.

docs/reference/configuration.rst documents them; ``tests/test_config.py`` checks both ends of
each range.
"""

from __future__ import annotations

import os

from kleio.config.parsers import (
    Bounds,
    bounded_float,
    bounded_size,
    parse_checks,
    parse_hostname,
    parse_metrics,
    parse_names,
    parse_string,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any, Callable


def xdg_dir(variable: str, fallback: str) -> str:
    """Return an XDG base directory (``$VARIABLE`` or ``~/<fallback>``)."""
    value = os.environ.get(variable)
    if value and os.path.isabs(value):
        return value
    return os.path.join(os.path.expanduser("~"), fallback)


def default_db() -> str:
    return "sqlite://" + os.path.join(xdg_dir("XDG_DATA_HOME", ".local/share"), "kleio", "kleio.db")


def default_spool() -> str:
    return os.path.join(xdg_dir("XDG_STATE_HOME", ".local/state"), "kleio", "spool")


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

    def __init__(
        self,
        name: str,
        env: str,
        default: Callable[[], Any],
        parse: Callable[[str, Any], Any],
        help: str,
    ) -> None:
        self.name, self.env, self.default, self.parse, self.help = (name, env, default, parse, help)


def _ranged(name: str, default: float, help: str) -> Setting:
    """A numeric setting of :data:`BOUNDS`: ``KLEIO_<NAME>``, parsed within its range."""
    bounds = BOUNDS[name]
    parse = bounded_size(bounds) if bounds.unit == "bytes" else bounded_float(bounds)
    return Setting(name, "KLEIO_" + name.upper(), lambda: default, parse, help)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "db", "KLEIO_DB", default_db, parse_string, "journal URI: sqlite://PATH or mongodb://..."
    ),
    _ranged("heartbeat_interval", 5.0, "seconds between two heartbeats of a runner"),
    _ranged(
        "stale_after", 60.0, "seconds without heartbeat after which a runner is considered dead"
    ),
    _ranged(
        "flush_interval",
        0.2,
        "longest delay, in seconds, before a received event is written to the journal",
    ),
    Setting(
        "spool_dir",
        "KLEIO_SPOOL_DIR",
        default_spool,
        parse_string,
        "where events wait while the journal is unreachable",
    ),
    Setting(
        "hostname",
        "KLEIO_HOSTNAME",
        lambda: "",
        parse_hostname,
        "host name recorded for runners (default: the machine's)",
    ),
    _ranged(
        "max_statistic_size", 1048576, "largest encoded size, in bytes, of one logged statistic"
    ),
    _ranged(
        "stop_grace",
        10.0,
        "seconds a program asked to stop has after SIGTERM before it gets SIGKILL",
    ),
    Setting(
        "metrics",
        "KLEIO_METRICS",
        dict,
        parse_metrics,
        "metric modes for reading commands: {NAME: min|max, primary: NAME}",
    ),
    Setting(
        "checks",
        "KLEIO_CHECKS",
        dict,
        parse_checks,
        "thresholds of the checks run on every trial: {CHECK: {THRESHOLD: N}|off}",
    ),
    Setting(
        "stop_on",
        "KLEIO_STOP_ON",
        list,
        parse_names,
        "checks whose finding stops the program, as 'kleio stop' does: [nan, diverged]",
    ),
)

SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}
