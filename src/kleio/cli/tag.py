"""``kleio tag ID +NAME -NAME...``: add or remove tags of a trial after its creation."""

from __future__ import annotations

from typing import Any

from kleio.cli.common import check_tag, emit, parser, print_json, printable
from kleio.trial import short_id

USAGE_HINT = "write e.g. 'kleio tag 4eda +baseline -draft' (a bare NAME adds it too)"


def main(argv: list[str], flags: dict[str, Any]) -> int:
    from kleio.cli.common import store_from
    from kleio.errors import UsageError
    from kleio.trial import resolve_trial

    p = parser(
        "tag",
        "Add (+NAME or NAME) or remove (-NAME) tags of a trial; with no change, "
        "print its tags. Tags show in info, ls, exports and filter with --tag.",
    )
    p.add_argument("id", help="trial id or a unique prefix of it")
    p.add_argument(
        "changes",
        nargs="*",
        metavar="+NAME|-NAME",
        help="tags to add (+NAME, or NAME) and to remove (-NAME)",
    )
    given = list(argv)
    if any(token in ("-h", "--help") for token in given):
        p.parse_args(["--help"])
    as_json = "--json" in given
    tokens = [t for t in given if t != "--json"]
    if tokens and tokens[0] == "--":
        tokens = tokens[1:]
    if not tokens or tokens[0].startswith("-"):
        raise UsageError("kleio tag needs a trial id first", USAGE_HINT)
    trial_id, changes = tokens[0], tokens[1:]
    add: list[str] = []
    remove: list[str] = []
    for change in changes:
        removing = change.startswith("-")
        name = change[1:] if change[:1] in "+-" else change
        (remove if removing else add).append(check_tag(name, USAGE_HINT, adding=not removing))
    store, _ = store_from(flags)
    with store:
        doc = resolve_trial(store, trial_id)
        before = list(doc.get("tags") or [])
        tags = sorted((set(before) | set(add)) - set(remove))
        if tags != sorted(before):
            store.update_trial(trial_id=doc["id"], fields={"tags": tags})
    if as_json:
        print_json({"id": doc["id"], "tags": tags})
    else:
        shown = ", ".join(map(printable, tags)) if tags else "(none)"
        emit(f"trial {short_id(doc['id'])} tags: {shown}\n")
    return 0
