"""An artifact's bytes written out, to ``-o FILE`` or to stdout when it is not a terminal:
``kleio artifacts ID NAME`` and ``kleio cat --artifact NAME ID`` (command modules do not
import each other)."""

from __future__ import annotations

import sys
from typing import Any

from kleio.cli.common import human_size, print_json
from kleio.cli.output import open_output


def matching(items: list[dict[str, Any]], name: str | None, conditions: list[Any]) -> list[Any]:
    """The artifacts named ``name`` (any if None) whose metadata satisfies every condition
    (a key missing never does), in the order given."""
    return [
        item
        for item in items
        if (name is None or item["filename"] == name)
        and all(
            c.name in item["metadata"] and c.matches(item["metadata"][c.name]) for c in conditions
        )
    ]


def size_text(count: Any) -> str:
    return human_size(count, "B") if isinstance(count, int) else "-"


def newest(trial: Any, name: str, conditions: list[Any]) -> dict[str, Any]:
    """The newest artifact of ``trial``'s lineage named ``name`` and matching ``conditions``.

    Raises:
        TrialNotFound: there is none (exit code 66).
    """
    from kleio.errors import TrialNotFound

    items = matching(trial.artifacts(), name, conditions)
    if not items:
        raise TrialNotFound(
            f"trial {trial.short_id} has no artifact named {name!r}"
            + (" matching these filters" if conditions else ""),
            f"list them with 'kleio artifacts {trial.short_id}'",
        )
    return items[-1]


def write_out(
    store: Any, item: dict[str, Any], output: str | None, *, as_json: bool = False
) -> int:
    """Write the artifact ``item`` (as :meth:`kleio.api.Trial.artifacts` lists it) to
    ``output``, a file created private (0600), or to stdout; with ``as_json`` print its
    record instead.

    Raises:
        UsageError: no ``output`` and stdout is a terminal, or ``output`` cannot be written.
    """
    from kleio.errors import UsageError

    if as_json:
        print_json(item)
        return 0
    if not output and sys.stdout.isatty():
        raise UsageError(
            "refusing to write an artifact's bytes to a terminal",
            "give -o FILE, or redirect stdout",
        )
    with store.open_blob(sha256=item["sha256"]) as source:
        if output:
            with open_output(output) as out:
                copy(source, out)
            sys.stderr.write(f"wrote {item['filename']} ({size_text(item['size'])}) to {output}\n")
        else:
            copy(source, sys.stdout.buffer)
            sys.stdout.buffer.flush()
    return 0


def copy(source: Any, out: Any) -> None:
    for chunk in iter(lambda: source.read(1 << 20), b""):
        out.write(chunk)
