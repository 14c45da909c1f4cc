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

The bytes written and read are :mod:`kleio.client`'s (one ledger file and one connection per
process).
"""

from __future__ import annotations

import _thread
import os
import sys

from kleio.client import (
    BLOB,
    METRICS,
    QUERY,
    STATISTIC,
    artifact_stream,
    encode,
    encode_checked,
    loads,
    read_reply,
    record,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (see below)
if TYPE_CHECKING:  # annotations only: ``typing`` costs milliseconds at a program's start
    from typing import IO, Any, Union

    ArtifactSource = Union[IO[bytes], bytes, bytearray, memoryview]

_CHUNK = 1 << 20
_getpid = os.getpid
_write = os.write

#: Deepest nesting of lists and dicts a value may have (MongoDB refuses documents nested
#: deeper than 100 levels; readers recurse).
MAX_DEPTH = 32
#: Largest encoded statistic, in bytes, unless the runner says otherwise (max_statistic_size).
DEFAULT_MAX_STATISTIC = 1 << 20


def _bad_key(kwargs: dict[str, Any]) -> tuple[str, BaseException | None]:
    for key, value in kwargs.items():
        try:
            encode_checked(value)
        except (TypeError, ValueError, RecursionError) as error:
            return key, error
    return next(iter(kwargs)), None


def _refuse(kwargs: dict[str, Any], call: str, what: str) -> TypeError:
    """The TypeError for a value the encoder refused: circular, too deep, or not JSON-like."""
    key, error = _bad_key(kwargs)
    if isinstance(error, ValueError) and "ircular" in str(error):
        return TypeError(f"{call}: {what} {key!r} refers to itself (a circular reference); "
                         "log a copy without the cycle")
    if _depth(kwargs[key], MAX_DEPTH) > MAX_DEPTH:
        return TypeError(f"{call}: {what} {key!r} is nested more than {MAX_DEPTH} levels "
                         "deep; flatten it (e.g. one key per level)")
    return TypeError(f"{call}: {what} {key!r} is a {type(kwargs[key]).__name__}, which is "
                     "not JSON-like; log numbers, strings, booleans, None, or lists/dicts of "
                     "them")


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of lists and dicts in ``value``, counted up to ``limit + 1``."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            items: Any = item.values()
        elif isinstance(item, (list, tuple)):
            items = item
        else:
            continue
        level += 1
        if level > deepest:
            deepest = level
            if deepest > limit:
                return deepest
        stack.extend((child, level) for child in items)
    return deepest


def _check_odd(kwargs: dict[str, Any], text: str, call: str) -> None:
    """The slow checks, run only when the encoded text may hold what they look for."""
    for key, value in kwargs.items():
        if _depth(value, MAX_DEPTH) > MAX_DEPTH:
            raise TypeError(
                f"{call}: value of {key!r} is nested more than {MAX_DEPTH} levels deep; "
                "flatten it (e.g. one key per level)"
            )
    if "\\ud" in text:
        try:
            import json

            json.dumps(kwargs, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"{call}: a key or value holds a lone surrogate (undecodable text, e.g. a "
                "file name read with surrogateescape); decode it first, e.g. with "
                "errors='replace'"
            ) from None


def _too_large(size: int, limit: int) -> ValueError:
    return ValueError(
        f"log_statistic(): this statistic is {size:,} bytes once encoded, over the limit of "
        f"{limit:,} (setting max_statistic_size); store large values as a file with "
        "log_artifact()"
    )


def _warn(message: str) -> None:
    try:
        sys.stderr.write(f"kleio: warning: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


#: Accepted spellings of a metric mode (kleio.metrics.MODE_ALIASES, not imported: start-up).
_MODES = {"min": "min", "minimize": "min", "minimise": "min", "lower": "min",
          "max": "max", "maximize": "max", "maximise": "max", "higher": "max"}


def _render(values: dict[str, Any]) -> str:
    return " ".join(f"{key}={value!r}" for key, value in values.items())


class KleioLogger:
    """Log statistics and artifacts of the current trial.

    A single instance, :data:`kleio_logger`, is created at import; it connects lazily and
    reconnects after a ``fork`` so every process of a job talks to the runner on its own.
    """

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            # A fork while another thread holds the lock would leave the child's copy locked
            # for ever: every child starts with a fresh lock, its own ledger file and its own
            # connection.
            os.register_at_fork(after_in_child=self._after_fork)

    def _reset(self) -> None:
        # Re-entrant: a signal handler that logs, run while this thread holds the lock in
        # the slow path, must not wait for itself.
        self._lock = _thread.RLock()
        self._pid: int | None = None  # the process the ledger file and socket belong to
        self._fd: int | None = None
        self._base = ""
        self._blobs = 0
        self._sock: Any = None
        try:
            self._max = int(os.environ.get("KLEIO_MAX_STATISTIC_SIZE") or DEFAULT_MAX_STATISTIC)
        except ValueError:
            self._max = DEFAULT_MAX_STATISTIC

    def _after_fork(self) -> None:
        fd = self._fd
        self._reset()
        if fd is not None:  # the parent's file: never write to it from here
            try:
                os.close(fd)
            except OSError:
                pass

    def _drop(self) -> None:
        """Forget a connection whose last message may be partial: the runner discards it."""
        sock = self._sock
        self._sock = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # -- state ------------------------------------------------------------------------------

    @property
    def trial_id(self) -> str | None:
        """The id of the trial this program runs as, or None without kleio."""
        return os.environ.get("KLEIO_TRIAL_ID") or None

    @property
    def active(self) -> bool:
        """True when running under ``kleio`` (calls are journalled, not printed)."""
        return bool(os.environ.get("KLEIO_CHANNEL"))

    def _start(self) -> None:
        """First call in this process: open its own ledger file (or use the socket)."""
        pid = _getpid()
        self._pid, self._fd, self._sock = pid, None, None
        directory = os.environ.get("KLEIO_LEDGER")
        if not directory:
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        for _ in range(8):
            base = f"{pid}-{os.urandom(4).hex()}"
            try:
                self._fd = os.open(os.path.join(directory, base + ".log"), flags, 0o600)
                self._base = base
                return
            except FileExistsError:
                continue
            except OSError as error:
                self._ledger_lost(error)
                return

    def _ledger_lost(self, error: BaseException) -> None:
        _warn(f"cannot write the ledger in {os.environ.get('KLEIO_LEDGER')} ({error}); "
              "this process sends its records to the runner instead")
        # The descriptor stays open: another thread may be writing with it right now, and a
        # number closed here could be reused by a file that write would then land in.
        self._fd = None

    def _append(self, data: bytes) -> bool:
        """Append one record to this process's ledger file; False if it has none (any more)."""
        fd = self._fd
        if fd is None:
            return False
        try:
            written: Any = _write(fd, data)
        except OSError as error:
            written = error
        if written == len(data):
            return True
        self._write_failed(written)
        return False

    def _write_failed(self, written: Any) -> None:
        fd = self._fd
        if isinstance(written, int) and fd is not None:
            # A short write (a full disk): cut the torn record off so the file stays whole.
            try:
                os.ftruncate(fd, os.fstat(fd).st_size - written)
            except OSError:
                pass
            written = OSError("short write: the disk may be full")
        self._ledger_lost(written)

    def _connection(self) -> Any:
        pid = _getpid()
        if self._pid != pid:
            self._start()
        if self._sock is not None:
            return self._sock
        import socket

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            sock.connect(os.environ["KLEIO_CHANNEL"])
        except OSError as error:
            sock.close()
            raise RuntimeError(
                f"kleio: cannot reach the runner at {os.environ['KLEIO_CHANNEL']} ({error}); "
                "was this program started by kleio?"
            ) from None
        from kleio.private import peer_is_same_user  # once per connection

        if not peer_is_same_user(sock):
            sock.close()
            raise RuntimeError(
                f"kleio: the channel {os.environ['KLEIO_CHANNEL']} is served by another user; "
                "refusing to send to it or read from it"
            )
        self._sock = sock
        return sock

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
            raise _refuse(kwargs, "log_statistic()", "value of") from None
        if "\\ud" in text or text.count("[") + text.count("{") > MAX_DEPTH:
            _check_odd(kwargs, text, "log_statistic()")
        if len(text) >= self._max:
            raise _too_large(len(text) + 2, self._max)
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

    def _record(self, data: bytes, printed: str) -> None:
        """Append one record to the ledger, else send it to the runner; print it without kleio.

        ``printed`` is what a program not run by kleio prints (it is only read then).
        """
        with self._lock:
            if self._pid == _getpid():
                if self._append(data):
                    return
            elif not self.active:
                print(f"kleio: {printed}", flush=True)
                return
            else:
                self._start()
                if self._append(data):
                    return
            try:
                self._connection().sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                # The runner dropped this connection (after an error of its own): once more
                # on a new one; if the runner is gone, that says so in one sentence.
                self._drop()
                try:
                    self._connection().sendall(data)
                except BaseException:
                    self._drop()
                    raise
            except BaseException:
                # Interrupted mid-send (a signal handler raising, say): start over on a new
                # connection so no later message is read as the rest of this one.
                self._drop()
                raise

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
        if args:
            raise TypeError("declare_metrics() takes keyword arguments only, e.g. "
                            "declare_metrics(val_loss='min', primary='val_loss')")
        if primary is not None and (not isinstance(primary, str) or not primary):
            raise TypeError("declare_metrics(): primary must be a metric name (a string)")
        if not modes and primary is None:
            raise TypeError("declare_metrics() needs at least one NAME='min' or NAME='max'")
        declared: dict[str, str] = {}
        for name, mode in modes.items():
            found = _MODES.get(mode.strip().lower()) if isinstance(mode, str) else None
            if found is None:
                raise ValueError(f"declare_metrics(): the mode of {name!r} must be 'min' or "
                                 f"'max' (or 'minimize', 'maximize'), not {mode!r}")
            declared[name] = found
        declaration: dict[str, Any] = {"metrics": declared, "primary": primary}
        text = encode_checked(declaration)
        if "\\ud" in text:
            _check_odd(declaration, text, "declare_metrics()")
        shown = " ".join(f"{k}={v}" for k, v in declared.items())
        if primary is not None:
            shown += f" (primary {primary})" if shown else f"primary {primary}"
        self._record(record(METRICS, text), f"metrics {shown}")

    def checkpoint(self, path: str, step: Any = None, metrics: dict[str, Any] | None = None,
                   primary_metric: tuple[str, str] | str | None = None,
                   **metadata: Any) -> None:
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
        if primary_metric is not None:
            if isinstance(primary_metric, str):
                self.declare_metrics(primary=primary_metric)
            else:
                name, mode = primary_metric
                self.declare_metrics(primary=name, **{name: mode})
        if metrics:
            stat = dict(metrics)
            if step is not None:
                stat = {"step": step, **stat}
            self.log_statistic(**stat)
        if path is None:
            return
        path = os.fspath(path)
        name = path.rstrip("/" + os.sep) or path
        info: dict[str, Any] = dict(metadata)
        if step is not None:
            info["step"] = step
        if os.path.isdir(path):
            import tarfile
            import tempfile

            with tempfile.TemporaryFile() as archive:
                with tarfile.open(fileobj=archive, mode="w") as tar:
                    tar.add(path, arcname=".")
                archive.seek(0)
                self.log_artifact(name, archive, archive="tar", **info)
        else:
            with open(path, "rb") as source:
                self.log_artifact(name, source, **info)

    def load_checkpoint(self, path: str, **metadata: Any) -> dict[str, Any] | None:
        """Restore the newest checkpoint stored from ``path`` (matching ``metadata``, e.g.
        ``step=3``) at ``path``: a file is rewritten, a directory extracted whole (into an
        existing directory, over its files). Returns the checkpoint's metadata, or None when
        there is none (and always without kleio).
        """
        path = os.fspath(path)
        found = self.load_artifact(path.rstrip("/" + os.sep) or path, **metadata)
        if found is None:
            return None
        fileobj, meta = found
        if meta.get("archive") == "tar":
            import tarfile

            os.makedirs(path, exist_ok=True)
            with tarfile.open(fileobj=fileobj, mode="r") as tar:
                root = os.path.realpath(path)
                for member in tar.getmembers():
                    target = os.path.realpath(os.path.join(root, member.name))
                    if not (target == root or target.startswith(root + os.sep)) or \
                            member.issym() or member.islnk() or member.isdev():
                        raise ValueError(f"load_checkpoint(): the archive of {path!r} holds "
                                         f"{member.name!r}, which would land outside it")
                tar.extractall(root)  # noqa: S202 - every member checked above
        else:
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
            with open(path, "wb") as out:
                out.write(fileobj.read())
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
        if not isinstance(filename, str) or not filename:
            raise TypeError("log_artifact(): filename must be a non-empty string")
        try:
            header = encode_checked({"filename": filename, "metadata": metadata})
        except (TypeError, ValueError, RecursionError):
            raise _refuse(metadata, "log_artifact()", "metadata") from None
        if "\\ud" in header or header.count("[") + header.count("{") > MAX_DEPTH:
            _check_odd({"filename": filename, **metadata}, header, "log_artifact()")
        chunks = _chunks(fileobj)
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
                with open(unrecorded, "rb") as source:
                    data = source.read()
                os.remove(unrecorded)
                chunks = _chunks(data)
            try:
                send = self._connection().sendall
                for message in artifact_stream(header, chunks):
                    send(message)
            except BaseException:
                self._drop()  # the runner discards the partial artifact with the connection
                raise

    def _artifact_to_ledger(self, filename: str, metadata: dict[str, Any], chunks: Any
                            ) -> str | None:
        """Write the bytes beside the ledger file, then the record.

        Returns None when both are written, or the path of the bytes when the record could
        not be (the ledger was lost meanwhile).

        The record is appended only once the bytes are complete, so a record always has its
        bytes. A program killed half-way leaves a ``.blob`` without record, which is removed.
        """
        import hashlib

        self._blobs += 1
        blob = f"{self._base}-{self._blobs}.blob"
        path = os.path.join(os.environ["KLEIO_LEDGER"], blob)
        digest = hashlib.sha256()
        size = 0
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise OSError(error.errno, f"kleio: cannot store artifact {filename!r} in "
                          f"{os.path.dirname(path)}: {error.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    if chunk:
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
        except BaseException as error:
            try:
                os.remove(path)
            except OSError:
                pass
            if isinstance(error, OSError):
                raise OSError(error.errno, f"kleio: cannot store artifact {filename!r} in "
                              f"{os.path.dirname(path)}: {error.strerror}") from None
            raise
        entry = {"filename": filename, "metadata": metadata, "blob": blob,
                 "sha256": digest.hexdigest(), "size": size}
        if self._append(record(BLOB, encode_checked(entry))):
            return None
        return path

    # -- resume support ---------------------------------------------------------------------

    def _query(self, request: dict[str, Any]) -> tuple[Any, bytes | None]:
        with self._lock:
            try:
                sock = self._connection()
                sock.sendall(record(QUERY, encode_checked(request)))
                reader = sock.makefile("rb")
                try:
                    reply, payload = read_reply(reader)
                finally:
                    reader.close()
            except BaseException:
                self._drop()
                raise
        if isinstance(reply, dict) and reply.get("error"):
            raise RuntimeError(f"kleio: {reply['error']}")
        return reply, payload

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
        reply, payload = self._query(
            {"op": "artifact", "filename": filename, "metadata": metadata}
        )
        if reply.get("found") is False:
            return None
        import io

        return io.BytesIO(payload or b""), dict(reply["metadata"])


def _chunks(source: ArtifactSource) -> list[bytes] | Any:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return [data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK)] or [b""]
    read = getattr(source, "read", None)
    if read is None:
        raise TypeError(
            f"log_artifact(): fileobj must be a binary file object or bytes, "
            f"not {type(source).__name__}"
        )
    first = read(_CHUNK)
    if isinstance(first, str):
        raise TypeError("log_artifact(): fileobj must be opened in binary mode ('rb')")

    def generate() -> Any:
        chunk = first
        while chunk:
            yield chunk
            chunk = read(_CHUNK)

    return generate()


kleio_logger = KleioLogger()

__all__ = ["KleioLogger", "kleio_logger"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit("kleio.client.logger is a library: import kleio_logger from it")
