"""SHA-256 of data in memory, without loading OpenSSL on every run.

:mod:`hashlib` loads the OpenSSL library at import: about as much work as a bare interpreter
start, on the path of every ``kleio run`` (the trial id, the code snapshot and the package
list each hash a few kilobytes). CPython's own implementation, a module that is always
built, gives the same digest at once. Large streams (artifacts of gigabytes) keep
:mod:`hashlib`, whose OpenSSL code is several times faster per byte.
"""

from __future__ import annotations

try:  # CPython >= 3.12
    from _sha2 import sha256 as _sha256
except ImportError:  # pragma: no cover - depends on the interpreter
    try:  # CPython <= 3.11
        from _sha256 import sha256 as _sha256
    except ImportError:  # another interpreter: the standard way
        from hashlib import sha256 as _sha256


def sha256_hex(data: bytes) -> str:
    """The SHA-256 digest of ``data``, in hexadecimal."""
    return str(_sha256(data).hexdigest())
