"""Storage backends, chosen by URI scheme.

Drivers are imported lazily: opening an SQLite journal never imports pymongo.
"""

from __future__ import annotations

import importlib
import os
import re

from kleio.errors import ConfigError
from kleio.storage.base import Store

#: URI scheme -> (module, class name) of the backend.
BACKENDS: dict[str, tuple[str, str]] = {
    "sqlite": ("kleio.storage.sqlite", "SQLiteStore"),
    "mongodb": ("kleio.storage.mongodb", "MongoDBStore"),
    "mongodb+srv": ("kleio.storage.mongodb", "MongoDBStore"),
}

# The password runs to the *last* '@' of the authority: an unescaped '@' inside a password
# must not leave its tail visible.
_PASSWORD_IN_URI = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^\s/]*)@")


def mask_uri(uri: str) -> str:
    """Return ``uri`` with any password replaced by ``***``."""
    return _PASSWORD_IN_URI.sub(lambda m: m.group("head") + "***@", uri)


def scheme_of(uri: str) -> str:
    """Return the backend scheme of a URI; a bare path means SQLite."""
    if "://" not in uri:
        return "sqlite"
    return uri.split("://", 1)[0].lower()


def sqlite_path(uri: str) -> str:
    """Return the file path named by an SQLite URI or a bare path."""
    path = uri.split("://", 1)[1] if "://" in uri else uri
    return os.path.abspath(os.path.expanduser(path))


def open_store(uri: str) -> Store:
    """Open the store named by ``uri``.

    Raises:
        ConfigError: the scheme is unknown (the message lists the valid ones).
        StoreUnavailable: the store cannot be opened or reached.
    """
    scheme = scheme_of(uri)
    if scheme not in BACKENDS:
        valid = ", ".join(f"{name}://" for name in BACKENDS)
        raise ConfigError(
            f"unknown database scheme {scheme + '://'!r} in {mask_uri(uri)!r}",
            f"use one of {valid}",
        )
    module_name, class_name = BACKENDS[scheme]
    cls = getattr(importlib.import_module(module_name), class_name)
    store: Store = cls(uri)
    return store


__all__ = ["BACKENDS", "Store", "mask_uri", "open_store", "scheme_of", "sqlite_path"]
