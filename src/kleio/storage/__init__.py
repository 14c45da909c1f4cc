"""Storage backends, chosen by URI scheme.

Drivers are imported lazily: opening an SQLite journal never imports pymongo.
"""

from __future__ import annotations

import os
import sys

from kleio.errors import ConfigError
from kleio.storage.base import Store

#: URI scheme -> (module, class name) of the backend.
BACKENDS: dict[str, tuple[str, str]] = {
    "sqlite": ("kleio.storage.sqlite", "SQLiteStore"),
    "mongodb": ("kleio.storage.mongodb", "MongoDBStore"),
    "mongodb+srv": ("kleio.storage.mongodb", "MongoDBStore"),
}

_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
#: What the pattern ``\s`` matches (str.isspace): the ASCII ones, then the others. A test
#: checks the list against ``re`` over every code point; ``re`` itself stays off the start path.
_ASCII_SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_SPACES = _ASCII_SPACES + (
    "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def _first_space(text: str, start: int, end: int, spaces: str) -> int:
    """The index of the first of ``spaces`` in ``text[start:end]``, or -1: one ``str.find``
    per character of ``spaces``, each over a shorter range than the last (at C speed)."""
    found = -1
    for char in spaces:
        index = text.find(char, start, end)
        if index != -1:
            found = end = index
    return found


def mask_uri(uri: str) -> str:
    """Return ``uri`` (or any text holding URIs) with every password replaced by ``***``.

    ``scheme://user:PASSWORD@host``: the password runs to the *last* ``@`` before the next
    whitespace or the next ``scheme://``, so that an unescaped ``@`` or ``/`` inside a
    password (``mongodb://u:pa/ss@host``) cannot leave its tail visible. That rule masks too
    much rather than too little: in ``https://host:8080/@scope`` the port and path go too.

    A scanner, not a regular expression: each character is looked at a bounded number of
    times, so a 200,000-character argument costs milliseconds (the backtracking pattern this
    replaces spent seconds per 100,000 characters).
    """
    if "://" not in uri:
        return uri
    spaces = _ASCII_SPACES if uri.isascii() else _SPACES
    out: list[str] = []
    done = 0  # uri[:done] is already in out
    sep = uri.find("://")
    while sep != -1:
        following = uri.find("://", sep + 3)
        # The scheme: letters, digits, + . - back from '://', starting with a letter. The
        # walk stops at `done`, so no character is walked over twice.
        start = sep
        while start > done and uri[start - 1] in _SCHEME_CHARS:
            start -= 1
        while start < sep and not ("a" <= uri[start].lower() <= "z"):
            start += 1
        # The authority candidate ends at whitespace or where the next URI's scheme begins.
        end = len(uri) if following == -1 else following
        space = _first_space(uri, sep + 3, end, spaces)
        if space != -1:
            end = space
        # The user name: up to the first ':' (no '/', '@' in it).
        colon = sep + 3
        while colon < end and uri[colon] not in ":/@":
            colon += 1
        at = uri.rfind("@", colon, end) if colon < end and uri[colon] == ":" else -1
        if start < sep and at != -1:
            out.append(uri[done : colon + 1])
            out.append("***")
            done = at
        sep = following
    out.append(uri[done:])
    return "".join(out)


def scheme_of(uri: str) -> str:
    """Return the backend scheme of a URI; a bare path means SQLite."""
    if "://" not in uri:
        return "sqlite"
    return uri.split("://", 1)[0].lower()


def sqlite_path(uri: str) -> str:
    """Return the file path named by an SQLite URI or a bare path."""
    path = uri.split("://", 1)[1] if "://" in uri else uri
    return os.path.abspath(os.path.expanduser(path))


def open_existing(uri: str) -> Store:
    """:func:`open_store` for a reader: an SQLite journal that does not exist, or is an empty
    file (which SQLite would take for a new database), is never created.

    Raises:
        NoJournal: there is no SQLite journal at the path.
        ConfigError, StoreUnavailable: as :func:`open_store`.
    """
    if scheme_of(uri) == "sqlite":
        path = sqlite_path(uri)
        try:
            empty = os.path.isfile(path) and os.path.getsize(path) == 0
        except OSError:  # gone since: opening it says what is wrong
            empty = False
        if empty or not os.path.exists(path):
            from kleio.errors import NoJournal

            raise NoJournal(
                f"there is no journal at {path} yet" + (" (the file is empty)" if empty else ""),
                "run a trial first (e.g. 'kleio python train.py'), or point --db or KLEIO_DB "
                "at an existing journal",
            )
    return open_store(uri)


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
    __import__(module_name)  # importlib's own import costs more than this
    cls = getattr(sys.modules[module_name], class_name)
    store: Store = cls(uri)
    return store


__all__ = ["BACKENDS", "Store", "mask_uri", "open_store", "scheme_of", "sqlite_path"]
