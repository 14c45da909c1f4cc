"""SQLite backend specifics: pragmas, schema versions, files on disk, several processes."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import re
import sqlite3
import stat
import sys

import pytest

from kleio.errors import SchemaVersionError, StoreUnavailable
from kleio.storage import open_store
from kleio.storage.base import encode, first_seq
from kleio.storage.sqlite import MIGRATIONS, SCHEMA_VERSION, SQLiteStore

WORKERS = 8


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "journal" / "kleio.db")


@pytest.fixture
def sqlite_store(db_path):
    store = SQLiteStore("sqlite://" + db_path)
    yield store
    store.close()


def raw(path):
    return sqlite3.connect(path, isolation_level=None)


def doc(trial_id, **fields):
    return {
        "schema_version": 1,
        "id": trial_id,
        "created_at": 1.0,
        "command": ["x"],
        "status": "new",
        "tags": [],
        "parent": None,
        **fields,
    }


# -- opening --------------------------------------------------------------------------------


def test_creates_the_directory_and_uses_wal(sqlite_store, db_path):
    assert os.path.isfile(db_path)
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn = sqlite_store._db
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000


def test_timeout_is_configurable(db_path):
    with SQLiteStore(db_path, timeout=2.5) as store:
        assert store._db.execute("PRAGMA busy_timeout").fetchone()[0] == 2500


def test_bare_paths_and_uris_name_the_same_file(db_path):
    with open_store(db_path) as store:
        store.create_trial(doc=doc("t1"))
    with open_store("sqlite://" + db_path) as store:
        assert store.get_trial(trial_id="t1") == doc("t1")
        assert isinstance(store, SQLiteStore)
        assert store.uri == "sqlite://" + db_path


def test_unwritable_location_is_store_unavailable(tmp_path):
    # A path under a regular file fails even for root, unlike a chmod'ed directory.
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    path = str(blocker / "sub" / "kleio.db")
    with pytest.raises(StoreUnavailable) as info:
        SQLiteStore("sqlite://" + path)
    message = str(info.value)
    assert message.startswith(f"cannot open the journal at {path} (")
    assert "choose another journal with --db or KLEIO_DB." in message
    assert "Traceback" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores directory modes"
)
def test_read_only_directory_is_store_unavailable(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StoreUnavailable, match="cannot open the journal at"):
            SQLiteStore(str(folder / "kleio.db"))
    finally:
        folder.chmod(0o700)


def test_a_file_that_is_not_a_database_is_store_unavailable(tmp_path):
    path = tmp_path / "kleio.db"
    path.write_bytes(b"this is no sqlite file at all" * 100)
    with pytest.raises(StoreUnavailable, match="kleio.db is not a kleio journal"):
        SQLiteStore(str(path))


def test_using_a_closed_store_is_store_unavailable(db_path):
    store = SQLiteStore(db_path)
    store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        store.get_trial(trial_id="t1")


# -- schema ---------------------------------------------------------------------------------


def test_schema_version_and_migrations_are_recorded(sqlite_store, db_path):
    assert len(MIGRATIONS) == SCHEMA_VERSION
    with raw(db_path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert int(version.fetchone()[0]) == SCHEMA_VERSION
        names = [row[0] for row in conn.execute("SELECT name FROM migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]


def test_reopening_keeps_data_and_does_not_migrate_again(db_path):
    with SQLiteStore(db_path) as store:
        store.create_trial(doc=doc("t1"))
    with SQLiteStore(db_path) as store:
        assert store.get_trial(trial_id="t1") == doc("t1")
    with raw(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM migrations").fetchone()[0] == SCHEMA_VERSION


def test_a_newer_schema_is_refused(db_path):
    SQLiteStore(db_path).close()
    with raw(db_path) as conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    with pytest.raises(SchemaVersionError) as info:
        SQLiteStore(db_path)
    assert str(info.value) == (
        f"the journal at {db_path} was written by a newer kleio "
        f"(schema {SCHEMA_VERSION + 1} > {SCHEMA_VERSION}). "
        "Upgrade kleio on this machine (pip install -U kleio)."
    )
    assert isinstance(info.value, StoreUnavailable)


def test_cached_fields_are_real_columns(sqlite_store, db_path):
    sqlite_store.create_trial(doc=doc("c1", tags=["a"], parent={"id": "p1", "cut": 3}))
    sqlite_store.update_trial(
        trial_id="c1",
        fields={"status": "running", "heartbeat_at": 5.0, "started_at": 4.0, "tags": ["a", "b"]},
    )
    with raw(db_path) as conn:
        row = conn.execute(
            "SELECT status, heartbeat_at, started_at, ended_at, parent_id, tags, created_at"
            " FROM trials WHERE id = 'c1'"
        ).fetchone()
    assert row == ("running", 5.0, 4.0, None, "p1", '["a","b"]', 1.0)


def plan_of(store, call):
    """Run ``call`` and return the query plan of the one SELECT it ran."""
    statements = []
    store._db.set_trace_callback(statements.append)
    try:
        call()
    finally:
        store._db.set_trace_callback(None)
    [sql] = [s for s in statements if s.startswith("SELECT")]
    return " / ".join(row[-1] for row in store._db.execute("EXPLAIN QUERY PLAN " + sql))


needs_bound_trace = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="the trace shows bound values from Python 3.11"
)


@needs_bound_trace
@pytest.mark.parametrize(
    "query",
    [
        {"id_prefix": "abc"},
        {"statuses": ["new", "running"]},
        {"parent_id": "abc"},
        {"sort": "-created_at", "limit": 10},
        {"sort": "id", "limit": 10},
    ],
)
def test_find_trials_is_served_by_indexes(sqlite_store, query):
    plan = plan_of(sqlite_store, lambda: sqlite_store.find_trials(**query))
    assert "INDEX" in plan, plan
    assert not re.search(r"SCAN trials(?! USING)", plan), plan
    assert "TEMP B-TREE" not in plan or "sort" not in query, plan


@needs_bound_trace
@pytest.mark.parametrize(
    "query",
    [
        {"kinds": ["status"], "limit": 1, "reverse": True},
        {"kinds": ["stdout", "stderr"], "after": 5, "limit": 100},
        {"kinds": ["statistic"], "upto": 5},
        {"after": 5, "upto": 9},
    ],
)
def test_read_events_reads_only_what_it_returns(sqlite_store, query):
    # Give t1 a journal, and resolve (and cache) its integer key before tracing.
    sqlite_store.append_events(trial_id="t1", events=[(0, "status", 0.0, "{}")])
    sqlite_store.last_seq(trial_id="t1")
    plan = plan_of(sqlite_store, lambda: sqlite_store.read_events(trial_id="t1", **query))
    # Index ranges merged in order: no scan of the trial's whole journal, no sort.
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    if "kinds" in query:
        assert plan.count("USING INDEX events_kind") == len(query["kinds"]), plan
    last = plan_of(sqlite_store, lambda: sqlite_store.last_seq(trial_id="t1"))
    assert "TEMP B-TREE" not in last, last


@pytest.mark.parametrize("text", ["\udcff", "ab\udcfe", "\ud800"])
def test_undecodable_ids_and_filters_match_nothing(sqlite_store, text):
    # Undecodable argv bytes arrive as lone surrogates, which sqlite3 refuses to bind.
    sqlite_store.create_trial(doc=doc("ab" * 32, tags=["t"]))
    assert sqlite_store.find_trials(id_prefix=text) == []
    assert sqlite_store.find_trials(tags=[text]) == []
    assert sqlite_store.find_trials(parent_id=text) == []
    assert sqlite_store.find_trials(statuses=[text]) == []
    assert sqlite_store.get_trial(trial_id=text) is None
    assert sqlite_store.read_events(trial_id=text) == []
    assert sqlite_store.last_seq(trial_id=text) is None
    assert sqlite_store.count_events(trial_id=text, kind="stdout") == 0


def test_bounds_beyond_64_bits_mean_no_bound(sqlite_store):
    sqlite_store.create_trial(doc=doc("t1"))
    sqlite_store.append_events(trial_id="t1", events=[(i, "stdout", 0.0, "{}") for i in range(3)])
    huge = 10**20
    assert len(sqlite_store.find_trials(limit=huge)) == 1
    assert [e.seq for e in sqlite_store.read_events(trial_id="t1", limit=huge, upto=huge)] == [
        0,
        1,
        2,
    ]
    assert sqlite_store.read_events(trial_id="t1", after=huge) == []
    assert len(sqlite_store.read_events(trial_id="t1", after=-huge, reverse=True)) == 3
    assert sqlite_store.count_events(trial_id="t1", kind="stdout", upto=huge) == 3


# -- blobs ----------------------------------------------------------------------------------


def test_blobs_are_files_beside_the_database(sqlite_store, db_path):
    content = b"some weights"
    digest, size = sqlite_store.put_blob(fileobj=io.BytesIO(content))
    sqlite_store.put_blob(fileobj=io.BytesIO(content))
    assert digest == hashlib.sha256(content).hexdigest()
    blob_dir = db_path + ".blobs"
    path = os.path.join(blob_dir, digest[:2], digest)
    with open(path, "rb") as f:
        assert f.read() == content
    files = [os.path.join(d, name) for d, _, names in os.walk(blob_dir) for name in names]
    assert files == [path]  # stored once, no temporary file left behind


def test_an_interrupted_blob_leaves_no_file(sqlite_store, db_path):
    class Broken(io.BytesIO):
        def read(self, size=-1):
            if self.tell() >= 3:
                raise KeyboardInterrupt
            return super().read(3)

    with pytest.raises(KeyboardInterrupt):
        sqlite_store.put_blob(fileobj=Broken(b"0123456789"))
    assert [names for _, _, names in os.walk(db_path + ".blobs")] == [[]]


def test_unwritable_blob_directory_is_store_unavailable(sqlite_store, db_path):
    with open(db_path + ".blobs", "w") as f:
        f.write("in the way")
    with pytest.raises(StoreUnavailable, match="cannot write an artifact to the journal"):
        sqlite_store.put_blob(fileobj=io.BytesIO(b"x"))


# -- several processes ----------------------------------------------------------------------


def _race_for(path, barrier, results):
    with SQLiteStore(path) as store:
        barrier.wait()
        won = store.try_append(
            trial_id="t1",
            event=(first_seq(1), "status", 1.0, encode({"status": "reserved", "pid": os.getpid()})),
            fields={"status": "reserved", "runner": {"pid": os.getpid()}},
        )
        results.put((os.getpid(), won))


def _open_at_once(path, barrier, results):
    barrier.wait()
    with SQLiteStore(path) as store:
        results.put((os.getpid(), store.create_trial(doc=doc(f"t{os.getpid()}"))))


def _append_many(path, barrier, results, worker):
    with SQLiteStore(path) as store:
        barrier.wait()
        inserted = 0
        for batch in range(20):
            # Each worker owns its seqs on "own", and all of them write the same ones on
            # "shared": every key must land exactly once whoever wins.
            base = first_seq(worker + 1) + batch * 100
            events = [
                (base + i, "statistic", 1.0, encode({"w": worker, "i": i})) for i in range(100)
            ]
            inserted += store.append_events(trial_id="own", events=events)
            shared = [(batch * 100 + i, "stdout", 1.0, encode({"w": worker})) for i in range(100)]
            inserted += store.append_events(trial_id="shared", events=shared)
        results.put((worker, inserted))


def _run(target, *args, extra=None):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(*args, barrier, results, *([n] if extra else [])))
        for n in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    out = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    return out


def test_concurrent_first_opens_migrate_once(db_path):
    out = _run(_open_at_once, db_path)
    assert all(created for _, created in out)
    with SQLiteStore(db_path) as store:
        assert len(store.find_trials()) == WORKERS
    with raw(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM migrations").fetchone()[0] == SCHEMA_VERSION


def test_exactly_one_process_wins_a_reservation_race(db_path):
    with SQLiteStore(db_path) as store:
        store.create_trial(doc=doc("t1"))
    out = _run(_race_for, db_path)
    winners = [pid for pid, won in out if won]
    assert len(winners) == 1
    with SQLiteStore(db_path) as store:
        assert store.get_trial(trial_id="t1")["runner"] == {"pid": winners[0]}
        [event] = store.read_events(trial_id="t1")
        assert event.data["pid"] == winners[0]


def test_concurrent_writers_lose_and_double_nothing(db_path):
    with SQLiteStore(db_path) as store:
        store.create_trial(doc=doc("own"))
        store.create_trial(doc=doc("shared"))
    out = _run(_append_many, db_path, extra=True)
    with SQLiteStore(db_path) as store:
        assert store.count_events(trial_id="own", kind="statistic") == WORKERS * 2000
        assert store.count_events(trial_id="shared", kind="stdout") == 2000
    assert sum(inserted for _, inserted in out) == WORKERS * 2000 + 2000


# -- files on disk: private unless the directory is shared with a group ---------------------


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def modes_under(root):
    found = {root: mode_of(root)}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            found[os.path.join(folder, name)] = mode_of(os.path.join(folder, name))
    return found


@pytest.fixture
def umask():
    """Set the umask for one test (the modes kleio sets must not depend on it)."""
    old = os.umask(0o022)

    def set_to(value):
        os.umask(value)

    yield set_to
    os.umask(old)


def test_a_new_journal_is_private_whatever_the_umask(tmp_path, umask):
    umask(0)
    path = str(tmp_path / "data" / "kleio" / "kleio.db")
    with SQLiteStore(path) as store:
        store.create_trial(doc=doc("t1"))
        store.put_blob(fileobj=io.BytesIO(b"weights"))
        # The WAL and its index exist while the journal is open: they follow the file.
        assert mode_of(path + "-wal") == mode_of(path + "-shm") == 0o600
    found = modes_under(str(tmp_path / "data" / "kleio"))
    assert found.pop(path) == 0o600
    blobs = [p for p in found if ".blobs" in p]
    assert len(blobs) == 3  # the store, one fan-out directory, one blob
    assert {found[p] for p in blobs if os.path.isdir(p)} == {0o700}
    assert {found[p] for p in blobs if os.path.isfile(p)} == {0o600}
    assert found[str(tmp_path / "data" / "kleio")] == 0o700  # the directory kleio created


def test_a_directory_kleio_did_not_create_keeps_its_mode(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    folder.chmod(0o755)
    SQLiteStore(str(folder / "kleio.db")).close()
    assert mode_of(folder) == 0o755
    assert mode_of(folder / "kleio.db") == 0o600


@pytest.mark.skipif(not hasattr(os, "getgroups"), reason="needs POSIX groups")
def test_a_setgid_group_directory_shares_the_journal_with_its_group(tmp_path, umask):
    umask(0o077)  # even a strict umask does not take what the group needs
    team = tmp_path / "team"
    team.mkdir()
    team.chmod(0o2770)
    path = str(team / "kleio.db")
    with SQLiteStore(path) as store:
        store.put_blob(fileobj=io.BytesIO(b"weights"))
        assert mode_of(path + "-wal") == 0o660
    found = modes_under(path + ".blobs")
    assert mode_of(path) == 0o660
    assert {m for p, m in found.items() if os.path.isdir(p)} == {0o2770}
    assert {m for p, m in found.items() if os.path.isfile(p)} == {0o660}
    # A directory kleio creates inside a shared one is shared too.
    SQLiteStore(str(team / "sub" / "kleio.db")).close()
    assert mode_of(team / "sub") == 0o2770 and mode_of(team / "sub" / "kleio.db") == 0o660


def test_a_group_writable_directory_without_setgid_stays_private(tmp_path):
    folder = tmp_path / "g"
    folder.mkdir()
    folder.chmod(0o775)
    SQLiteStore(str(folder / "kleio.db")).close()
    assert mode_of(folder / "kleio.db") == 0o600


def test_files_of_an_older_kleio_lose_the_bits_they_should_not_grant(tmp_path):
    path = str(tmp_path / "kleio.db")
    with SQLiteStore(path) as store:
        store.put_blob(fileobj=io.BytesIO(b"weights"))
    os.chmod(path, 0o644)  # what the umask gave before
    os.chmod(path + ".blobs", 0o755)
    SQLiteStore(path).close()
    assert mode_of(path) == 0o600
    assert mode_of(path + ".blobs") == 0o700  # every blob below is out of others' reach
    team = tmp_path / "team"
    team.mkdir()
    team.chmod(0o2770)
    shared = str(team / "kleio.db")
    SQLiteStore(shared).close()
    os.chmod(shared, 0o666)
    SQLiteStore(shared).close()
    assert mode_of(shared) == 0o660  # the group keeps its access, others lose theirs


def test_side_files_left_read_only_are_made_writable_again(tmp_path):
    path = str(tmp_path / "kleio.db")
    SQLiteStore(path).close()
    holder = raw(path)  # keeps the WAL and its index in place, as another process would
    holder.execute("SELECT count(*) FROM trials").fetchall()
    os.chmod(path, 0o400)  # a read-only open while the journal was read-only made them so
    os.chmod(path + "-wal", 0o400)
    os.chmod(path + "-shm", 0o400)
    os.chmod(path, 0o600)
    try:
        with SQLiteStore(path) as store:
            store.create_trial(doc=doc("t1"))
        assert mode_of(path + "-wal") == mode_of(path + "-shm") == 0o600
    finally:
        holder.close()


class ReadOnly:
    """Make SQLiteStore see journal files as not writable (root may write any file)."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch

    def __enter__(self):
        real = os.access

        def access(path, mode, *args, **kwargs):
            if mode & os.W_OK and str(path).endswith(".db"):
                return False
            return real(path, mode, *args, **kwargs)

        self.monkeypatch.setattr(os, "access", access)

    def __exit__(self, *exc):
        self.monkeypatch.undo()


def test_a_read_only_open_creates_no_file_and_never_blocks_a_later_write(db_path, monkeypatch):
    with SQLiteStore(db_path) as store:
        store.create_trial(doc=doc("t1"))
    before = sorted(os.listdir(os.path.dirname(db_path)))
    assert before == ["kleio.db"]  # closed cleanly: no WAL, no index
    with ReadOnly(monkeypatch), SQLiteStore(db_path) as reader:
        assert reader.read_only
        assert [d["id"] for d in reader.find_trials()] == ["t1"]
        assert sorted(os.listdir(os.path.dirname(db_path))) == before
        with pytest.raises(StoreUnavailable):
            reader.create_trial(doc=doc("t2"))
    assert sorted(os.listdir(os.path.dirname(db_path))) == before
    with SQLiteStore(db_path) as writer:
        assert not writer.read_only
        assert writer.create_trial(doc=doc("t2"))


def test_a_read_only_reader_sees_what_a_writer_journals_later(db_path, monkeypatch):
    with SQLiteStore(db_path) as store:
        store.create_trial(doc=doc("t1"))
    with ReadOnly(monkeypatch):
        reader = SQLiteStore(db_path)  # nobody has the journal open: the file alone is read
    try:
        with SQLiteStore(db_path) as writer:
            writer.append_events(trial_id="t1", events=[(1, "stdout", 1.0, '{"line":"hi"}')])
            # Like 'kleio tail -f' run by someone who may only read the journal.
            assert [e.data for e in reader.read_events(trial_id="t1")] == [{"line": "hi"}]
    finally:
        reader.close()


# -- a damaged journal is reported, and never written into -----------------------------------


def damage(db_path, sql, *params):
    with raw(db_path) as conn:
        conn.execute(sql, params)


def counts(db_path):
    with raw(db_path) as conn:
        return [
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("trials", "events", "trial_keys")
        ]


@pytest.mark.parametrize(
    "damaged",
    [
        "UPDATE trials SET doc = '{#schema_version\":1}' WHERE id = 't1'",
        "UPDATE trials SET doc = CAST(x'7b22ff223a317d' AS TEXT) WHERE id = 't1'",  # not UTF-8
        "UPDATE trials SET tags = '[\"a\"' WHERE id = 't1'",
    ],
)
def test_a_damaged_document_is_one_error_and_nothing_is_written(db_path, damaged):
    with SQLiteStore(db_path) as store:
        store.create_trial(doc=doc("t1"))
        store.create_trial(doc=doc("t2"))
        store.append_events(trial_id="t2", events=[(1, "stdout", 1.0, "{}")])
    damage(db_path, damaged)
    before = counts(db_path)
    with SQLiteStore(db_path) as store:  # opening is fine: reading commands say what is wrong
        if "tags" not in damaged:
            with pytest.raises(StoreUnavailable, match="is damaged: the document of trial 't1'"):
                store.find_trials()
            with pytest.raises(StoreUnavailable, match="damaged"):
                store.get_trial(trial_id="t1")
        for write in (
            lambda: store.create_trial(doc=doc("t3")),
            lambda: store.append_events(trial_id="t2", events=[(2, "stdout", 1.0, "{}")]),
            lambda: store.try_append(trial_id="t2", event=(3, "status", 1.0, "{}")),
            lambda: store.update_trial(trial_id="t2", fields={"status": "running"}),
        ):
            with pytest.raises(StoreUnavailable) as info:
                write()
            assert str(info.value).startswith(f"the journal at {db_path} is damaged")
            assert "Restore it from a backup" in str(info.value)
    assert counts(db_path) == before


def test_a_bit_flipped_journal_file_is_refused_by_readers_and_writers(db_path):
    with SQLiteStore(db_path) as store:
        store.create_trial(doc=doc("t1"))
        store.create_trial(doc=doc("t2"))
    with open(db_path, "rb") as handle:
        data = bytearray(handle.read())
    at = data.index(b'{"schema_version"')
    data[at + 1] ^= 0x01  # '"' becomes '#'
    with open(db_path, "wb") as handle:
        handle.write(data)
    with SQLiteStore(db_path) as store:
        with pytest.raises(StoreUnavailable, match="damaged"):
            store.find_trials()
        with pytest.raises(StoreUnavailable, match="damaged"):
            store.create_trial(doc=doc("t3"))


def test_nan_in_a_document_is_not_damage(db_path):
    with SQLiteStore(db_path) as store:
        store.create_trial(doc=doc("t1", heartbeat_at=float("nan")))
    with SQLiteStore(db_path) as store:  # json_valid refuses NaN; Python's json reads it
        assert store.create_trial(doc=doc("t2"))


def test_damaged_event_data_reads_back_instead_of_failing(db_path):
    with SQLiteStore(db_path) as store:
        store.append_events(
            trial_id="t1",
            events=[(1, "stdout", 1.0, '{"line":"a"}'), (2, "stdout", 1.0, '{"line":"b"}')],
        )
    damage(db_path, "UPDATE events SET data = CAST(x'7b22ff' AS TEXT) WHERE seq = 1")
    with SQLiteStore(db_path) as store:
        first, second = store.read_events(trial_id="t1")
    assert first.data == {"invalid_data": '{"\udcff'} and second.data == {"line": "b"}


def test_a_damaged_schema_version_is_one_error(db_path):
    SQLiteStore(db_path).close()
    damage(db_path, "UPDATE meta SET value = 'x1' WHERE key = 'schema_version'")
    with pytest.raises(StoreUnavailable, match="is damaged: its schema version 'x1'"):
        SQLiteStore(db_path)


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_a_journal_path_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    (tmp_path / "j").mkdir()
    path = tmp_path / "j" / "kleio.db"
    if kind == "fifo":
        os.mkfifo(path)  # SQLite would block on it
    elif kind == "device":
        os.symlink(os.devnull, path)  # SQLite would put kleio.db-wal beside /dev/null
    else:
        path.mkdir()
    with pytest.raises(StoreUnavailable, match="is not a kleio journal"):
        SQLiteStore(str(path))
    assert os.listdir(tmp_path / "j") == ["kleio.db"]


def test_a_journal_from_before_summaries_is_summarized_when_opened(tmp_path):
    from kleio.storage.sqlite import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0][1]:
        conn.execute(statement)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute("INSERT INTO migrations VALUES ('0001_initial', 1.0)")
    doc = {"id": "old", "created_at": 1.0, "project": "demo", "status": "completed"}
    conn.execute(
        "INSERT INTO trials (id, doc, created_at, status) VALUES (?, ?, 1.0, ?)",
        ("old", json.dumps(doc), "completed"),
    )
    conn.execute("INSERT INTO trial_keys (key, id) VALUES (1, 'old')")
    seq = first_seq(1)
    rows = [
        (1, seq + 1, "metrics", 1.0, encode({"metrics": {"acc": "max"}, "primary": "acc"})),
        (1, seq + 2, "statistic", 2.0, encode({"epoch": 1, "acc": 0.5})),
        (1, seq + 3, "statistic", 3.0, encode({"epoch": 2, "acc": 0.7})),
    ]
    conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    with SQLiteStore("sqlite://" + str(path)) as store:
        found = store.read_summaries(trial_ids=["old"])["old"]
        assert found["entries"]["acc"]["max"] == 0.7 and found["primary"] == "acc"
        assert found["runs_ok"] is True  # summarized by the migration, not on the fly
        assert [d["id"] for d in store.find_trials(project="dem")] == ["old"]
        ranked = store.rank_trials(metric="acc", mode=None, default_mode=None, descending=True)
        assert [(d["id"], best) for d, best in ranked] == [("old", 0.7)]
