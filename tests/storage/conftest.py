"""The ``store`` fixture: one contract suite, every backend."""

from __future__ import annotations

import os
import uuid

import pytest

from kleio.storage import open_store

PARAMS = ["sqlite", "mongomock"]
if os.environ.get("KLEIO_TEST_MONGODB_URI"):
    PARAMS.append(pytest.param("mongodb", marks=pytest.mark.mongodb))


def make_store(kind, tmp_path):
    if kind == "sqlite":
        return open_store("sqlite://" + str(tmp_path / "contract.db"))
    if kind == "mongomock":
        pytest.importorskip("mongomock")
        from kleio.storage.mongodb import MongoDBStore
        from tests.storage.test_mongodb import mongomock_client

        return MongoDBStore("mongodb://localhost:27017/kleio_contract", client=mongomock_client())
    if kind == "mongodb":
        base = os.environ["KLEIO_TEST_MONGODB_URI"]
        from kleio.storage.mongodb import MongoDBStore, with_database

        return MongoDBStore(with_database(base, f"kleio_test_{uuid.uuid4().hex[:12]}"))
    raise AssertionError(kind)


@pytest.fixture(params=PARAMS)
def store(request, tmp_path):
    store = make_store(request.param, tmp_path)
    yield store
    if request.param == "mongodb":
        store.drop_database()
    store.close()
