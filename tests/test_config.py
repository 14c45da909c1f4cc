"""Layered configuration: flags, environment, project file, user file, defaults."""

from __future__ import annotations

import os

import pytest

from kleio.config import load_config, user_config_path
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
    assert config["stale_after"] == 60.0 and config["heartbeat_interval"] == 5.0


def test_precedence_flag_env_project_user(git_repo, monkeypatch):
    user = write_user("db: sqlite:///user.db\nstale_after: 30\nflush_interval: 0.5\n")
    project = git_repo / "kleio.yaml"
    project.write_text("db: sqlite:///project.db\nstale_after: 20\n", encoding="utf-8")
    (git_repo / "sub").mkdir()
    monkeypatch.chdir(git_repo / "sub")  # the project file is found at the repository root
    monkeypatch.setenv("KLEIO_STALE_AFTER", "10")
    config = load_config({"db": "sqlite:///flag.db"})
    assert (config.db, config.sources["db"]) == ("sqlite:///flag.db", "command line")
    assert (config["stale_after"], config.sources["stale_after"]) == (10.0, "KLEIO_STALE_AFTER")
    assert (config["flush_interval"], config.sources["flush_interval"]) == (0.5, user)
    config = load_config()
    assert (config.db, config.sources["db"]) == ("sqlite:///project.db", str(project))


@pytest.mark.parametrize("text, message", [
    ("db: [unclosed\n", "is not valid YAML"),
    ("- a\n- b\n", "must hold a mapping"),
    ("dbb: x\n", "unknown setting 'dbb'"),
    ("stale_after: soon\n", "'stale_after' must be a number, not 'soon' (set by"),
    ("stale_after: -5\n", "must be positive"),
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
