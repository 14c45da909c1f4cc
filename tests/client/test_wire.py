"""The wire protocol (kleio.client): what the logger writes, the runner reads back, however cut."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from kleio import client as wire


def decode(data: bytes, cut: int | None = None) -> list[tuple[str, object]]:
    """Feed ``data`` in one go, or in pieces of ``cut`` bytes; merge what the pieces split."""
    decoder = wire.Decoder()
    pieces = [data] if cut is None else [data[i : i + cut] for i in range(0, len(data), cut)]
    out: list[tuple[str, object]] = []
    for piece in pieces:
        for kind, value in decoder.feed(piece):
            if kind == "statistic" and out and out[-1][0] == "statistic":
                out[-1] = ("statistic", [*out[-1][1], *value])  # type: ignore[misc]
            elif kind == "data" and out and out[-1][0] == "data":
                out[-1] = ("data", out[-1][1] + value)  # type: ignore[operator]
            else:
                out.append((kind, value))
    return out


def artifact(header: dict, chunks: list[bytes]) -> bytes:
    return b"".join(wire.artifact_stream(wire.encode_checked(header), chunks))


def test_encode_is_compact_ascii_json_and_converts_numpy_scalars():
    text = wire.encode(
        {"loss": np.float32(0.5), "n": np.int64(3), "v": np.array([1, 2]), "name": "é\n"}
    )
    assert text == '{"loss":0.5,"n":3,"v":[1,2],"name":"\\u00e9\\n"}'
    assert text.isascii() and "\n" not in text
    assert wire.encode_checked({"a": [1]}) == '{"a":[1]}'
    with pytest.raises(TypeError):
        wire.encode({"a": object()})
    circular: list = []
    circular.append(circular)
    with pytest.raises(ValueError, match="ircular"):
        wire.encode_checked(circular)


def test_records_round_trip_in_order_whatever_the_cut():
    stream = (
        wire.record(wire.STATISTIC, wire.encode({"epoch": 1}))
        + wire.record(wire.STATISTIC, wire.encode({"epoch": 2}))
        + wire.record(wire.METRICS, wire.encode({"metrics": {"loss": "min"}, "primary": "loss"}))
        + artifact({"filename": "w.pt", "metadata": {"epoch": 2}}, [b"ab", b"", b"cde"])
        + wire.record(wire.QUERY, wire.encode({"op": "statistics"}))
        + wire.record(wire.STATISTIC, wire.encode({"epoch": 3}))
    )
    expected = [
        ("statistic", ['{"epoch":1}', '{"epoch":2}']),
        ("metrics", '{"metrics":{"loss":"min"},"primary":"loss"}'),
        ("artifact", {"filename": "w.pt", "metadata": {"epoch": 2}}),
        ("data", b"abcde"),
        ("end", b""),
        ("query", {"op": "statistics"}),
        ("statistic", ['{"epoch":3}']),
    ]
    assert decode(stream) == expected
    for cut in (1, 2, 3, 7, 8, 9, 64):
        assert decode(stream, cut) == expected, cut


def test_only_statistics_take_the_fast_path_and_keep_a_partial_record():
    decoder = wire.Decoder()
    assert list(decoder.feed(b'S{"a":1}\nS{"a":2}\nS{"a"')) == [
        ("statistic", ['{"a":1}', '{"a":2}'])
    ]
    assert list(decoder.feed(b":3}\n")) == [("statistic", ['{"a":3}'])]
    assert list(decoder.feed(b"")) == []


def test_empty_and_large_artifacts():
    assert decode(artifact({"filename": "e"}, [b""])) == [
        ("artifact", {"filename": "e"}),
        ("end", b""),
    ]
    big = bytes(range(256)) * 5000
    chunks = [big[i : i + 70000] for i in range(0, len(big), 70000)]
    assert decode(artifact({"filename": "b"}, chunks), 65536) == [
        ("artifact", {"filename": "b"}),
        ("data", big),
        ("end", b""),
    ]


def test_artifact_bytes_that_look_like_records_are_bytes():
    content = b'\nS{"x":1}\nQ{"op":"statistics"}\n' + wire.END_OF_ARTIFACT
    assert decode(artifact({"filename": "f"}, [content]), 5) == [
        ("artifact", {"filename": "f"}),
        ("data", content),
        ("end", b""),
    ]


def test_hostile_frames():
    # A header or request that is not JSON: the connection cannot be read on, ValueError.
    for bad in (b"A{not json\n", b"Q\xff\xfe\n", b"A\n"):
        with pytest.raises(ValueError):
            list(wire.Decoder().feed(bad))
    # What came before the bad record was handed over first.
    decoder = wire.Decoder()
    seen = []
    with pytest.raises(ValueError):
        for item in decoder.feed(b'S{"a":1}\nM{}\nQ{oops\n'):
            seen.append(item)
    assert seen == [("statistic", ['{"a":1}']), ("metrics", "{}")]
    # Unknown tags (and B, which only ledger files hold) are skipped, not journalled.
    assert decode(b'X{"a":1}\nB{"blob":"x.blob"}\nS{"b":2}\n\n') == [("statistic", ['{"b":2}'])]
    # ...also among statistics, which otherwise take the fast path.
    assert decode(b'S{"a":1}\nX{"a":2}\n\nS{"a":3}\nB{}\n') == [
        ("statistic", ['{"a":1}', '{"a":3}'])
    ]
    # Non-ASCII bytes in a statistic never stop the reader.
    assert decode(b'S{"a":"\xff"}\n') == [("statistic", ['{"a":"\ufffd"}'])]
    # A length announcing more than ever comes: the artifact stays open until the connection
    # closes (the channel then drops its partial file).
    decoder = wire.Decoder()
    items = list(decoder.feed(b'A{"filename":"f"}\n' + (1 << 62).to_bytes(8, "big") + b"xy"))
    assert items == [("artifact", {"filename": "f"}), ("data", b"xy")]
    assert decoder.in_artifact
    # A truncated length waits for its other bytes.
    decoder = wire.Decoder()
    assert list(decoder.feed(b'A{"filename":"f"}\n\0\0\0')) == [("artifact", {"filename": "f"})]
    assert list(decoder.feed(b"\0\0\0\0\0")) == [("end", b"")]
    assert not decoder.in_artifact


def test_reply_round_trip():
    answer = {"found": True, "metadata": {"epoch": 3}, "size": 5}
    reader = io.BytesIO(wire.reply(answer) + b"hello" + b"rest")
    assert wire.read_reply(reader) == (answer, b"hello")
    assert wire.read_reply(io.BytesIO(wire.reply({"statistics": []}))) == ({"statistics": []}, None)
    assert json.loads(wire.reply({"é": 1})) == {"é": 1}
