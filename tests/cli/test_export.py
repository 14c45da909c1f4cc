"""kleio export: refusals as kleio ls refuses, the exit code of a missing extra, and CSV cells
a spreadsheet cannot run (both backends where the journal is read)."""

from __future__ import annotations

import csv
import importlib.util
import io

from kleio import errors
from kleio.cli.export import csv_cell
from kleio.storage import open_store
from tests.cli.test_ls import kleio, listed, refused, trial_doc  # noqa: F401 - a fixture

HOSTILE = {
    "url": '=HYPERLINK("http://evil.invalid","click")',
    "plus": "+1+2",
    "at": "@SUM(A1)",
    "tab": "\tx",
    "cr": "\r=1",
    "minus": "-2+3",
    "neg": "-0.1",
    "flag": True,
    "off": False,
}


def test_csv_cells():
    assert [csv_cell(v) for v in HOSTILE.values()] == [
        "'" + HOSTILE["url"],
        "'+1+2",
        "'@SUM(A1)",
        "'\tx",
        "'\r=1",
        "'-2+3",
        "-0.1",  # a plain number, an option as typed
        "true",
        "false",
    ]
    assert csv_cell(None) == "" and csv_cell(-1.5) == -1.5 and csv_cell("a=b") == "a=b"


def test_export_quotes_formulas_and_writes_booleans_as_json_does(listed, tmp_path):  # noqa: F811
    with open_store(listed["KLEIO_DB"]) as store:
        store.create_trial(doc=trial_doc("d", 2023, config=HOSTILE, tags=["=cmd"]))
    out = tmp_path / "t.csv"  # a file: text=True output would turn the CR into a newline
    done = kleio(listed, "export", "--where", "id=dddd", "-o", str(out))
    assert done.returncode == 0, done.stderr
    [row] = list(csv.DictReader(io.StringIO(out.read_bytes().decode(), newline="")))
    assert row["url"] == "'" + HOSTILE["url"] and row["at"] == "'@SUM(A1)"
    assert row["tab"] == "'\tx" and row["cr"] == "'\r=1" and row["minus"] == "'-2+3"
    assert row["neg"] == "-0.1" and row["flag"] == "true" and row["off"] == "false"
    assert row["tags"] == "'=cmd"


def test_export_refuses_what_ls_refuses(listed):  # noqa: F811
    refused(kleio(listed, "export", "--sort", "bogus"), "cannot sort by 'bogus'")
    refused(kleio(listed, "export", "--where", "lr<<0.1"), "starts with an operator character")
    assert kleio(listed, "export", "--sort", "-seed").returncode == 0


def test_parquet_without_its_packages_is_a_missing_extra(listed, tmp_path):  # noqa: F811
    if importlib.util.find_spec("pandas") and importlib.util.find_spec("pyarrow"):
        return  # nothing missing here: the refusal cannot be shown
    out = tmp_path / "t.parquet"
    result = kleio(listed, "export", "--format", "parquet", "-o", str(out))
    refused(result, "pip install", code=errors.EXIT_MISSING_EXTRA)
    assert "--format parquet needs" in result.stderr and not out.exists()


def test_an_output_that_cannot_be_written_is_one_usage_error(listed, tmp_path):  # noqa: F811
    refused(kleio(listed, "export", "-o", str(tmp_path / "no" / "x.csv")), "does not exist")
    refused(kleio(listed, "export", "-o", str(tmp_path)), "it is a directory")
    out = tmp_path / "x.jsonl"
    out.write_text("old")
    out.chmod(0o644)
    assert kleio(listed, "export", "--format", "jsonl", "-o", str(out)).returncode == 0
    assert out.stat().st_mode & 0o777 == 0o600 and out.read_text().startswith("{")
