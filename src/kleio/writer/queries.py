"""The program's questions to its runner, answered from the journal (resume support).

``statistics``: every statistic of the trial's lineage; ``artifact``: the newest artifact of
the lineage matching a filename and metadata, its bytes sent after the answer's line.
"""

from __future__ import annotations

from kleio.client import reply as encode_reply

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    import _socket
    from typing import Any

    from kleio.storage.base import Store


def answer(store: Store, trial_id: str, request: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """``(the answer, an open binary file of the bytes that follow it or None)``."""
    op = request.get("op")
    if op == "statistics":
        stats = [e.data for e in store.iter_lineage_events(trial_id=trial_id, kinds=("statistic",))]
        return {"statistics": stats}, None
    if op == "artifact":
        event = store.find_artifact(
            trial_id=trial_id,
            filename=request.get("filename"),
            metadata=request.get("metadata") or {},
        )
        if event is None:
            return {"found": False}, None
        match = event.data
        handle = store.open_blob(sha256=match["sha256"])
        return {
            "found": True,
            "filename": match["filename"],
            "metadata": match.get("metadata") or {},
            "size": match["size"],
        }, handle
    return {"error": f"unknown query {op!r}"}, None


def send(conn: _socket.socket, request: dict[str, Any], store: Store, trial_id: str) -> None:
    """Answer ``request`` on ``conn``; a failed query is an answer with an ``error``."""
    try:
        reply, payload = answer(store, trial_id, request)
    except Exception as error:
        reply, payload = {"error": f"query failed: {error}"}, None
    try:
        conn.sendall(encode_reply(reply))
        if payload is not None:
            with payload:
                for chunk in iter(lambda: payload.read(1 << 20), b""):
                    conn.sendall(chunk)
    except OSError:
        pass
