"""The configuration files: where they are, and reading one safely (PyYAML on demand).

The project file is ``kleio.yaml`` at the root of the git repository (or the current
directory); the user file ``$XDG_CONFIG_HOME/kleio/config.yaml``. PyYAML is imported only
when a file exists, to keep start-up fast.
"""

from __future__ import annotations

import errno
import os
import stat

from kleio.config.settings import SETTINGS_BY_NAME, xdg_dir
from kleio.errors import ConfigError
from kleio.git import find_root

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any


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
    raw = _read_bytes(path)
    if raw is None:
        return {}
    data = _parse_yaml(path, _decoded(path, raw))
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


def _read_bytes(path: str) -> bytes | None:
    """The bytes of a regular file of at most :data:`MAX_CONFIG_FILE`; None if missing."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            info = os.fstat(fd)
            # A FIFO would block and /dev/zero never end: only a file of sensible size.
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CONFIG_FILE:
                what = (
                    "not a regular file"
                    if not stat.S_ISREG(info.st_mode)
                    else (f"{info.st_size} bytes, more than {MAX_CONFIG_FILE}")
                )
                raise ConfigError(
                    f"configuration file {path} is {what}",
                    "replace it with a YAML file of settings, or remove it",
                )
            raw = b""
            while chunk := os.read(fd, MAX_CONFIG_FILE + 1 - len(raw)):
                raw += chunk
            return raw
        finally:
            os.close(fd)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(
            f"cannot read configuration file {path}: {error.strerror}",
            "fix its permissions or remove it",
        ) from None


def _decoded(path: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"configuration file {path} is not UTF-8 text (byte 0x{raw[error.start]:02x} at "
            f"offset {error.start})",
            "save it as UTF-8",
        ) from None


def _parse_yaml(path: str, text: str) -> Any:
    """The YAML document of ``text`` (PyYAML imported here: only when a file exists)."""
    import yaml

    try:
        return yaml.safe_load(text)
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
