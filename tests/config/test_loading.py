"""kleio.config: flags > environment > project file > user file > defaults, one typed Config."""

from __future__ import annotations

import pytest

from kleio.config import load_config
from kleio.errors import ConfigError
from tests.config.conftest import write_user


def test_defaults_follow_xdg(git_repo, isolated_env):
    config = load_config()
    assert config.db == "sqlite://" + str(isolated_env / ".local" / "share" / "kleio" / "kleio.db")
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


def test_defaults_of_the_new_settings(git_repo):
    config = load_config()
    assert config.max_statistic_size == 1048576
    assert isinstance(config.max_statistic_size, int)
    assert config.stop_grace == 10.0
    assert config.sources["stop_grace"] == config.sources["max_statistic_size"] == "default"


def test_an_empty_db_flag_names_the_flag(git_repo):
    with pytest.raises(ConfigError) as error:
        load_config({"db": ""})
    assert str(error.value).endswith("(set by --db). Fix it in --db.")


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
