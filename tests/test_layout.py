"""Boundaries between layers, checked on the source (STYLE: who may import what), and the
tests' layout, which mirrors the package's."""

from __future__ import annotations

import ast
import pathlib
import sys

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "kleio"


def imports_of(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def full_imports_of(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_cli_never_imports_database_drivers():
    for path in (SRC / "cli").glob("*.py"):
        assert not imports_of(path) & {"sqlite3", "pymongo", "gridfs", "bson"}, path


def test_core_never_imports_the_cli_framework():
    for path in SRC.rglob("*.py"):
        if "cli" in path.relative_to(SRC).parts:
            continue
        assert "argparse" not in imports_of(path), path
        if path.name != "__main__.py":
            assert not any(
                m == "kleio.cli" or m.startswith("kleio.cli.") for m in full_imports_of(path)
            ), path


def test_drivers_stay_in_their_backend():
    for path in SRC.rglob("*.py"):
        found = imports_of(path)
        if "pymongo" in found or "gridfs" in found:  # the backend's modules: mongodb*.py
            assert path.stem == "mongodb" or path.stem.startswith("mongodb_"), path
        if "sqlite3" in found:
            assert path.name == "sqlite.py", path


def test_the_client_stays_stdlib_only():
    """kleio.client runs inside the user's program: no driver, no third-party package, and
    of kleio only the wire format, the JSON parser and the private-file checks."""
    allowed = {"kleio.client", "kleio.cjson", "kleio.private", "kleio.errors"}
    for path in (SRC / "client").glob("*.py"):
        for name in full_imports_of(path):
            if name.startswith("kleio"):
                assert name in allowed or name.startswith("kleio.client."), (path, name)
            else:
                assert name.split(".")[0] in sys.stdlib_module_names, (path, name)


def test_cli_commands_never_import_each_other():
    """A command module (one of kleio.cli.COMMANDS) imports no other: what two commands share
    lives in a shared module (kleio.cli.common, .selection, .launch, .leading, .output)."""
    from kleio.cli import COMMANDS

    commands = set(COMMANDS.values())
    for path in (SRC / "cli").glob("*.py"):
        if path.stem not in commands:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            imported: list[str] = []
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module == "kleio.cli":
                imported = [f"kleio.cli.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported = [node.module]
            for name in imported:
                parts = name.split(".")
                if parts[:2] == ["kleio", "cli"] and len(parts) > 2:
                    other = parts[2]
                    assert other not in commands or other == path.stem, (
                        f"kleio.cli.{path.stem} imports the command module {name}"
                    )


def test_the_runners_layers_point_one_way():
    """The ledger is read by the writer, which the I/O thread feeds, never the other way:
    kleio.ledger imports neither kleio.writer nor kleio.channel, kleio.writer not
    kleio.channel (a cycle here would load the run's threads on the runner's start path)."""
    below = {"ledger": ("kleio.writer", "kleio.channel"), "writer": ("kleio.channel",)}
    for package, forbidden in below.items():
        for path in (SRC / package).glob("*.py"):
            for name in full_imports_of(path):
                assert not name.startswith(forbidden), (path, name)


TESTS = pathlib.Path(__file__).resolve().parent

#: Test files (or directories, ending in "/") that test across modules on purpose.
ACROSS_MODULES = {
    "faults/": "the fault suite: real runs killed, starved or locked, whichever module is hit",
    "mongodb/": "the live-server suite: every layer of kleio against a real MongoDB",
    "test_docs.py": "the documentation checked against the whole tree",
    "test_layout.py": "the tree's own layout and import boundaries",
    "test_multihost.py": "two hosts sharing one journal: reservation, runner and sync together",
    "checks/test_docs.py": "the checks' documentation pages against the registered checks",
    "cli/test_analysis.py": "one workflow over ls, best, diff, export and rm, on both backends",
    "cli/test_checkout_config_files.py": "one feature through snapshot, diff and checkout",
    "cli/test_db_option.py": "one option, --db, across every command",
    "cli/test_environment_changes.py": "one feature through snapshot.compare, resume and diff",
    "cli/test_hostile_input.py": "every command against hostile input",
    "cli/test_new_user.py": "what a new user meets first, over several commands and the example",
    "cli/test_progress.py": "progress bars from the program's output through the channel to cat",
    "cli/test_signal_at_reservation.py": "a race between launch, reservation and the runner",
    "client/test_wire.py": "the wire protocol, both ends: the client writes, the channel reads",
    "config/test_loading.py": "kleio.config's own __init__ (load_config), beside its modules",
    "ledger/test_package.py": "kleio.ledger's own __init__ (its names, lazy submodules)",
    "ledger/test_runs.py": "the ledger in real runs: reader, writer and spool together",
    "redact/test_linear_time.py": "one property (linear time) over every module of kleio.redact",
    "storage/test_contract.py": "the Store contract, run on every backend",
    "storage/test_find_artifact.py": "the Store contract of find_artifact, run on every backend",
    "storage/test_summaries.py": "the Store contract of summaries, run on every backend",
    "storage/test_summary_values.py": "the summaries' values and order, run on every backend",
    "ui/test_browser.py": "the dashboard end to end, in a headless browser",
}

#: Test files that belong elsewhere but have not moved yet: where each goes. Moving one means
#: removing its entry here (a stale entry fails the test).
NOT_MOVED_YET = {}


def mirrors_a_module(test_file: pathlib.PurePosixPath, src: pathlib.Path = SRC) -> bool:
    """tests/X/test_Y.py tests kleio/X/Y.py or the package kleio/X/Y/ (X may be empty)."""
    name = test_file.name.removeprefix("test_").removesuffix(".py")
    where = src.joinpath(*test_file.parent.parts)
    return (where / f"{name}.py").is_file() or (where / name / "__init__.py").is_file()


def allowed(test_file: pathlib.PurePosixPath) -> bool:
    listed = {**ACROSS_MODULES, **NOT_MOVED_YET}
    return str(test_file) in listed or any(
        entry.endswith("/") and str(test_file).startswith(entry) for entry in listed
    )


def test_every_test_file_mirrors_a_module_of_the_package():
    """STYLE: tests/ mirrors src/kleio/. A test file of no module is either moved beside the
    module it tests, or listed in ACROSS_MODULES with the reason it tests several."""
    stray = [
        str(relative)
        for path in sorted(TESTS.rglob("test_*.py"))
        if not mirrors_a_module(relative := pathlib.PurePosixPath(path.relative_to(TESTS)))
        and not allowed(relative)
    ]
    assert stray == [], (
        "each test file tests/X/test_Y.py tests the module kleio/X/Y.py or the package "
        f"kleio/X/Y/; move these beside their module, or list them in ACROSS_MODULES: {stray}"
    )


def test_the_layout_allow_lists_hold_no_stale_entry():
    """An entry names a file or directory that exists and does not mirror a module already
    (it moved: its entry goes)."""
    for entry in {**ACROSS_MODULES, **NOT_MOVED_YET}:
        path = TESTS / entry
        assert path.is_dir() if entry.endswith("/") else path.is_file(), entry
        if not entry.endswith("/"):
            assert not mirrors_a_module(pathlib.PurePosixPath(entry)), entry
    assert not set(ACROSS_MODULES) & set(NOT_MOVED_YET)


def test_the_mirror_rule_tells_a_module_from_a_stray():
    assert mirrors_a_module(pathlib.PurePosixPath("test_spool.py"))  # kleio/spool.py
    assert mirrors_a_module(pathlib.PurePosixPath("test_api.py"))  # the package kleio/api/
    assert mirrors_a_module(pathlib.PurePosixPath("snapshot/test_code.py"))
    assert mirrors_a_module(pathlib.PurePosixPath("storage/test_sqlite.py"))  # a subpackage
    assert not mirrors_a_module(pathlib.PurePosixPath("test_misc.py"))
    assert not mirrors_a_module(pathlib.PurePosixPath("snapshot/test_spool.py"))
    assert not allowed(pathlib.PurePosixPath("test_misc.py"))
