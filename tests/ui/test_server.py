"""The dashboard's JSON endpoints: shapes, paging, filters, downsampling, security, read-only."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.ui.journal import add_trial, log, sweep, trial_id

pytest.importorskip("starlette")
pytest.importorskip("httpx")


def mongomock_opener():
    pytest.importorskip("mongomock")
    from kleio.storage.mongodb import MongoDBStore
    from tests.storage.test_mongodb import mongomock_client

    client = mongomock_client()
    uri = "mongodb://localhost:27017/kleio_ui"
    with MongoDBStore(uri, client=client) as store:
        ids = sweep(store)
    return (lambda: MongoDBStore(uri, client=client)), ids, client, uri


@pytest.fixture(params=["sqlite", "mongomock"])
def backend(request, sqlite_journal, client_for):
    """(client, ids, writer opener) on each backend."""
    if request.param == "sqlite":
        uri, ids = sqlite_journal
        from kleio.storage import open_store

        return client_for(uri), ids, (lambda: open_store(uri))
    opener, ids, client, uri = mongomock_opener()
    from kleio.storage.mongodb import MongoDBStore

    return client_for(None, opener=opener), ids, (lambda: MongoDBStore(uri, client=client))


def test_trials_page_has_the_ls_json_shape_with_options_and_metrics(backend):
    client, ids, _ = backend
    page = client.get("/api/trials").json()
    assert len(page["rows"]) == 4 and page["more"] is False
    row = next(r for r in page["rows"] if r["id"] == ids["lr0.1-s0"])
    for key in (
        "id",
        "short_id",
        "status",
        "command",
        "options",
        "tags",
        "metrics",
        "started_at",
        "duration",
        "parent",
    ):
        assert key in row
    assert row["options"] == {"lr": "0.1", "seed": "0"}
    assert row["metrics"]["loss"]["mode"] == "min"
    assert row["metrics"]["val_acc"]["best"] == pytest.approx(0.5 + 0.04 * 10 * 0.95)
    assert set(page["options"]) == {"lr", "seed"} and set(page["metrics"]) == {"loss", "val_acc"}


def test_trials_page_sorts_by_a_metric_best_first_and_filters(backend):
    client, ids, _ = backend
    rows = client.get("/api/trials", params={"sort": "-val_acc"}).json()["rows"]
    accs = [r["metrics"]["val_acc"]["best"] for r in rows]
    assert accs == sorted(accs, reverse=True)
    rows = client.get("/api/trials", params={"where": "lr<0.3"}).json()["rows"]
    assert {r["id"] for r in rows} == {ids["lr0.1-s0"], ids["lr0.1-s1"]}
    rows = client.get("/api/trials", params={"q": ids["lr0.5-s1"][:9]}).json()["rows"]
    assert [r["id"] for r in rows] == [ids["lr0.5-s1"]]
    rows = client.get("/api/trials", params={"q": "SEED=1"}).json()["rows"]
    assert len(rows) == 2
    assert client.get("/api/trials", params={"status": "running"}).json()["rows"] == []


def test_trials_page_pages_with_offset_and_tells_when_more_follow(backend):
    client, ids, _ = backend
    first = client.get("/api/trials", params={"limit": 3}).json()
    second = client.get("/api/trials", params={"limit": 3, "offset": 3}).json()
    assert first["more"] is True and second["more"] is False
    assert len(first["rows"]) == 3 and len(second["rows"]) == 1
    assert {r["id"] for r in first["rows"] + second["rows"]} == set(ids.values())


def test_bad_filters_are_one_clear_error(backend):
    client, _, _ = backend
    response = client.get("/api/trials", params={"where": "lr<"})
    assert response.status_code == 400
    assert "cannot read the condition" in response.json()["error"]
    assert client.get("/api/trials", params={"limit": "x"}).status_code == 400
    response = client.get("/api/trials/ffffffffff")
    assert response.status_code == 404 and "no trial matches" in response.json()["error"]


def test_trial_detail_and_series_with_lineage(backend):
    client, ids, open_writer = backend
    parent = ids["lr0.1-s0"]
    with open_writer() as store:
        # The branch inherits the parent's first 5 epochs (seqs 1<<32 + 1..5), then logs its own.
        child = add_trial(
            store,
            "branch",
            options={"lr": 0.05, "seed": 0},
            stats=[{"epoch": e, "loss": 0.01 * e} for e in (6, 7)],
            parent=(parent, (1 << 32) + 5),
        )
    detail = client.get(f"/api/trials/{child[:8]}").json()
    assert detail["id"] == child and detail["ancestors"] == [{"id": parent, "cut": (1 << 32) + 5}]
    assert client.get(f"/api/trials/{parent}").json()["children"] == [child]
    assert detail["code"]["commit"] == "0" * 40 and detail["env"]["python"] == "3.11.7"
    series = client.get(f"/api/trials/{child}/series", params={"y": "loss"}).json()
    assert series["x"] == "epoch" and series["count"] == 7
    assert series["series"]["loss"]["x"] == [1, 2, 3, 4, 5, 6, 7]
    assert series["series"]["loss"]["y"][-2:] == [0.06, 0.07]
    everything = client.get(f"/api/trials/{child}/series").json()
    assert set(everything["series"]) == {"loss", "val_acc"}  # every numeric key but x
    assert everything["metrics"]["loss"]["best"] == 0.06


def test_series_are_downsampled_on_the_server_keeping_extremes(backend):
    client, _, open_writer = backend
    stats = [{"step": i, "loss": (5.0 if i == 2777 else 1.0 / (i + 1))} for i in range(6000)]
    with open_writer() as store:
        tid = add_trial(store, "long", stats=stats)
    series = client.get(f"/api/trials/{tid}/series", params={"y": "loss", "points": 400}).json()
    loss = series["series"]["loss"]
    assert series["x"] == "step" and loss["points"] == 6000
    assert 100 <= len(loss["x"]) <= 400
    assert 5.0 in loss["y"] and loss["x"][0] == 0 and loss["x"][-1] == 5999
    assert loss["x"] == sorted(loss["x"])


def test_series_and_output_read_up_to_the_seq_the_page_shows_then_follow(backend):
    client, _, open_writer = backend
    with open_writer() as store:
        tid = add_trial(
            store, "live", stats=[{"step": 1, "loss": 1.0}], status="running", stdout=["first"]
        )
    detail = client.get(f"/api/trials/{tid}").json()
    with open_writer() as store:
        log(store, tid, {"step": 2, "loss": 0.5})
        log(store, tid, {"line": "second"}, kind="stdout")
    upto = detail["seq"]
    shown = client.get(f"/api/trials/{tid}/series", params={"upto": upto}).json()
    assert shown["series"]["loss"]["y"] == [1.0]
    lines = client.get(f"/api/trials/{tid}/output", params={"upto": upto}).json()["lines"]
    assert [line["line"] for line in lines] == ["first"]
    from kleio.ui.views import new_events

    with open_writer() as store:
        events = new_events(store, tid, upto)
    assert [(e["kind"], e.get("line") or e.get("data")) for e in events] == [
        ("statistic", {"step": 2, "loss": 0.5}),
        ("stdout", "second"),
    ]
    later = client.get(f"/api/trials/{tid}/series").json()
    assert later["series"]["loss"]["y"] == [1.0, 0.5]  # the cached columns read only the new


def test_live_endpoint_streams_new_events_as_server_sent_events(sqlite_journal, client_for):
    uri, ids = sqlite_journal
    client = client_for(uri)
    tid = ids["lr0.5-s0"]
    seq = client.get(f"/api/trials/{tid}").json()["seq"]
    first = (1 << 32) + 1
    with client.stream("GET", f"/api/trials/{tid}/live", params={"after": first}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        received = b""
        for chunk in response.iter_bytes():
            received += chunk
            if b"event: events" in received and received.endswith(b"\n\n"):
                break
    assert b"retry: 1000" in received
    assert b'"kind":"statistic"' in received and b'"epoch":2' in received
    assert b'"epoch":1,' not in received  # after the first statistic only
    assert seq is not None


def test_output_and_artifacts_and_download(backend):
    client, ids, _ = backend
    tid = ids["lr0.5-s1"]
    out = client.get(f"/api/trials/{tid}/output", params={"tail": 3}).json()
    losses = [(1.0 / (e + 1)) * 1.5 + 0.01 for e in (8, 9, 10)]
    assert [line["line"] for line in out["lines"]] == [
        f"epoch {e} loss {v:.3f}" for e, v in zip((8, 9, 10), losses)
    ]
    assert out["total"] == 10
    assert client.get(f"/api/trials/{tid}/output", params={"stream": "x"}).status_code == 400
    items = client.get(f"/api/trials/{tid}/artifacts").json()
    assert [(a["filename"], a["size"], a["metadata"]) for a in items] == [
        ("model.txt", 14, {"epoch": 10})
    ]
    response = client.get(f"/api/trials/{tid}/artifacts/{items[0]['sha256']}")
    assert response.status_code == 200 and response.content == b"weights lr=0.5"
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith('attachment; filename="model.txt"')


def test_download_refuses_paths_and_blobs_of_other_trials(backend):
    client, ids, open_writer = backend
    tid = ids["lr0.1-s0"]
    other = client.get(f"/api/trials/{ids['lr0.5-s0']}/artifacts").json()[0]["sha256"]
    with open_writer() as store:
        secret, _ = store.put_blob(fileobj=__import__("io").BytesIO(b"not an artifact"))
    for name in (
        other,
        secret,
        "../../../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "0" * 64,
        "%2e%2e/kleio.db",
    ):
        response = client.get(f"/api/trials/{tid}/artifacts/{name}")
        assert response.status_code == 404, name
        assert b"root:" not in response.content and b"not an artifact" not in response.content
    for name in (
        "../app.js",
        "..%2Fserver.py",
        "vendor/../../server.py",
        "/etc/passwd",
        "index.html",
    ):
        assert client.get(f"/static/{name}").status_code == 404, name
    assert client.get("/static/app.js").status_code == 200


def test_hostile_names_and_output_arrive_as_json_text(backend):
    client, _, open_writer = backend
    hostile = '<img src=x onerror=alert(1)>"</script>'
    with open_writer() as store:
        tid = add_trial(
            store,
            "hostile",
            options={"name": hostile},
            stats=[
                {"epoch": 1, "loss": float("nan")},
                {"epoch": 2, "loss": float("inf")},
                {"epoch": 3, "loss": 1.0},
            ],
            stdout=[hostile],
            tags=[hostile],
            artifacts=[(f"../../{hostile}.bin", b"x", {})],
        )
    page = client.get("/api/trials", params={"q": "onerror"})
    assert page.status_code == 200 and page.json()["rows"][0]["options"]["name"] == hostile
    series = client.get(f"/api/trials/{tid}/series", params={"y": "loss"}).json()
    assert series["series"]["loss"]["y"] == [1.0]  # NaN and infinity are not plotted
    row = page.json()["rows"][0]
    assert row["metrics"]["loss"]["last"] == 1.0
    items = client.get(f"/api/trials/{tid}/artifacts").json()
    response = client.get(f"/api/trials/{tid}/artifacts/{items[0]['sha256']}")
    disposition = response.headers["content-disposition"]
    assert "/" not in disposition.split(";")[1] and "<" not in disposition.split(";")[1]


def test_compare_overlays_trials_and_averages_groups(backend):
    client, ids, _ = backend
    chosen = [ids[k] for k in ("lr0.1-s0", "lr0.1-s1", "lr0.5-s0", "lr0.5-s1")]
    plain = client.get("/api/compare", params={"id": chosen, "y": "val_acc"}).json()
    assert plain["differing"] == ["lr", "seed"] and plain["x"] == "epoch"
    assert len(plain["charts"]["val_acc"]) == 4
    assert plain["charts"]["val_acc"][0]["label"].startswith(chosen[0][:7] + " lr=0.1 seed=0")
    grouped = client.get(
        "/api/compare", params={"id": ",".join(chosen), "group_except": "seed"}
    ).json()
    assert [g["n"] for g in grouped["groups"]] == [2, 2]
    curve = grouped["charts"]["loss"][0]
    assert curve["label"] == "lr=0.1 (n=2)" and len(curve["x"]) == 10
    assert curve["y"][0] == pytest.approx(((1 / 2) * 1.1 + (1 / 2) * 1.1 + 0.01) / 2)
    assert curve["upper"][0] - curve["y"][0] == pytest.approx(0.01 / 2**0.5)
    mean = grouped["groups"][0]["metrics"]["val_acc"]["best_mean"]
    assert mean == pytest.approx(0.5 + 0.4 * 0.95 + 0.0025)
    assert client.get("/api/compare").status_code == 400


# -- security ------------------------------------------------------------------------------


def test_only_get_and_head_are_answered(sqlite_journal, client_for):
    client = client_for(sqlite_journal[0])
    for method in ("post", "put", "delete", "patch"):
        response = getattr(client, method)("/api/trials")
        assert response.status_code == 405 and "read-only" in response.text
    assert client.head("/").status_code == 200


def test_loopback_server_refuses_other_host_headers(sqlite_journal, client_for):
    client = client_for(sqlite_journal[0])
    assert client.get("/api/trials").status_code == 200
    assert client.get("/api/trials", headers={"host": "localhost:8765"}).status_code == 200
    assert client.get("/api/trials", headers={"host": "[::1]:8765"}).status_code == 200
    for host in ("evil.example:8765", "127.0.0.1.evil.example", "attacker"):
        response = client.get("/api/trials", headers={"host": host})
        assert response.status_code == 403, host


def test_a_token_is_required_on_every_request(sqlite_journal, client_for):
    client = client_for(sqlite_journal[0], token="s3cret-token", loopback=False)
    for path in ("/", "/static/app.js", "/api/trials", "/api/journal"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "access token" in response.text
    assert client.get("/api/trials", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert (
        client.get("/api/trials", headers={"authorization": "Bearer s3cret-token"}).status_code
        == 200
    )
    # ?token= once: a cookie for the rest, and the token leaves the address.
    response = client.get("/?token=s3cret-token", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/api/trials").status_code == 200  # the client kept the cookie
    for asked, location in (
        ("/%2F%2Fevil.example/?token=s3cret-token", "/"),
        ("/?token=s3cret-token&x=%0d%0aSet-Cookie:%20a", "/?x=%0D%0ASet-Cookie%3A+a"),
    ):
        response = client.get(asked, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == location
    client.cookies.clear()
    assert client.get("/api/trials?token=s3cret-tokeX").status_code == 401


def test_token_comparison_is_constant_time(monkeypatch):
    import hmac

    from kleio.ui import guard as server

    calls = []
    original = hmac.compare_digest
    monkeypatch.setattr(
        server.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or original(a, b)
    )
    guard = server.Guard(None, token="abc", loopback=False)
    assert guard._valid("abc") and not guard._valid("abd") and not guard._valid("")
    assert len(calls) == 3


def test_every_response_carries_the_security_headers(sqlite_journal, client_for):
    client = client_for(sqlite_journal[0])
    for path in ("/", "/api/trials", "/static/app.js", "/api/trials/zzzz"):
        headers = client.get(path).headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"


def test_the_page_and_its_assets_need_no_network():
    from importlib import resources

    from kleio.ui.server import ASSETS

    for name in ASSETS:
        text = resources.files("kleio.ui").joinpath("static", *name.split("/")).read_text()
        if name.endswith((".html", ".css")) or name == "app.js":
            assert "http://" not in text and "https://" not in text, name
    license_text = resources.files("kleio.ui").joinpath("static/vendor/uPlot.LICENSE")
    assert "MIT" in license_text.read_text()


# -- read-only -----------------------------------------------------------------------------


def _digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_the_dashboard_never_writes_the_journal(sqlite_journal, client_for):
    uri, ids = sqlite_journal
    path = uri[len("sqlite://") :]
    from kleio.storage import open_store

    with open_store(uri) as store:  # a checkpoint: the journal's content is in its main file
        store.read_events(trial_id=ids["lr0.1-s0"])
    before = _digest(path)
    blobs_before = sorted(os.listdir(path + ".blobs"))
    client = client_for(uri)
    tid = ids["lr0.1-s0"]
    sha = client.get(f"/api/trials/{tid}/artifacts").json()[0]["sha256"]
    for url in (
        "/",
        "/api/journal",
        "/api/trials",
        "/api/trials?sort=-val_acc&where=lr<1",
        f"/api/trials/{tid}",
        f"/api/trials/{tid}/series",
        f"/api/trials/{tid}/output?stream=stderr",
        f"/api/trials/{tid}/artifacts",
        f"/api/trials/{tid}/artifacts/{sha}",
        f"/api/compare?id={tid}&id={ids['lr0.5-s0']}&group_except=seed",
    ):
        assert client.get(url).status_code == 200, url
    client.close()
    with open_store(uri) as store:
        assert len(store.find_trials()) == 4
    assert _digest(path) == before
    assert sorted(os.listdir(path + ".blobs")) == blobs_before


def test_the_read_only_store_refuses_every_write():
    from kleio.ui.readonly import ReadOnlyStore

    class Store:
        def get_trial(self, *, trial_id):
            return {"id": trial_id}

    store = ReadOnlyStore(Store())
    assert store.get_trial(trial_id="a") == {"id": "a"}
    for name in (
        "create_trial",
        "update_trial",
        "try_append",
        "append_events",
        "put_blob",
        "drop_database",
        "_write",
    ):
        with pytest.raises(PermissionError, match="only reads"):
            getattr(store, name)


def test_every_public_store_method_is_classified_as_a_read_or_a_write():
    """A store method added later must be placed: the dashboard's store refused the reads
    the summaries brought until they were listed (every trials page failed)."""
    from kleio.storage.base import Store
    from kleio.ui.readonly import READ_METHODS, WRITE_METHODS

    public = {name for name in dir(Store) if not name.startswith("_")}
    assert public - READ_METHODS - WRITE_METHODS == set()
    assert READ_METHODS.isdisjoint(WRITE_METHODS)


def test_a_journal_that_does_not_exist_is_refused_not_created(tmp_path):
    from kleio.errors import StoreUnavailable
    from kleio.ui.readonly import ReadOnlyJournal

    path = tmp_path / "nowhere" / "kleio.db"
    with pytest.raises(StoreUnavailable, match="there is no journal at"):
        ReadOnlyJournal("sqlite://" + str(path)).store  # noqa: B018
    assert not path.exists() and not path.parent.exists()


def test_trial_ids_are_resolved_by_prefix(backend):
    client, ids, _ = backend
    tid = ids["lr0.1-s1"]
    assert client.get(f"/api/trials/{tid[:6]}").json()["id"] == tid
    assert trial_id("lr0.1-s1") == tid


def test_a_long_trial_is_drawn_from_a_preview_while_it_is_read_whole(
    sqlite_journal, client_for, monkeypatch
):
    # SQLite only: mongomock answers each of the preview's few hundred range queries by
    # scanning every event in Python (a real MongoDB server uses its indexes).
    from kleio.storage import open_store
    from kleio.ui import views
    from tests.ui.conftest import wait_for

    client = client_for(sqlite_journal[0])

    def open_writer():
        return open_store(sqlite_journal[0])

    monkeypatch.setattr(views, "PREVIEW_OVER", 1000)
    stats = [{"step": i, "loss": 1.0 / (i + 1)} for i in range(3000)]
    with open_writer() as store:
        tid = add_trial(store, "preview", stats=stats)
    detail = client.get(f"/api/trials/{tid}").json()
    assert detail["metrics_complete"] is False and detail["metrics"] == {}
    first = client.get(f"/api/trials/{tid}/series", params={"y": "loss"}).json()
    if not first["complete"]:  # the background read may already be done
        preview = first["series"]["loss"]
        assert first["count"] == 3000 and 100 < len(preview["x"]) < 3000
        assert preview["x"] == sorted(preview["x"]) and preview["x"][0] == 0
    full = wait_for(
        lambda: (lambda r: r if r["complete"] else None)(
            client.get(f"/api/trials/{tid}/series", params={"y": "loss"}).json()
        ),
        timeout=60,
        what="the full read",
    )
    assert (
        full["series"]["loss"]["points"] == 3000 and full["metrics"]["loss"]["best"] == 1.0 / 3000
    )
    assert client.get(f"/api/trials/{tid}").json()["metrics"]["loss"]["last"] == 1.0 / 3000


def test_websockets_are_refused_before_any_check():
    import asyncio

    from kleio.ui.guard import Guard

    sent = []

    async def send(message):
        sent.append(message)

    async def app(*args):
        raise AssertionError("the application was reached")

    def call():  # in a thread of its own: Playwright may keep a loop in this one
        asyncio.run(
            Guard(app, token="t", loopback=False)({"type": "websocket", "path": "/"}, None, send)
        )

    import threading

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(timeout=30)
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_a_progress_bars_partial_line_shows_until_the_line_ends(backend):
    client, ids, open_writer = backend
    tid = ids["lr0.5-s1"]
    writer = open_writer()
    try:
        log(writer, tid, {"line": "10%", "partial": True}, kind="stdout")
        shown = client.get(f"/api/trials/{tid}/output", params={"tail": 2}).json()["lines"]
        assert shown[-1]["line"] == "10%" and shown[-1]["partial"] is True  # still drawing
        log(writer, tid, {"line": "60%", "partial": True}, {"line": "100%"}, kind="stdout")
        shown = client.get(f"/api/trials/{tid}/output", params={"tail": 3}).json()["lines"]
        assert [line["line"] for line in shown][-1] == "100%"
        assert not any(line.get("partial") for line in shown)  # superseded: not listed
    finally:
        writer.close()
