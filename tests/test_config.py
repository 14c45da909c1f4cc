"""Layered configuration: flags, environment, project file, user file, defaults."""

from __future__ import annotations

import os

import pytest

from kleio.config import BOUNDS, SETTINGS_BY_NAME, _plain, load_config, user_config_path
from kleio.errors import ConfigError


def write_user(text):
    path = user_config_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def test_defaults_follow_xdg(git_repo, isolated_env):
    config = load_config()
    assert config.db == "sqlite://" + str(isolated_env / ".local" / "share" / "kleio" /
                                          "kleio.db")
    assert config.sources["db"] == "default"
    assert config.stale_after == 60.0 and config.heartbeat_interval == 5.0


def test_precedence_flag_env_project_user(git_repo, monkeypatch):
    user = write_user("db: sqlite:///user.db\nstale_after: 30\nflush_interval: 0.5\n")
    project = git_repo / "kleio.yaml"
    project.write_text("db: sqlite:///project.db\nstale_after: 20\n", encoding="utf-8")
    (git_repo / "sub").mkdir()
    monkeypatch.chdir(git_repo / "sub")  # the project file is found at the repository root
    monkeypatch.setenv("KLEIO_STALE_AFTER", "10")
    config = load_config({"db": "sqlite:///flag.db"})
    assert (config.db, config.sources["db"]) == ("sqlite:///flag.db", "command line")
    assert (config.stale_after, config.sources["stale_after"]) == (10.0, "KLEIO_STALE_AFTER")
    assert (config.flush_interval, config.sources["flush_interval"]) == (0.5, user)
    config = load_config()
    assert (config.db, config.sources["db"]) == ("sqlite:///project.db", str(project))


@pytest.mark.parametrize("text, message", [
    ("db: [unclosed\n", "is not valid YAML"),
    ("- a\n- b\n", "must hold a mapping"),
    ("dbb: x\n", "unknown setting 'dbb'"),
    ("stale_after: soon\n", "'stale_after' must be a number, not 'soon' (set by"),
    ("stale_after: -5\n", "must be a finite number from 0.01 to 2592000 seconds, not -5 ("),
])
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


# -- bounds of interval and size settings ----------------------------------------------------

BOUNDED = sorted(BOUNDS)


@pytest.mark.parametrize("name", BOUNDED)
@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "Infinity", "1e308", "-1", "0",
                                  "-0.0", "true", "five", "0x10"])
def test_non_finite_huge_or_negative_values_from_the_environment_are_refused(
        git_repo, monkeypatch, name, text):
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
@pytest.mark.parametrize("text", [".inf", "-.inf", ".nan", ".NaN", "1e308", "1.0e+308", "-5",
                                  "0", "yes", "[1]", "{a: 1}", "2001-01-01",
                                  "1" + "0" * 5000])
def test_non_finite_huge_or_negative_values_in_a_file_are_refused(git_repo, name, text):
    path = write_user(f"{name}: {text}\n")
    with pytest.raises(ConfigError) as error:
        load_config()
    message = str(error.value)
    assert path in message and "\n" not in message
    assert len(message) < 400  # a 5000-digit value is clipped, not echoed whole


@pytest.mark.parametrize("name", BOUNDED)
def test_both_ends_of_each_range_are_accepted_and_just_outside_refused(
        git_repo, monkeypatch, name):
    low, high = BOUNDS[name].low, BOUNDS[name].high
    env = SETTINGS_BY_NAME[name].env
    for value in (low, high):
        text = str(int(value)) if value == int(value) else repr(value)
        monkeypatch.setenv(env, text)
        assert load_config().value(name) == value
    for value in (low * 0.99, high * 1.01 + 1):
        text = str(int(value)) if name == "max_statistic_size" else repr(value)
        monkeypatch.setenv(env, text)
        with pytest.raises(ConfigError, match=f"from {_plain(low)} to {_plain(high)} "):
            load_config()


def test_defaults_of_the_new_settings(git_repo):
    config = load_config()
    assert config.max_statistic_size == 1048576
    assert isinstance(config.max_statistic_size, int)
    assert config.stop_grace == 10.0
    assert config.sources["stop_grace"] == config.sources["max_statistic_size"] == "default"


@pytest.mark.parametrize("text, size", [
    ("1048576", 1048576), ("4MiB", 4 * 2**20), ("4 mib", 4 * 2**20), ("512KiB", 512 * 1024),
    ("2MB", 2_000_000), ("16000000", 16_000_000), ("16MB", 16_000_000), ("1024B", 1024),
    ("0001024", 1024),
])
def test_max_statistic_size_accepts_whole_bytes_and_binary_units(git_repo, monkeypatch, text,
                                                                 size):
    monkeypatch.setenv("KLEIO_MAX_STATISTIC_SIZE", text)
    assert load_config().max_statistic_size == size


@pytest.mark.parametrize("text", ["1e6", "1048576.0", "1.5MiB", "4GiB", "17MB", "1023",
                                  "9" * 30, "1" + "0" * 30 + "2048", "４０９６", "-2048", "MiB"])
def test_max_statistic_size_refuses_fractions_units_and_out_of_range(git_repo, monkeypatch,
                                                                     text):
    monkeypatch.setenv("KLEIO_MAX_STATISTIC_SIZE", text)
    with pytest.raises(ConfigError, match="max_statistic_size"):
        load_config()


def test_max_statistic_size_from_yaml_int_and_float(git_repo):
    write_user("max_statistic_size: 2048\n")
    assert load_config().max_statistic_size == 2048
    write_user("max_statistic_size: 2048.0\n")
    with pytest.raises(ConfigError, match="whole number of bytes"):
        load_config()


def test_a_config_file_that_is_not_utf8_is_one_line_exit_65(git_repo):
    path = user_config_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(b"hostname: caf\xe9\n")
    with pytest.raises(ConfigError) as error:
        load_config()
    assert str(error.value) == (f"configuration file {path} is not UTF-8 text (byte 0xe9 at "
                                "offset 13). Save it as UTF-8.")
    assert error.value.exit_code == 65


@pytest.mark.parametrize("text, message", [
    ("a: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ("1: 2\nfoo: 3\n", "unknown setting '1'"),
    ("2001-01-01: x\n", "unknown setting '2001-01-01'"),
    ("db: \"a\\0b\"\n", "NUL"),
    ("hostname: \"a\\nb\"\n", "control characters"),
    ("hostname: [a]\n", "must be a host name"),
])
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


def test_a_hostname_with_undecodable_bytes_is_refused(git_repo, monkeypatch):
    monkeypatch.setenv("KLEIO_HOSTNAME", "node\udcff1")  # as os.environ decodes b"node\xff1"
    with pytest.raises(ConfigError, match="'hostname' must be UTF-8 text"):
        load_config()


def test_an_empty_db_flag_names_the_flag(git_repo):
    with pytest.raises(ConfigError) as error:
        load_config({"db": ""})
    assert str(error.value).endswith("(set by --db). Fix it in --db.")


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


def test_the_configuration_is_typed_and_immutable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KLEIO_STALE_AFTER", "90")
    monkeypatch.setenv("KLEIO_MAX_STATISTIC_SIZE", "4KiB")
    config = load_config()
    assert isinstance(config.stale_after, float) and config.stale_after == 90.0
    assert config.max_statistic_size == 4096 and isinstance(config.max_statistic_size, int)
    with pytest.raises(AttributeError, match="immutable"):
        config.stale_after = 1.0  # type: ignore[misc]
    changed = config.replace(stale_after="12", stop_on="nan,diverged")
    assert (changed.stale_after, changed.stop_on) == (12.0, ["nan", "diverged"])
    assert changed.sources["stale_after"] == "command line"
    assert config.stale_after == 90.0  # the original is untouched
    with pytest.raises(ConfigError, match="stale_after"):
        config.replace(stale_after="soon")
    with pytest.raises(KeyError):
        config.replace(no_such_setting=1)
    with pytest.raises(KeyError):
        config.value("values")
