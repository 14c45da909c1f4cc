"""JSON on the start path: CPython's C codec (:mod:`_json`) without the :mod:`json` package.

:mod:`json` imports :mod:`re` (and with it :mod:`enum`, :mod:`functools`,
:mod:`collections`) and compiles patterns at import: together about half a bare interpreter's
start, on every ``kleio run``. The encoder and the scanner :mod:`json` itself uses for
``dumps`` without ``indent`` and for ``loads`` are in :mod:`_json`; this module calls them
with the arguments :mod:`json` would pass, so the text is the same byte for byte (a trial's
id hashes such text). Where :mod:`_json` is missing or differs (another interpreter), the
functions are :mod:`json`'s own.

Errors are :mod:`json`'s: :class:`TypeError` for what cannot be encoded, :class:`ValueError`
for NaN or infinities with ``allow_nan=False``, :class:`json.JSONDecodeError` (a
:class:`ValueError`) for bad text.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


def _default(value: Any) -> Any:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


class _Context:
    """What :func:`_json.make_scanner` reads off a :class:`json.JSONDecoder`."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict[str, str] = {}


def _decode_error(message: str, text: str, position: int) -> ValueError:
    from json import JSONDecodeError

    return JSONDecodeError(message, text, position)


try:
    from _json import encode_basestring, encode_basestring_ascii, make_encoder, make_scanner

    _scan = make_scanner(_Context())  # type: ignore[arg-type]  # duck-typed: read attributes

    def dumps(
        value: Any,
        *,
        sort_keys: bool = False,
        ensure_ascii: bool = True,
        allow_nan: bool = True,
        separators: tuple[str, str] = (", ", ": "),
    ) -> str:
        """:func:`json.dumps` with these arguments (``check_circular`` on, no ``indent``)."""
        encoder = encode_basestring_ascii if ensure_ascii else encode_basestring
        if isinstance(value, str):
            return str(encoder(value))
        item_separator, key_separator = separators
        encode = make_encoder(
            {}, _default, encoder, None, key_separator, item_separator, sort_keys, False, allow_nan
        )
        return "".join(encode(value, 0))

    def loads(text: str | bytes) -> Any:
        """:func:`json.loads` of UTF-8 ``text``."""
        if not isinstance(text, str):
            text = bytes(text).decode("utf-8")
        stripped = text.strip(_WHITESPACE)
        start = len(text) - len(text.lstrip(_WHITESPACE))
        try:
            value, end = _scan(stripped, 0)
        except StopIteration as error:
            raise _decode_error("Expecting value", text, start + error.value) from None
        if end != len(stripped):
            rest = stripped[end:]
            end += len(rest) - len(rest.lstrip(_WHITESPACE))
            raise _decode_error("Extra data", text, start + end)
        return value

    # The arguments above are those of CPython 3.9 to 3.13; check them once, cheaply.
    if dumps(
        {"b": [1, 2.5, None, True], "a": "é"},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ) != '{"a":"é","b":[1,2.5,null,true]}' or loads(' {"a": [1, 2.5, "\\u00e9"]} ') != {
        "a": [1, 2.5, "é"]
    }:
        raise ImportError("_json differs from what kleio.cjson expects")
except (ImportError, TypeError):  # pragma: no cover - another interpreter: json itself
    import json as _stdlib

    def dumps(
        value: Any,
        *,
        sort_keys: bool = False,
        ensure_ascii: bool = True,
        allow_nan: bool = True,
        separators: tuple[str, str] = (", ", ": "),
    ) -> str:
        """:func:`json.dumps` with these arguments."""
        return _stdlib.dumps(
            value,
            sort_keys=sort_keys,
            ensure_ascii=ensure_ascii,
            allow_nan=allow_nan,
            separators=separators,
        )

    def loads(text: str | bytes) -> Any:
        """:func:`json.loads` of UTF-8 ``text``."""
        return _stdlib.loads(text)


__all__ = ["dumps", "loads"]
