"""Keep the documentation honest: it must name every command, exit code and variable."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from kleio.cli import COMMANDS
from kleio.config import SETTINGS
from kleio.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"

#: Variables kleio reads or sets that are not settings.
OTHER_VARIABLES = ("KLEIO_DEBUG", "KLEIO_TRIAL_ID", "KLEIO_CHANNEL", "KLEIO_TEST_MONGODB_URI")


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def existing_command_modules() -> list[str]:
    """Subcommands whose module exists (some are being written while others are in use)."""
    return sorted(
        name
        for name, module in COMMANDS.items()
        if importlib.util.find_spec(f"kleio.cli.{module}") is not None
    )


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_in_the_cli_reference(name):
    text = read(REFERENCE / "cli.rst")
    assert f"kleio {name}" in text, f"docs/reference/cli.rst does not document 'kleio {name}'"


def test_every_command_has_a_section_in_the_cli_reference():
    titles = set(re.findall(r"^``kleio (\w+)``", read(REFERENCE / "cli.rst"), re.MULTILINE))
    modules = {name for name, module in COMMANDS.items() if name == module or name == "config"}
    missing = sorted(modules - titles)
    assert not missing, f"no section for: {missing}"


def exit_code_rows() -> dict[int, str]:
    """Parse the list-table of docs/reference/exit-codes.rst into {code: meaning}."""
    text = read(REFERENCE / "exit-codes.rst")
    rows: dict[int, str] = {}
    for match in re.finditer(
        r"^   \* - (\d+)\n     - ``(\w+)``\n     - (.+?)(?=\n   \* - |\n\n)",
        text,
        re.MULTILINE | re.DOTALL,
    ):
        rows[int(match.group(1))] = " ".join(match.group(3).replace("``", "").split())
    return rows


def test_exit_codes_table_matches_the_code():
    rows = exit_code_rows()
    assert sorted(rows) == sorted(EXIT_CODES), "exit-codes.rst lists other codes than EXIT_CODES"
    for code, meaning in EXIT_CODES.items():
        # The documented meaning starts with the code's own words (it may say more).
        assert rows[code].startswith(meaning), (code, rows[code], meaning)


def test_exit_code_names_match_the_constants():
    import kleio.errors as errors

    text = read(REFERENCE / "exit-codes.rst")
    for match in re.finditer(r"^   \* - (\d+)\n     - ``(\w+)``", text, re.MULTILINE):
        code, name = int(match.group(1)), match.group(2)
        assert getattr(errors, name, None) == code, f"{name} is not {code} in kleio.errors"


def test_every_exit_code_the_cli_uses_is_documented():
    import kleio.checks as checks
    import kleio.errors as errors

    text = " ".join(read(REFERENCE / "exit-codes.rst").split())
    rows = exit_code_rows()
    names = set()
    for module in (ROOT / "src" / "kleio" / "cli").glob("*.py"):
        names |= set(re.findall(r"\bEXIT_[A-Z_]+\b", read(module)))
    names.discard("EXIT_CODES")
    for name in sorted(names):
        code = getattr(errors, name, getattr(checks, name, None))
        assert isinstance(code, int), name
        assert code in rows or f"exits {code}" in text, f"{name} ({code}) is not documented"


def test_every_command_that_needs_a_terminal_is_in_the_exit_code_73_row():
    row = exit_code_rows()[73]
    for module in sorted((ROOT / "src" / "kleio" / "cli").glob("*.py")):
        if "raise NoTerminal(" in read(module):
            assert f"kleio {module.stem}" in row, f"kleio {module.stem} can exit 73"


@pytest.mark.parametrize("variable", [s.env for s in SETTINGS] + list(OTHER_VARIABLES))
def test_every_variable_is_in_the_environment_reference(variable):
    assert f"``{variable}``" in read(REFERENCE / "environment.rst")


@pytest.mark.parametrize("setting", [s.name for s in SETTINGS])
def test_every_setting_is_in_the_configuration_reference(setting):
    assert f"``{setting}``" in read(REFERENCE / "configuration.rst")


def ci_commands() -> list[str]:
    lines = [line.strip() for line in read(ROOT / ".ci" / "run").splitlines()]
    # Commands only: not the shell's settings, nor the block installing a browser first.
    return [
        line
        for line in lines
        if line
        and not line.startswith("#")
        and not line.startswith(("set ", "cd ", "export ", "if ", "fi", "(", "then"))
    ]


def ci_command() -> str:
    """The first command of .ci/run: the README's test command, exactly."""
    return ci_commands()[0]


def test_ci_adds_lint_and_types_after_the_tests():
    rest = " ".join(ci_commands()[1:])
    assert "ruff check src tests" in rest and "mypy" in rest


def readme_quick_start() -> list[str]:
    text = read(ROOT / "README.rst")
    section = text.split("Quick start\n===========\n", 1)[1].split("\n=====", 1)[0]
    section = section.rsplit("\n", 1)[0]  # drop the next section's title line
    return re.findall(r"^\.\. code-block:: console\n\n   (.+)$", section, re.MULTILINE)


def test_readme_quick_start_has_exactly_two_commands():
    commands = readme_quick_start()
    assert len(commands) == 2, commands
    assert "kleio python examples/logistic_regression.py" in commands[0]
    assert '".[examples]"' in commands[0]


def test_readme_test_command_is_the_ci_command():
    assert readme_quick_start()[1] == ci_command()


def test_ci_command_installs_the_test_extra():
    assert shlex.split(ci_command())[:6] == ["python", "-m", "pip", "install", "-q", "-e"]


def test_readme_documents_the_live_mongodb_suite():
    text = read(ROOT / "README.rst")
    assert "KLEIO_TEST_MONGODB_URI=mongodb://" in text
    assert "python -m pytest -m mongodb" in text


def test_docs_toctree_names_every_page():
    index = read(DOCS / "index.rst")
    pages = sorted(
        str(p.relative_to(DOCS).with_suffix(""))
        for p in DOCS.rglob("*.rst")
        if "_build" not in p.parts and p.name != "index.rst"
    )
    missing = [page for page in pages if f"   {page}\n" not in index]
    assert not missing, f"pages missing from the toctree of docs/index.rst: {missing}"
    for page in ("teams", "performance"):
        assert f"   {page}\n" in index


def rst_files() -> list[Path]:
    return [ROOT / "README.rst"] + sorted(p for p in DOCS.rglob("*.rst") if "_build" not in p.parts)


@pytest.mark.parametrize("path", rst_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_code_block_is_empty(path):
    # Sphinx drops an empty code block without a warning: the example meant for it is lost.
    text = read(path)
    empty = [
        text[: m.start()].count("\n") + 1
        for m in re.finditer(r"^\.\. code-block::[^\n]*\n\n(?!   |\t)", text, re.MULTILINE)
    ]
    assert not empty, f"empty code-block at line(s) {empty}"


def shown_commands(text: str) -> list[tuple[str, str]]:
    """(command, the line shown after it) of each '$ kleio ...' line of console blocks."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.startswith("   $ kleio "):
            command = line[len("   $ ") :].split("  #", 1)[0].strip()
            found.append((command, lines[i + 1].strip() if i + 1 < len(lines) else ""))
    return found


def test_readme_then_tutorial_make_each_trial_once():
    """Issue #8: after the quick start, the tour and then the tutorial run as written, so a
    command that makes a trial is shown again only with the refusal of a completed trial."""
    readme = read(ROOT / "README.rst")
    tour = readme.split("A short tour\n============\n", 1)[1].split("\nLogging from", 1)[0]
    tutorial = read(DOCS / "tutorial.rst")
    seen = {readme_quick_start()[0].split("&&", 1)[1].strip()}
    for command, after in shown_commands(tour) + shown_commands(tutorial):
        if not command.startswith(("kleio python ", "kleio branch ")):
            continue
        if command in seen:
            assert after.startswith("error: trial ") and "is completed" in after, command
        seen.add(command)


@pytest.mark.parametrize("name", existing_command_modules())
def test_command_help_exits_0_with_a_usage_line(name):
    result = subprocess.run(
        [sys.executable, "-m", "kleio", name, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: kleio "), result.stdout[:200]


def test_global_help_lists_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "kleio", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for name, module in COMMANDS.items():
        if name == module or name == "config":
            assert re.search(rf"^  {name}\s", result.stdout, re.MULTILINE), name


@pytest.mark.slow
def test_sphinx_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    if not (DOCS / "teams.rst").exists() or not (DOCS / "performance.rst").exists():
        pytest.skip("docs/teams.rst or docs/performance.rst is not written yet")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- the CLI reference quotes every command's --help verbatim ------------------------------

HELP_WIDTH = "100"


def command_help(name: str) -> str:
    """``kleio NAME --help`` as printed in a terminal of HELP_WIDTH columns."""
    import contextlib
    import io
    import os

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH
    out = io.StringIO()
    try:
        module = importlib.import_module(f"kleio.cli.{COMMANDS[name]}")
        with contextlib.redirect_stdout(out):
            try:
                code = module.main(["--help"], {})  # kleio run prints its own help
            except SystemExit as exit:
                code = exit.code
        assert code == 0, f"kleio {name} --help exits {code}"
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return out.getvalue()


def documented_commands() -> list[str]:
    return sorted(name for name, module in COMMANDS.items() if name == module or name == "config")


def help_block(text: str, name: str) -> re.Match[str] | None:
    """The ``.. code-block:: text`` of docs/reference/cli.rst quoting ``kleio NAME --help``."""
    return re.search(
        rf"(?m)^(\.\. code-block:: text\n\n)((?:   usage: kleio {name}(?: .*)?\n)"
        r"(?:(?:   .*)?\n)*?)(?=\S|\Z)",
        text,
    )


def indented(help_text: str) -> str:
    lines = help_text.rstrip().split("\n")
    return "".join(f"   {line}\n" if line else "\n" for line in lines) + "\n"


@pytest.mark.parametrize("name", documented_commands())
def test_the_cli_reference_quotes_every_option_of_every_command(name):
    """sqlite-utils' rule: the reference cannot drift from --help. Every option any command
    accepts is in docs/reference/cli.rst, in that command's own --help block.
    ``python tests/test_docs.py`` rewrites the blocks from the code."""
    block = help_block(read(REFERENCE / "cli.rst"), name)
    assert block is not None, f"docs/reference/cli.rst quotes no 'kleio {name} --help'"
    assert block.group(2) == indented(command_help(name)), (
        f"the 'kleio {name} --help' block of docs/reference/cli.rst is out of date: "
        "run python tests/test_docs.py"
    )


def write_cli_help() -> None:
    path = REFERENCE / "cli.rst"
    text = read(path)
    for name in documented_commands():
        block = help_block(text, name)
        if block is not None:
            text = text[: block.start(2)] + indented(command_help(name)) + text[block.end(2) :]
    path.write_text(text, encoding="utf-8")


def tree_modules() -> set[str]:
    """Every module and package of src/kleio, dotted (``kleio.__main__`` aside)."""
    src = ROOT / "src"
    found = set()
    for path in (src / "kleio").rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] != "__main__":
            found.add(".".join(parts))
    return found


def test_the_architecture_page_maps_every_module_of_the_tree():
    """docs/architecture.rst's module map matches the tree: no module missing, none gone."""
    text = read(DOCS / "architecture.rst")
    mapped = set(re.findall(r"^   \* - ``(kleio(?:\.\w+)*)``$", text, re.MULTILINE))
    assert sorted(tree_modules() - mapped) == [], "modules missing from the module map"
    assert sorted(mapped - tree_modules()) == [], "the module map names modules that are gone"
    for name in set(re.findall(r":mod:`(kleio(?:\.\w+)*)`", text)):
        assert name in tree_modules(), f"docs/architecture.rst refers to a missing {name}"


if __name__ == "__main__":
    write_cli_help()
