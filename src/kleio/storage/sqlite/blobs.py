"""The artifacts of an SQLite journal: content-addressed files beside it, named by sha256."""

from __future__ import annotations

import os

from kleio.storage.base import copy_hashing
from kleio.storage.sqlite.connection import SQLiteBase

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import IO

_CHUNK = 1 << 20


class BlobsMixin(SQLiteBase):
    """Blobs in ``kleio.db.blobs/ab/abcd…``, written under a temporary name, then renamed."""

    def _blob_path(self, sha256: str) -> str:
        return os.path.join(self.blob_dir, sha256[:2], sha256)

    def _put_blob(self, *, fileobj: IO[bytes]) -> tuple[str, int]:
        tmp = os.path.join(self.blob_dir, f".tmp-{os.urandom(16).hex()}")
        try:
            self.modes.make_dir(self.blob_dir)
            fd = self.modes.make_file(tmp)
            with os.fdopen(fd, "wb") as out:
                sha, size = copy_hashing(fileobj, out, _CHUNK)
                out.flush()
                # Durable before it gets its final name: a name promises its content.
                os.fsync(out.fileno())
            final = self._blob_path(sha)
            if os.path.exists(final):
                os.unlink(tmp)
            else:
                self.modes.make_dir(os.path.dirname(final))
                os.replace(tmp, final)
        except BaseException as exc:
            # Never leave a partial file behind, whatever interrupted the copy.
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise self._unavailable("write an artifact to", exc) from None
            raise
        return sha, size

    def _open_blob(self, *, sha256: str) -> IO[bytes]:
        try:
            return open(self._blob_path(sha256), "rb")
        except FileNotFoundError:
            raise KeyError(sha256) from None

    def _has_blob(self, *, sha256: str) -> bool:
        return os.path.isfile(self._blob_path(sha256))

    def _delete_blob(self, *, sha256: str) -> int:
        path = self._blob_path(sha256)
        try:
            size = os.path.getsize(path)
            os.unlink(path)
        except FileNotFoundError:
            return 0
        return int(size)
