"""kleio init: a commented kleio.yaml and the journal, once."""

from __future__ import annotations

import json
import os
import re

from kleio.config import SETTINGS, load_config
from tests.conftest import run_kleio

SETTING = {setting.name: setting for setting in SETTINGS}


def test_init_writes_a_commented_config_and_the_journal_and_changes_nothing_twice(git_repo, db_uri):
    (git_repo / "sub").mkdir()
    first = run_kleio("init", cwd=git_repo / "sub")
    assert first.returncode == 0, first.stderr
    config = git_repo / "kleio.yaml"  # at the repository's root
    assert first.stdout.splitlines()[0] == f"settings   {config} (written)"
    assert first.stdout.splitlines()[1].endswith("(created)")
    assert os.path.exists(db_uri.removeprefix("sqlite://"))
    text = config.read_text()
    assert all(line.startswith("#") or not line.strip() for line in text.splitlines())
    assert load_config(cwd=str(git_repo)).sources["stop_on"] == "default"  # changes nothing
    again = run_kleio("init", "--json", cwd=git_repo)
    assert again.returncode == 0, again.stderr
    where = json.loads(again.stdout)
    assert (where["config"], where["config_created"], where["journal_created"]) == (
        str(config),
        False,
        False,
    )
    assert config.read_text() == text


def test_the_templates_settings_are_valid_once_uncommented(git_repo, db_uri):
    from kleio.checks.registry import validate
    from kleio.cli.init import TEMPLATE

    setting = re.compile(r"^# ( *[a-z_]+:(?: .*)?)$")
    text = TEMPLATE.format(db_path="x", spool_dir=str(git_repo / "spool"))
    lines = [
        m.group(1)
        for m in map(setting.match, text.splitlines())
        if m and not m.group(1).startswith("db:")
    ]
    (git_repo / "kleio.yaml").write_text("\n".join(lines) + "\n")
    config = load_config(cwd=str(git_repo))
    validate(config)  # every check and threshold the template names exists
    assert config.stop_on == ["nan", "diverged"] and config.checks
    assert config.spool_dir == str(git_repo / "spool")
    for name in (
        "heartbeat_interval",
        "stale_after",
        "flush_interval",
        "max_statistic_size",
        "stop_grace",
        "hostname",
    ):
        # Each commented value is the default: uncommenting it changes nothing but its source.
        assert config.value(name) == SETTING[name].default(), name
        if name != "hostname":  # an empty value counts as unset
            assert config.sources[name] == str(git_repo / "kleio.yaml"), name


def test_the_template_documents_every_setting():
    from kleio.cli.init import TEMPLATE

    documented = set(re.findall(r"^# ([a-z_]+):", TEMPLATE, re.MULTILINE))
    assert documented == {setting.name for setting in SETTINGS}
