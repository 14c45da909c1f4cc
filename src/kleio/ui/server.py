"""The dashboard's web server: a Starlette application, served by uvicorn (``kleio ui``).

Read-only and private by default:

* only ``GET`` and ``HEAD`` are answered; every endpoint reads the journal through
  :mod:`kleio.api` and the store's read methods, never a write method;
* on loopback (the default) the ``Host`` header must name a loopback address, so a web page
  elsewhere cannot reach the dashboard through DNS rebinding; with an access token (given
  whenever ``--host`` is), every request must carry it: ``?token=`` once (the server then
  sets an HttpOnly, SameSite=Strict cookie and drops it from the address), the cookie, or
  ``Authorization: Bearer``, compared in constant time;
* every response forbids framing, sniffing and scripts from elsewhere
  (Content-Security-Policy ``default-src 'none'``), and the page builds its DOM from text
  nodes only, so whatever a program printed is shown, never run;
* artifacts are downloaded by the sha256 of an artifact of the trial's lineage, as
  attachments of type ``application/octet-stream``: no path is ever taken from a request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import quote

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from kleio.errors import AmbiguousId, KleioError, TrialNotFound, UsageError
from kleio.ui import views
from kleio.ui.guard import Guard

#: The files the page is made of: name -> media type. Nothing else is served.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "vendor/uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "vendor/uPlot.min.css": "text/css; charset=utf-8",
    "vendor/uPlot.LICENSE": "text/plain; charset=utf-8",
}


def _load_asset(name: str) -> bytes:
    return resources.files("kleio.ui").joinpath("static", *name.split("/")).read_bytes()


def _json_bytes(value: Any) -> bytes:
    try:
        return json.dumps(
            value, allow_nan=False, ensure_ascii=True, separators=(",", ":"), default=str
        ).encode()
    except ValueError:  # a NaN somewhere views.finite did not look: clean the whole value
        return json.dumps(
            _clean(value), allow_nan=False, ensure_ascii=True, separators=(",", ":"), default=str
        ).encode()


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return views.finite(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class Json(JSONResponse):
    def render(self, content: Any) -> bytes:
        return _json_bytes(content)


def _error(status: int, message: str) -> Json:
    return Json({"error": message}, status_code=status, headers={"cache-control": "no-store"})


class Dashboard:
    """The application's state: one read-only journal per worker thread, the column cache."""

    def __init__(
        self, open_journal: Callable[[], Any], *, label: str = "", poll_interval: float = 0.25
    ) -> None:
        self.open_journal = open_journal
        self.label = label
        self.poll_interval = poll_interval
        self.cache = views.ColumnCache(open_journal=open_journal)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._journals: list[Any] = []

    def journal(self) -> Any:
        """This thread's journal (a store is used by one thread at a time)."""
        journal = getattr(self._local, "journal", None)
        if journal is None:
            journal = self.open_journal()
            self._local.journal = journal
            with self._lock:
                self._journals.append(journal)
        return journal

    def close(self) -> None:
        with self._lock:
            journals, self._journals = self._journals, []
        for journal in journals:
            try:
                journal.close()
            except Exception:  # closing at exit must not hide why we exit
                pass


def _ints(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{name} must be a whole number, not {text[:20]!r}") from None


def _optional_int(request: Request, name: str) -> int | None:
    text = request.query_params.get(name)
    return None if text in (None, "") else _ints(request, name, 0)


def _list(request: Request, name: str) -> list[str]:
    out: list[str] = []
    for value in request.query_params.getlist(name):
        out.extend(part for part in value.split(",") if part)
    return out


def create_app(
    open_journal: Callable[[], Any],
    *,
    token: str | None = None,
    loopback: bool = True,
    label: str = "",
    poll_interval: float = 0.25,
) -> Any:
    """The dashboard as an ASGI application.

    Args:
        open_journal: returns a new :class:`kleio.api.Journal` (called once per thread).
        token: the access token every request must carry (None: none needed).
        loopback: refuse requests whose Host header is not a loopback name.
        label: what the page shows as the journal's name (its masked URI).
        poll_interval: seconds between two looks at the journal for live updates.
    """
    state = Dashboard(open_journal, label=label, poll_interval=poll_interval)
    api = Endpoints(state)
    routes = [
        Route("/", page),
        Route("/static/{name:path}", static),
        Route("/api/journal", api.guarded(api.journal_info)),
        Route("/api/trials", api.guarded(api.trials)),
        Route("/api/compare", api.guarded(api.compare)),
        Route("/api/trials/{trial}", api.guarded(api.trial)),
        Route("/api/trials/{trial}/series", api.guarded(api.series)),
        Route("/api/trials/{trial}/output", api.guarded(api.output)),
        Route("/api/trials/{trial}/artifacts", api.guarded(api.artifacts)),
        Route("/api/trials/{trial}/artifacts/{sha256}", api.guarded(api.download)),
        Route("/api/trials/{trial}/live", api.live),
    ]
    app = Starlette(routes=routes)
    app.state.dashboard = state
    return Guard(app, token=token, loopback=loopback)


async def page(request: Request) -> Response:  # noqa: ARG001 - Starlette's signature
    return _asset_response("index.html")


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS or name == "index.html":
        return _error(404, "no such file")
    return _asset_response(name)


class Endpoints:
    """The JSON endpoints of the dashboard: each reads one journal in a worker thread
    (:meth:`guarded`) and returns what :mod:`kleio.ui.views` builds."""

    def __init__(self, state: Dashboard) -> None:
        self.state = state

    def guarded(self, handler: Callable[[Request, Any], Any]) -> Callable[[Request], Any]:
        """An endpoint running ``handler(request, journal)`` in a worker thread: an unknown
        trial is 404, a bad request 400, a journal that cannot be read 503."""
        state = self.state

        async def endpoint(request: Request) -> Response:
            def work() -> Any:
                return handler(request, state.journal())

            try:
                result = await anyio.to_thread.run_sync(work)
            except (TrialNotFound, AmbiguousId) as error:
                return _error(404, str(error))
            except KleioError as error:
                return _error(400 if isinstance(error, UsageError) else 503, str(error))
            if isinstance(result, Response):
                return result
            return Json(result, headers={"cache-control": "no-store"})

        return endpoint

    def journal_info(self, request: Request, journal: Any) -> Any:  # noqa: ARG002
        from kleio import __version__

        return {"label": self.state.label, "version": __version__}

    def trials(self, request: Request, journal: Any) -> Any:
        return views.trials_page(
            journal,
            sort=request.query_params.get("sort") or "-created",
            where=request.query_params.getlist("where"),
            status=_list(request, "status"),
            tags=_list(request, "tag"),
            search=request.query_params.get("q") or "",
            offset=_ints(request, "offset", 0),
            limit=_ints(request, "limit", 50),
        )

    def trial(self, request: Request, journal: Any) -> Any:
        return views.trial_detail(
            journal, journal.trial(request.path_params["trial"]), self.state.cache
        )

    def series(self, request: Request, journal: Any) -> Any:
        found = journal.trial(request.path_params["trial"])
        return views.trial_series(
            journal,
            found,
            self.state.cache,
            ys=_list(request, "y"),
            x=request.query_params.get("x") or None,
            upto=_optional_int(request, "upto"),
            points=max(8, min(_ints(request, "points", views.DEFAULT_POINTS), 20000)),
        )

    def output(self, request: Request, journal: Any) -> Any:
        stream = request.query_params.get("stream") or "stdout"
        if stream not in ("stdout", "stderr"):
            raise UsageError(f"unknown stream {stream[:20]!r}", "use stdout or stderr")
        return views.output(
            journal,
            journal.trial(request.path_params["trial"]),
            stream=stream,
            upto=_optional_int(request, "upto"),
            tail=max(1, min(_ints(request, "tail", views.OUTPUT_TAIL), 100000)),
        )

    def artifacts(self, request: Request, journal: Any) -> Any:
        return views.artifacts(journal.trial(request.path_params["trial"]))

    def download(self, request: Request, journal: Any) -> Any:
        found = journal.trial(request.path_params["trial"])
        sha256 = request.path_params["sha256"]
        item = views.find_artifact(found, sha256)
        if item is None:
            return _error(404, f"trial {found.short_id} has no such artifact")
        try:
            handle = journal.store.open_blob(sha256=sha256)
        except KeyError:
            return _error(
                404,
                f"the bytes of artifact {item['filename']!r} are not in this "
                "journal (its runner may not have synced them yet)",
            )
        return StreamingResponse(
            _chunks(handle),
            media_type="application/octet-stream",
            headers={
                "content-disposition": _attachment(item["filename"]),
                "cache-control": "no-store",
            },
        )

    def compare(self, request: Request, journal: Any) -> Any:
        ids = _list(request, "id")
        if not ids:
            raise UsageError("no trial to compare", "give id=ID&id=ID")
        chosen = [journal.trial(i) for i in dict.fromkeys(ids)][:50]
        return views.compare(
            journal,
            chosen,
            self.state.cache,
            ys=_list(request, "y"),
            x=request.query_params.get("x") or None,
            group_except=_list(request, "group_except"),
        )

    async def live(self, request: Request) -> Response:
        """Server-sent events: the trial's new statistics, output lines and statuses."""
        state = self.state
        try:
            after = _optional_int(request, "after")
            # A browser reconnecting says what it had (the id of the last message): go on
            # from there instead of sending the same events twice.
            last_id = request.headers.get("last-event-id", "")
            if last_id.isdigit():
                after = int(last_id)
            found = await anyio.to_thread.run_sync(
                lambda: state.journal().trial(request.path_params["trial"])
            )
        except (TrialNotFound, AmbiguousId) as error:
            return _error(404, str(error))
        except KleioError as error:
            return _error(400, str(error))
        return StreamingResponse(
            self._events(request, found.id, after),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def _events(self, request: Request, trial_id: str, after: int | None) -> Any:
        """The event stream of :meth:`live`, from ``after`` on, until the page closes."""
        state = self.state
        yield b"retry: 1000\n: connected\n\n"
        quiet = 0.0
        while True:
            events = await anyio.to_thread.run_sync(
                views.new_events, state.journal().store, trial_id, after
            )
            if events:
                after = events[-1]["seq"]
                yield (b"id: %d\nevent: events\ndata: " % after) + _json_bytes(events) + b"\n\n"
                quiet = 0.0
                if len(events) >= 5000:
                    continue  # more are waiting: no pause
            else:
                quiet += state.poll_interval
                if quiet >= 10.0:  # a comment now and then tells a closed page
                    quiet = 0.0
                    yield b": ping\n\n"
            if await request.is_disconnected():
                return
            await anyio.sleep(state.poll_interval)


def _asset_response(name: str) -> Response:
    return Response(
        _load_asset(name), media_type=ASSETS[name], headers={"cache-control": "no-cache"}
    )


async def _chunks(handle: Any, size: int = 1 << 20) -> Any:
    """The bytes of an open blob, read in a worker thread a megabyte at a time."""
    try:
        while True:
            block = await anyio.to_thread.run_sync(handle.read, size)
            if not block:
                return
            yield block
    finally:
        handle.close()


def _attachment(filename: str) -> str:
    """A Content-Disposition naming the file safely (no path, no quote, no control)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1] or "artifact"
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"%;' else "_" for c in base
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(base, safe='')}"
