"""kleio.config.parsers and settings: every range and unit, both ends, environment and files."""

from __future__ import annotations

import pytest

from kleio.config import BOUNDS, SETTINGS_BY_NAME, load_config
from kleio.config.parsers import plain
from kleio.errors import ConfigError
from tests.config.conftest import write_user

BOUNDED = sorted(BOUNDS)


@pytest.mark.parametrize("name", BOUNDED)
@pytest.mark.parametrize(
    "text",
    ["nan", "NaN", "inf", "-inf", "Infinity", "1e308", "-1", "0", "-0.0", "true", "five", "0x10"],
)
def test_non_finite_huge_or_negative_values_from_the_environment_are_refused(
    git_repo, monkeypatch, name, text
):
    env = SETTINGS_BY_NAME[name].env
    monkeypatch.setenv(env, text)
    with pytest.raises(ConfigError) as error:
        load_config()
    assert error.value.exit_code == 65
    message = str(error.value)
    assert f"setting {name!r} must be" in message
    assert f"(set by {env}). Fix it in {env}." in message
    assert "\n" not in message


@pytest.mark.parametrize("name", BOUNDED)
@pytest.mark.parametrize(
    "text",
    [
        ".inf",
        "-.inf",
        ".nan",
        ".NaN",
        "1e308",
        "1.0e+308",
        "-5",
        "0",
        "yes",
        "[1]",
        "{a: 1}",
        "2001-01-01",
        "1" + "0" * 5000,
    ],
)
def test_non_finite_huge_or_negative_values_in_a_file_are_refused(git_repo, name, text):
    path = write_user(f"{name}: {text}\n")
    with pytest.raises(ConfigError) as error:
        load_config()
    message = str(error.value)
    assert path in message and "\n" not in message
    assert len(message) < 400  # a 5000-digit value is clipped, not echoed whole


@pytest.mark.parametrize("name", BOUNDED)
def test_both_ends_of_each_range_are_accepted_and_just_outside_refused(git_repo, monkeypatch, name):
    low, high = BOUNDS[name].low, BOUNDS[name].high
    env = SETTINGS_BY_NAME[name].env
    for value in (low, high):
        text = str(int(value)) if value == int(value) else repr(value)
        monkeypatch.setenv(env, text)
        assert load_config().value(name) == value
    for value in (low * 0.99, high * 1.01 + 1):
        text = str(int(value)) if name == "max_statistic_size" else repr(value)
        monkeypatch.setenv(env, text)
        with pytest.raises(ConfigError, match=f"from {plain(low)} to {plain(high)} "):
            load_config()


@pytest.mark.parametrize(
    "text, size",
    [
        ("1048576", 1048576),
        ("4MiB", 4 * 2**20),
        ("4 mib", 4 * 2**20),
        ("512KiB", 512 * 1024),
        ("2MB", 2_000_000),
        ("16000000", 16_000_000),
        ("16MB", 16_000_000),
        ("1024B", 1024),
        ("0001024", 1024),
    ],
)
def test_max_statistic_size_accepts_whole_bytes_and_binary_units(git_repo, monkeypatch, text, size):
    monkeypatch.setenv("KLEIO_MAX_STATISTIC_SIZE", text)
    assert load_config().max_statistic_size == size


@pytest.mark.parametrize(
    "text",
    [
        "1e6",
        "1048576.0",
        "1.5MiB",
        "4GiB",
        "17MB",
        "1023",
        "9" * 30,
        "1" + "0" * 30 + "2048",
        "４０９６",
        "-2048",
        "MiB",
    ],
)
def test_max_statistic_size_refuses_fractions_units_and_out_of_range(git_repo, monkeypatch, text):
    monkeypatch.setenv("KLEIO_MAX_STATISTIC_SIZE", text)
    with pytest.raises(ConfigError, match="max_statistic_size"):
        load_config()


def test_max_statistic_size_from_yaml_int_and_float(git_repo):
    write_user("max_statistic_size: 2048\n")
    assert load_config().max_statistic_size == 2048
    write_user("max_statistic_size: 2048.0\n")
    with pytest.raises(ConfigError, match="whole number of bytes"):
        load_config()


def test_a_hostname_with_undecodable_bytes_is_refused(git_repo, monkeypatch):
    monkeypatch.setenv("KLEIO_HOSTNAME", "node\udcff1")  # as os.environ decodes b"node\xff1"
    with pytest.raises(ConfigError, match="'hostname' must be UTF-8 text"):
        load_config()
