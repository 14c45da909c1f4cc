"""kleio.client.checkpoints: how a checkpoint's file or directory is restored."""

from __future__ import annotations

import io
import tarfile

import pytest

from kleio.client.checkpoints import artifact_name, restore


def archive(**members: bytes) -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name.replace("__", "/"))
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    data.seek(0)
    return data


def test_artifact_name_drops_a_trailing_separator():
    assert artifact_name("ckpt/") == "ckpt"
    assert artifact_name("/") == "/"


def test_restore_rewrites_a_file_and_extracts_a_directory(tmp_path):
    target = tmp_path / "new" / "w.pt"
    restore(str(target), io.BytesIO(b"weights"), {})
    assert target.read_bytes() == b"weights"
    restore(str(tmp_path / "ck"), archive(a=b"1", sub__b=b"2"), {"archive": "tar"})
    assert (tmp_path / "ck" / "sub" / "b").read_bytes() == b"2"


def test_restore_refuses_a_member_outside_the_directory(tmp_path):
    with pytest.raises(ValueError, match="would land outside it"):
        restore(str(tmp_path / "ck"), archive(**{"..__evil": b"x"}), {"archive": "tar"})
    assert not (tmp_path / "evil").exists()
