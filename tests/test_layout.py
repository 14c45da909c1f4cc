"""Boundaries between layers, checked on the source (STYLE: who may import what)."""

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
