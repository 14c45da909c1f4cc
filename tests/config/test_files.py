"""kleio.config.files: a bad, odd, huge or hostile configuration file is one clear error."""

from __future__ import annotations

import os

import pytest

from kleio.config import load_config, user_config_path
from kleio.errors import ConfigError
from tests.config.conftest import write_user


@pytest.mark.parametrize(
    "text, message",
    [
        ("db: [unclosed\n", "is not valid YAML"),
        ("- a\n- b\n", "must hold a mapping"),
        ("dbb: x\n", "unknown setting 'dbb'"),
        ("stale_after: soon\n", "'stale_after' must be a number, not 'soon' (set by"),
        ("stale_after: -5\n", "must be a finite number from 0.01 to 2592000 seconds, not -5 ("),
    ],
)
def test_bad_files_are_clear_errors(git_repo, text, message):
    path = write_user(text)
    with pytest.raises(ConfigError) as error:
        load_config()
    assert message in str(error.value)
    assert path in str(error.value)


def test_unreadable_file_is_a_config_error(git_repo):
    path = write_user("db: x\n")
    os.remove(path)
    os.mkdir(path)  # a directory where the file should be: unreadable even for root
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config()


def test_a_config_file_that_is_not_utf8_is_one_line_exit_65(git_repo):
    path = user_config_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(b"hostname: caf\xe9\n")
    with pytest.raises(ConfigError) as error:
        load_config()
    assert str(error.value) == (
        f"configuration file {path} is not UTF-8 text (byte 0xe9 at offset 13). Save it as UTF-8."
    )
    assert error.value.exit_code == 65


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
        ("1: 2\nfoo: 3\n", "unknown setting '1'"),
        ("2001-01-01: x\n", "unknown setting '2001-01-01'"),
        ('db: "a\\0b"\n', "NUL"),
        ('hostname: "a\\nb"\n', "control characters"),
        ("hostname: [a]\n", "must be a host name"),
    ],
)
def test_odd_yaml_is_a_config_error(git_repo, text, message):
    path = write_user(text)
    with pytest.raises(ConfigError, match=message) as error:
        load_config()
    assert path in str(error.value) or "unknown setting" not in message


def test_an_empty_value_in_a_file_counts_as_unset(git_repo):
    write_user("stale_after:\nhostname: ''\n")
    config = load_config()
    assert (config.stale_after, config.sources["stale_after"]) == (60.0, "default")
    assert config.sources["hostname"] == "default"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_or_device_as_config_file_is_refused_without_blocking(git_repo):
    path = user_config_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.mkfifo(path)  # reading it would wait for a writer forever
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_config()
    os.remove(path)
    os.symlink(os.devnull, path)
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_config()


def test_a_huge_config_file_is_refused(git_repo):
    path = write_user("db: x\n" + "#" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match=f"{path} is .* bytes, more than 1048576"):
        load_config()


def test_a_yaml_alias_bomb_is_refused_in_one_short_line(git_repo):
    levels = ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 40)]
    write_user("heartbeat_interval: [" + ", ".join(levels) + "]\n")  # 10**40 leaves whole
    with pytest.raises(ConfigError) as error:
        load_config()
    assert "'heartbeat_interval' must be a number" in str(error.value)
    assert len(str(error.value)) < 400
