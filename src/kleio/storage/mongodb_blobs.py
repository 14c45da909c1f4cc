"""Artifacts' bytes in MongoDB: the GridFS bucket ``blobs``, content-addressed by sha256.

``blobs.files`` holds one document per digest (``filename`` = sha256, unique index) and
``blobs.chunks`` the bytes, keyed by a fresh ObjectId per upload. :class:`BlobsMixin` is a
base of :class:`kleio.storage.mongodb.MongoDBStore`.
"""

from __future__ import annotations

import tempfile
from typing import IO, TYPE_CHECKING, Any, cast

import gridfs
from bson import ObjectId

from kleio.storage.base import copy_hashing
from kleio.storage.mongodb_layout import BLOB_BUCKET, guarded

_SPOOL_BYTES = 16 << 20
_READ_CHUNK = 1 << 20


class BlobsMixin:
    """The blob primitives of the MongoDB store (``self._db``, ``self._bucket``)."""

    _db: Any
    _bucket: Any

    if TYPE_CHECKING:  # provided by Store (a stub here would come first in the MRO)

        def has_blob(self, *, sha256: str) -> bool: ...

    @property
    def _blobs(self) -> Any:
        if self._bucket is None:
            self._bucket = gridfs.GridFSBucket(self._db, BLOB_BUCKET)
        return self._bucket

    @guarded
    def _put_blob(self, *, fileobj: IO[bytes]) -> tuple[str, int]:
        # Hash first (into memory, then a temporary file past 16 MB) and upload only unknown
        # content: identical artifacts, e.g. unchanged weights, never cross the network twice.
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
            sha, size = copy_hashing(fileobj, cast(IO[bytes], spool), _READ_CHUNK)
            if self.has_blob(sha256=sha):
                return sha, size
            spool.seek(0)
            # A fresh ObjectId keys the chunks, so a racing upload of the same bytes never
            # touches ours; the unique filename index lets one files document win, and the
            # loser removes only its own chunks. A crash mid-upload leaves unreachable chunks
            # only: a blob is visible once its files document, written last, exists.
            file_id = ObjectId()
            try:
                self._blobs.upload_from_stream_with_id(file_id, sha, spool)
            except gridfs.errors.FileExists:
                self._db[f"{BLOB_BUCKET}.chunks"].delete_many({"files_id": file_id})
        return sha, size

    @guarded
    def _open_blob(self, *, sha256: str) -> IO[bytes]:
        doc = self._db[f"{BLOB_BUCKET}.files"].find_one({"filename": sha256}, {"_id": 1})
        if doc is None:
            raise KeyError(sha256)
        return cast(IO[bytes], self._blobs.open_download_stream(doc["_id"]))

    @guarded
    def _has_blob(self, *, sha256: str) -> bool:
        files = self._db[f"{BLOB_BUCKET}.files"]
        return files.find_one({"filename": sha256}, {"_id": 1}) is not None

    @guarded
    def _delete_blob(self, *, sha256: str) -> int:
        doc = self._db[f"{BLOB_BUCKET}.files"].find_one(
            {"filename": sha256}, {"_id": 1, "length": 1}
        )
        if doc is None:
            return 0
        self._blobs.delete(doc["_id"])
        return int(doc.get("length") or 0)
