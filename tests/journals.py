"""A journal of one new trial and a store whose writes fail on demand, shared by the tests of
kleio.runner, kleio.spool and ``kleio sync``."""

from __future__ import annotations

from kleio.errors import StoreUnavailable
from kleio.storage import open_store


def one_trial_journal(path):
    """A SQLite journal at ``path`` holding one new trial, ``"t" * 64``."""
    store = open_store("sqlite://" + str(path))
    store.create_trial(
        doc={
            "schema_version": 1,
            "id": "t" * 64,
            "created_at": 1.0,
            "command": ["x"],
            "status": "new",
            "tags": [],
            "parent": None,
        }
    )
    return store


class FlakyStore:
    """Wraps a real store; writes fail while ``down`` is set (a fault-injecting store)."""

    def __init__(self, store, fail_after=0):
        self.store = store
        self.calls = 0
        self.fail_after = fail_after
        self.down = False

    def _check(self):
        self.calls += 1
        if self.down or (self.fail_after and self.calls > self.fail_after):
            raise StoreUnavailable("injected outage")

    def append_events(self, **kwargs):
        self._check()
        return self.store.append_events(**kwargs)

    def update_trial(self, **kwargs):
        self._check()
        return self.store.update_trial(**kwargs)

    def put_blob(self, **kwargs):
        self._check()
        return self.store.put_blob(**kwargs)

    def __getattr__(self, name):
        return getattr(self.store, name)
