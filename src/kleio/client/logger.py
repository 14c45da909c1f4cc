"""The client used inside a program: ``from kleio.client.logger import kleio_logger``.

Under ``kleio`` the runner exports ``KLEIO_LEDGER`` (a private directory on local disk) and
``KLEIO_CHANNEL`` (a Unix-domain socket). Every process of the program appends each call, as
one framed record and with one ``write``, to a file of its own in the ledger directory; the
runner tails those files into the journal (see :mod:`kleio.ledger`). Once a call returns, its
record is in the kernel's hands, so a crash, ``os._exit`` or SIGKILL of the program *or of the
runner* cannot lose it, and a slow or unreachable journal never makes the program wait.
Queries (``statistics()``, ``load_artifact``) go over the socket. If the ledger cannot be
written (a full disk), records go over the socket instead, held by the runner.
No database driver is imported here, and nothing slow at import time.

Without kleio every call prints a one-line rendering and returns, so the same program runs
unchanged with and without the wrapper.

The bytes written and read are :mod:`kleio.client`'s; each process's own ledger file and
connection are :mod:`kleio.client.transport`'s.
"""

from __future__ import annotations

import os
import sys

from kleio.client import (
    METRICS,
    STATISTIC,
    artifact_stream,
    encode,
    encode_checked,
    loads,
    record,
)
from kleio.client.transport import DEFAULT_MAX_STATISTIC as DEFAULT_MAX_STATISTIC
from kleio.client.transport import Transport

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (see below)
if TYPE_CHECKING:  # annotations only: ``typing`` costs milliseconds at a program's start
    from typing import IO, Any

    from kleio.client.artifacts import ArtifactSource

_getpid = os.getpid
_write = os.write  # log_statistic's (Transport._append has its own): a fault test replaces it

#: Deepest nesting of lists and dicts a value may have (MongoDB refuses documents nested
#: deeper than 100 levels; readers recurse).
MAX_DEPTH = 32


def _render(values: dict[str, Any]) -> str:
    return " ".join(f"{key}={value!r}" for key, value in values.items())


class KleioLogger(Transport):
    """Log statistics and artifacts of the current trial.

    A single instance, :data:`kleio_logger`, is created at import; it connects lazily and
    reconnects after a ``fork`` so every process of a job talks to the runner on its own
    (:class:`~kleio.client.transport.Transport`).
    """

    @property
    def trial_id(self) -> str | None:
        """The id of the trial this program runs as, or None without kleio."""
        return os.environ.get("KLEIO_TRIAL_ID") or None

    # -- statistics -------------------------------------------------------------------------

    def log_statistic(self, *args: Any, **kwargs: Any) -> None:
        """Journal one statistic, e.g. ``log_statistic(epoch=3, loss=0.41)``.

        Keys are yours to choose; values must be JSON-like (numbers, strings, booleans, None,
        lists and dicts of those). NumPy and PyTorch scalars and 0-d arrays are converted.

        Raises:
            TypeError: a positional argument was given, no argument at all, or a value is
                not JSON-like or nested deeper than :data:`MAX_DEPTH` (the message names
                its key).
            ValueError: the statistic is larger than ``max_statistic_size`` once encoded
                (1 MiB unless configured), or holds a lone surrogate.
        """
        if args:
            raise TypeError(
                f"log_statistic() takes keyword arguments only, got {len(args)} positional: "
                "name every value, e.g. log_statistic(epoch=3, loss=0.41), so the journal "
                "knows what each number means"
            )
        if not kwargs:
            raise TypeError("log_statistic() needs at least one keyword argument, e.g. loss=0.4")
        try:
            text = encode(kwargs)
        except (TypeError, ValueError, RecursionError):
            from kleio.client.values import refuse

            raise refuse(kwargs, "log_statistic()", "value of") from None
        if "\\ud" in text or text.count("[") + text.count("{") > MAX_DEPTH:
            from kleio.client.values import check_odd

            check_odd(kwargs, text, "log_statistic()")
        if len(text) >= self._max:
            from kleio.client.values import too_large

            raise too_large(len(text) + 2, self._max)
        data = record(STATISTIC, text)
        # Hot path, without the lock: one pid check and one write. Appends of whole records
        # to an O_APPEND file never interleave, so threads need no lock here, and a signal
        # handler that logs while the main thread is inside this call cannot deadlock.
        if self._pid == _getpid():
            fd = self._fd
            if fd is not None:
                try:
                    written: Any = _write(fd, data)
                except OSError as error:
                    written = error
                if written == len(data):
                    return
                with self._lock:
                    if self._fd == fd:
                        self._write_failed(written)
        self._record(data, f"statistic {_render(loads(text))}" if not self.active else "")

    # -- metrics ----------------------------------------------------------------------------

    def declare_metrics(self, *args: Any, primary: str | None = None, **modes: str) -> None:
        """Journal which statistics are metrics and their direction, e.g.
        ``declare_metrics(val_loss="min", val_acc="max", primary="val_acc")``.

        A mode is ``"min"`` or ``"max"`` (``"minimize"``/``"maximize"`` too). ``primary``
        names the metric ``kleio ls`` shows first and ``kleio best`` ranks by. Reading
        commands use these declarations for this trial and its branches (``--metric`` on
        their command line still wins). Calling it again adds to (or changes) earlier
        declarations.

        Raises:
            TypeError: a positional argument, nothing declared, or ``primary`` not a string.
            ValueError: an unknown mode.
        """
        from kleio.client.values import check_odd, metric_declaration

        declaration = metric_declaration(args, primary, modes)
        declared: dict[str, str] = declaration["metrics"]
        text = encode_checked(declaration)
        if "\\ud" in text:
            check_odd(declaration, text, "declare_metrics()")
        shown = " ".join(f"{k}={v}" for k, v in declared.items())
        if primary is not None:
            shown += f" (primary {primary})" if shown else f"primary {primary}"
        self._record(record(METRICS, text), f"metrics {shown}")

    def checkpoint(
        self,
        path: str,
        step: Any = None,
        metrics: dict[str, Any] | None = None,
        primary_metric: tuple[str, str] | str | None = None,
        **metadata: Any,
    ) -> None:
        """Journal a checkpoint in one call (Keepsake's ``experiment.checkpoint``).

        ``checkpoint("ckpt", step=3, metrics={"val_loss": 0.2}, primary_metric=("val_loss",
        "minimize"))`` declares the primary metric (a ``(name, mode)`` pair, or a name whose
        mode is declared elsewhere), logs ``step=3, val_loss=0.2`` as one statistic, and
        stores the file or directory at ``path`` as an artifact named ``path`` with metadata
        ``step`` (and ``metadata``). A directory is stored as one tar archive (metadata
        ``archive="tar"``); :meth:`load_checkpoint` restores it whole. ``path=None`` stores no
        file. Without kleio it prints what it would journal.

        Raises:
            TypeError, ValueError: as :meth:`declare_metrics`, :meth:`log_statistic`,
                :meth:`log_artifact`; FileNotFoundError: ``path`` does not exist.
        """
        from kleio.client.checkpoints import save

        save(self, path, step, metrics, primary_metric, metadata)

    def load_checkpoint(self, path: str, **metadata: Any) -> dict[str, Any] | None:
        """Restore the newest checkpoint stored from ``path`` (matching ``metadata``, e.g.
        ``step=3``) at ``path``: a file is rewritten, a directory extracted whole (into an
        existing directory, over its files). Returns the checkpoint's metadata, or None when
        there is none (and always without kleio).
        """
        from kleio.client.checkpoints import artifact_name, restore

        path = os.fspath(path)
        found = self.load_artifact(artifact_name(path), **metadata)
        if found is None:
            return None
        fileobj, meta = found
        restore(path, fileobj, meta)
        return meta

    # -- artifacts --------------------------------------------------------------------------

    def log_artifact(self, filename: str, fileobj: ArtifactSource, **metadata: Any) -> None:
        """Journal the bytes of a file with metadata, e.g. ``log_artifact("w.pt", f, epoch=3)``.

        ``fileobj`` is a binary file object (read from its current position to its end) or a
        bytes-like object. Identical contents are stored once.

        Raises:
            TypeError: ``filename`` is not a string, ``fileobj`` is not binary, or a metadata
                value is not JSON-like.
        """
        from kleio.client.artifacts import chunks as cut
        from kleio.client.artifacts import header_of, take_back

        header = header_of(filename, metadata)
        chunks = cut(fileobj)
        if not self.active:
            size = sum(len(chunk) for chunk in chunks)
            extra = f" {_render(loads(header)['metadata'])}" if metadata else ""
            print(f"kleio: artifact {filename} ({size} bytes){extra}", flush=True)
            return
        with self._lock:
            if self._pid != _getpid():
                self._start()
            if self._fd is not None:
                unrecorded = self._artifact_to_ledger(filename, metadata, chunks)
                if unrecorded is None:
                    return
                # The ledger took the bytes but refused the record: send them to the runner.
                chunks = take_back(unrecorded)
            try:
                send = self._connection().sendall
                for message in artifact_stream(header, chunks):
                    send(message)
            except BaseException:
                self._drop()  # the runner discards the partial artifact with the connection
                raise

    def _artifact_to_ledger(
        self, filename: str, metadata: dict[str, Any], chunks: Any
    ) -> str | None:
        """Write the bytes beside the ledger file, then the record.

        Returns None when both are written, or the path of the bytes when the record could
        not be (the ledger was lost meanwhile): see :func:`kleio.client.artifacts.to_ledger`.
        """
        from kleio.client.artifacts import to_ledger

        self._blobs += 1
        blob = f"{self._base}-{self._blobs}.blob"
        path = os.path.join(os.environ["KLEIO_LEDGER"], blob)
        if self._append(to_ledger(path, blob, filename, metadata, chunks)):
            return None
        return path

    # -- resume support ---------------------------------------------------------------------

    def statistics(self) -> list[dict[str, Any]]:
        """Return every statistic of this trial's lineage, oldest first.

        A branch sees its parent's statistics up to the cut, then its own. Without kleio the
        list is empty, so a program can always write ``for s in kleio_logger.statistics()``.
        """
        if not self.active:
            return []
        reply, _ = self._query({"op": "statistics"})
        return list(reply["statistics"])

    def load_artifact(
        self, filename: str | None = None, **metadata: Any
    ) -> tuple[IO[bytes], dict[str, Any]] | None:
        """Return ``(fileobj, metadata)`` of the newest artifact of the lineage that matches.

        An artifact matches when its filename equals ``filename`` (if given) and its metadata
        holds every given key with an equal value. Returns None when nothing matches or
        without kleio.
        """
        if not self.active:
            return None
        reply, payload = self._query({"op": "artifact", "filename": filename, "metadata": metadata})
        if reply.get("found") is False:
            return None
        import io

        return io.BytesIO(payload or b""), dict(reply["metadata"])


kleio_logger = KleioLogger()

__all__ = ["KleioLogger", "kleio_logger"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit("kleio.client.logger is a library: import kleio_logger from it")
