"""Checkpoints: a file or a directory journalled as one artifact, and restored whole.

A directory travels as one tar archive (metadata ``archive="tar"``). Imported on a program's
first checkpoint call, not with the logger (``tarfile`` is slow to import).
"""

from __future__ import annotations

import os
import tarfile
import tempfile

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import IO, Any

    from kleio.client.logger import KleioLogger


def artifact_name(path: str) -> str:
    """The artifact name a checkpoint of ``path`` is stored under (no trailing separator)."""
    return path.rstrip("/" + os.sep) or path


def save(
    logger: KleioLogger,
    path: str | None,
    step: Any,
    metrics: dict[str, Any] | None,
    primary_metric: tuple[str, str] | str | None,
    metadata: dict[str, Any],
) -> None:
    """What :meth:`~kleio.client.logger.KleioLogger.checkpoint` journals, in that order.

    The primary metric's declaration, then ``metrics`` (with ``step``) as one statistic, then
    the file or directory at ``path`` with metadata ``step`` and ``metadata``.
    """
    if primary_metric is not None:
        if isinstance(primary_metric, str):
            logger.declare_metrics(primary=primary_metric)
        else:
            name, mode = primary_metric
            logger.declare_metrics(primary=name, **{name: mode})
    if metrics:
        stat = dict(metrics)
        if step is not None:
            stat = {"step": step, **stat}
        logger.log_statistic(**stat)
    if path is None:
        return
    info: dict[str, Any] = dict(metadata)
    if step is not None:
        info["step"] = step
    _store(logger, os.fspath(path), info)


def _store(logger: KleioLogger, path: str, info: dict[str, Any]) -> None:
    """Journal the file or directory at ``path`` as an artifact with metadata ``info``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    name = artifact_name(path)
    if os.path.isdir(path):
        with tempfile.TemporaryFile() as archive:
            with tarfile.open(fileobj=archive, mode="w") as tar:
                tar.add(path, arcname=".")
            archive.seek(0)
            logger.log_artifact(name, archive, archive="tar", **info)
    else:
        with open(path, "rb") as source:
            logger.log_artifact(name, source, **info)


def restore(path: str, fileobj: IO[bytes], meta: dict[str, Any]) -> None:
    """Write a checkpoint's bytes back at ``path``: a file rewritten, an archive extracted.

    Raises:
        ValueError: the archive holds a member that would land outside ``path`` (or a link
            or device).
    """
    if meta.get("archive") != "tar":
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        with open(path, "wb") as out:
            out.write(fileobj.read())
        return
    os.makedirs(path, exist_ok=True)
    with tarfile.open(fileobj=fileobj, mode="r") as tar:
        root = os.path.realpath(path)
        for member in tar.getmembers():
            if not stays_inside(root, member):
                raise ValueError(
                    f"load_checkpoint(): the archive of {path!r} holds "
                    f"{member.name!r}, which would land outside it"
                )
        tar.extractall(root)  # noqa: S202 - every member checked above


def stays_inside(root: str, member: Any) -> bool:
    """True if the archive member (a ``tarfile.TarInfo``) extracts to a file or directory
    inside ``root`` (a real path): no ``..`` or absolute name, no link, no device."""
    target = os.path.realpath(os.path.join(root, member.name))
    return (
        (target == root or target.startswith(root + os.sep))
        and not member.issym()
        and not member.islnk()
        and not member.isdev()
    )
