"""``kleio artifacts ID [NAME]``: list a trial's artifacts, or write one out."""

from __future__ import annotations

import os
import sys
from typing import Any

from kleio.cli.artifact_out import matching, newest, size_text, write_out
from kleio.cli.common import emit, parser, print_json, table, text, when
from kleio.trial import short_id


def main(argv: list[str], flags: dict[str, Any]) -> int:
    from kleio.api import Condition
    from kleio.cli.selection import cell, journal_of
    from kleio.errors import UsageError

    p = parser(
        "artifacts",
        "List the artifacts of a trial's lineage (a branch's include its "
        "parent's up to the cut), or write the newest one named NAME to a file.",
    )
    p.add_argument("id", help="trial id or a unique prefix of it")
    p.add_argument("name", nargs="?", type=text, help="write out this artifact (the newest one)")
    p.add_argument(
        "--where",
        action="append",
        type=text,
        default=[],
        metavar="COND",
        help="only artifacts whose metadata satisfies COND, e.g. epoch=3 or "
        "'step>=100' (repeatable)",
    )
    p.add_argument(
        "-o",
        "--output",
        type=text,
        metavar="FILE",
        help="write the artifact to FILE (created private, 0600; default stdout)",
    )
    p.add_argument(
        "--extract",
        type=text,
        metavar="DIR",
        help="extract a directory checkpoint (a tar archive) into DIR",
    )
    args = p.parse_args(argv)
    conditions = [Condition(spec) for spec in args.where]
    if (args.output or args.extract) and args.name is None:
        p.error("give the NAME of the artifact to write out")
    with journal_of(flags, []) as journal:
        trial = journal.trial(args.id)
        if args.name is None:
            items = matching(trial.artifacts(), None, conditions)
            if args.json:
                print_json(items)
            elif not items:
                emit(
                    f"trial {trial.short_id} has no artifacts"
                    f"{' matching these filters' if conditions else ''}\n"
                )
            else:
                emit(
                    table(
                        ["NAME", "SIZE", "TIME", "TRIAL", "METADATA"],
                        [
                            [
                                cell(i["filename"]),
                                size_text(i["size"]),
                                when(i["time"]),
                                short_id(i["trial"])
                                + ("" if i["trial"] == trial.id else " (inherited)"),
                                " ".join(f"{k}={cell(v)}" for k, v in i["metadata"].items()),
                            ]
                            for i in items
                        ],
                        max_last=120,
                    )
                )
            return 0
        item = newest(trial, args.name, conditions)
        if args.extract and not args.json:
            if item["metadata"].get("archive") != "tar":
                raise UsageError(
                    f"artifact {args.name!r} is a file, not a directory archive",
                    "write it with -o FILE instead",
                )
            count = _extract(journal.store, item["sha256"], args.extract)
            sys.stderr.write(f"extracted {count} entries of {args.name} into {args.extract}\n")
            return 0
        return write_out(journal.store, item, args.output, as_json=args.json)
    return 0


def _extract(store: Any, sha256: str, directory: str) -> int:
    """Extract a checkpoint archive into ``directory``; the number of entries extracted.

    The archive is read twice: through once to check every member, then to write them, so an
    archive holding one member that would land outside ``directory`` (a link, a device, a
    ``..`` or absolute name) writes nothing.

    Raises:
        UsageError: such a member, or ``directory`` cannot be made or written.
    """
    import tarfile

    from kleio.client.checkpoints import stays_inside
    from kleio.errors import UsageError

    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise _cannot_extract(directory, error) from None
    root = os.path.realpath(directory)

    def members(tar: Any) -> Any:
        for member in tar:
            if not stays_inside(root, member):
                raise UsageError(
                    f"the archive holds {member.name!r}, which would land outside {directory}",
                    "nothing was extracted",
                )
            yield member

    with store.open_blob(sha256=sha256) as source, tarfile.open(fileobj=source, mode="r|") as tar:
        for _ in members(tar):
            pass
    count = 0
    with store.open_blob(sha256=sha256) as source, tarfile.open(fileobj=source, mode="r|") as tar:
        for member in members(tar):
            try:
                tar.extract(member, root)  # noqa: S202 - checked above
            except OSError as error:
                raise _cannot_extract(directory, error) from None
            count += 1
    return count


def _cannot_extract(directory: str, error: OSError) -> Exception:
    from kleio.cli.common import one_line
    from kleio.errors import UsageError

    if isinstance(error, (FileExistsError, NotADirectoryError)):
        why = "it, or a directory above it, is a file"
    else:
        why = one_line(error.strerror or str(error))
        if error.filename and os.path.abspath(error.filename) != os.path.abspath(directory):
            why += f" ({one_line(str(error.filename))})"
    return UsageError(
        f"cannot extract into {one_line(directory)}: {why}",
        "give --extract a directory you may write to (it is made if missing)",
    )
