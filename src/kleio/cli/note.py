"""``kleio note ID "text"``: attach a note to a trial after its creation."""

from __future__ import annotations

from typing import Any

from kleio.cli.common import emit, parser, print_json, printable, text
from kleio.trial import short_id

#: A note is a few lines for people, not a file.
MAX_NOTE = 10_000


def main(argv: list[str], flags: dict[str, Any]) -> int:
    from kleio.cli.common import store_from
    from kleio.errors import UsageError
    from kleio.redact import redact_message
    from kleio.trial import resolve_trial

    p = parser(
        "note",
        "Set the note of a trial (shown by info, ls --json and exports); "
        "without TEXT print it, with --clear remove it.",
    )
    p.add_argument("id", help="trial id or a unique prefix of it")
    p.add_argument("text", nargs="?", type=text, help="the note (replaces the previous one)")
    p.add_argument("--clear", action="store_true", help="remove the note")
    args = p.parse_args(argv)
    if args.clear and args.text is not None:
        p.error("give TEXT or --clear, not both")
    if args.text is not None and len(args.text) > MAX_NOTE:
        raise UsageError(
            f"the note is {len(args.text)} characters, more than {MAX_NOTE}",
            "keep it short; store long text as an artifact",
        )
    store, _ = store_from(flags)
    with store:
        doc = resolve_trial(store, args.id)
        note = doc.get("note")
        if args.clear or args.text is not None:
            # A note is shown on screens and in CI logs: no secret goes into it.
            note = None if args.clear else redact_message(args.text)
            store.update_trial(trial_id=doc["id"], fields={"note": note})
    if args.json:
        print_json({"id": doc["id"], "note": note})
    elif args.clear or args.text is not None:
        emit(f"trial {short_id(doc['id'])} note {'removed' if note is None else 'set'}\n")
    else:
        # Its lines are kept; an escape sequence in it is shown, not played.
        emit(printable(note or f"trial {short_id(doc['id'])} has no note", lines=True) + "\n")
    return 0
