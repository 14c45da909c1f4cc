"""A journal file that exists but cannot be read says so, and what to do (review h2 #14).

Tests run as root, whom permissions do not stop: the refusal a user meets is played by
denying read access to the journal in ``os.access``, as the kernel answers that user.
"""

from __future__ import annotations

import os
import sqlite3

import pytest

from kleio.errors import StoreUnavailable
from kleio.storage import open_store
from kleio.storage.base import encode, first_seq


@pytest.fixture
def journal(tmp_path):
    path = tmp_path / "kleio.db"
    open_store("sqlite://" + str(path)).close()
    os.chmod(path, 0)
    yield path
    os.chmod(path, 0o600)


@pytest.fixture
def not_readable(monkeypatch, journal):
    real = os.access

    def access(path, mode, *args, **kwargs):
        if os.fspath(path) == str(journal) and mode & (os.R_OK | os.W_OK):
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    return journal


def test_an_unreadable_journal_names_its_permissions(not_readable):
    with pytest.raises(StoreUnavailable) as caught:
        open_store("sqlite://" + str(not_readable))
    assert str(caught.value) == (
        f"the journal at {not_readable} exists but is not readable by you (mode 000). "
        f"Fix its permissions (chmod u+rw {not_readable}, or ask its owner), or point --db "
        "or KLEIO_DB at another journal."
    )


def test_a_journal_made_unreadable_while_open_says_the_same(journal, monkeypatch):
    os.chmod(journal, 0o600)
    store = open_store("sqlite://" + str(journal))
    try:
        os.chmod(journal, 0)
        monkeypatch.setattr(os, "access", lambda path, mode, *a, **k: False)
        error = store._unavailable("read", sqlite3.OperationalError("unable to open database file"))
        assert "exists but is not readable by you (mode 000)" in str(error)
        error = store._unavailable("write", sqlite3.OperationalError("disk I/O error"))
        assert "is writable" in str(error)  # not a permission problem: the usual hint
    finally:
        store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_journal_as_a_user(journal):
    with pytest.raises(StoreUnavailable, match="not readable by you"):
        open_store("sqlite://" + str(journal))


def test_a_readable_journal_opens_read_only_as_before(journal, monkeypatch):
    os.chmod(journal, 0o600)
    with open_store("sqlite://" + str(journal)) as store:
        store.create_trial(doc={"id": "t", "created_at": 1.0})
        store.append_events(trial_id="t", events=[(first_seq(1), "stdout", 1.0, encode({}))])
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, m, *a, **k: False if m == os.W_OK else real(p, m, *a, **k)
    )
    with open_store("sqlite://" + str(journal)) as store:
        assert store.read_only and store.get_trial(trial_id="t")["id"] == "t"
