"""The ``store`` fixture: one contract suite, every backend.

``mongodb`` is a live server over a real socket: the one named by ``KLEIO_TEST_MONGODB_URI``,
else the nx-27017 wire server the session starts (see ``tests/mongodb/server.py``).
"""

from __future__ import annotations

import pytest

from kleio.storage import open_store
from tests.mongodb.server import live_available

PARAMS = ["sqlite", "mongomock"]
if live_available():
    PARAMS.append(pytest.param("mongodb", marks=pytest.mark.mongodb))


def make_store(kind, tmp_path, request):
    if kind == "sqlite":
        return open_store("sqlite://" + str(tmp_path / "contract.db"))
    if kind == "mongomock":
        pytest.importorskip("mongomock")
        from kleio.storage.mongodb import MongoDBStore
        from tests.storage.test_mongodb import mongomock_client

        return MongoDBStore("mongodb://localhost:27017/kleio_contract", client=mongomock_client())
    if kind == "mongodb":
        from kleio.storage.mongodb import MongoDBStore

        # The database is dropped by mongodb_db_uri with a client of its own: a test may
        # close its store (the fixture must not use a closed one).
        return MongoDBStore(request.getfixturevalue("mongodb_db_uri"))
    raise AssertionError(kind)


@pytest.fixture(params=PARAMS)
def store(request, tmp_path):
    store = make_store(request.param, tmp_path, request)
    yield store
    store.close()
