"""A program's output as ``kleio cat`` and ``kleio tail`` show it: the lines a terminal ends up
showing, and the JSON shape of one line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def output_record(kind: str, event: Any) -> dict[str, Any]:
    """The JSON shape of one output line in ``cat --json`` and ``tail --json``."""
    record = {"stream": kind, "time": event.time, "line": event.data.get("line", "")}
    if event.data.get("partial"):
        record["partial"] = True
    return record


def ended_lines(events: Iterable[Any]) -> Iterator[Any]:
    """Output events as a terminal ends up showing them: a ``partial`` record (the state of
    a line not ended yet, such as a progress bar) is dropped once a later line of the same
    stream ends it; one still unfinished at the end is kept."""
    held: Any = None
    for event in events:
        if event.data.get("partial"):
            held = event
            continue
        held = None
        yield event
    if held is not None:
        yield held
