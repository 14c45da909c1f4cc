"""``kleio stop ID``: ask a running trial to stop, from any machine sharing the journal."""

from __future__ import annotations

import getpass
import time
from typing import Any

from kleio.cli.common import emit, parser, print_json, stdout_bytes, store_from
from kleio.errors import NotRunning
from kleio.reservation import HELD, display_status, hostname
from kleio.trial import resolve_trial, short_id


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser(
        "stop",
        "Ask a running trial to stop. Its runner sends the program SIGTERM at "
        "its next heartbeat; the trial ends 'suspended' and can be resumed "
        "with 'kleio run ID'.",
    )
    p.add_argument("id", help="trial id or a unique prefix of it")
    p.add_argument("--wait", action="store_true", help="return only once the trial has ended")
    args = p.parse_args(argv)
    store, config = store_from(flags)
    host = hostname(config.hostname)
    stale = config.stale_after
    with store:
        doc = resolve_trial(store, args.id)
        short = short_id(doc["id"])
        status = display_status(doc, host=host, stale_after=stale)
        if status not in HELD:
            hint = (
                "its runner is gone; 'kleio run ID' takes it over"
                if status == "lost"
                else f"'kleio info {short}' shows its history"
            )
            raise NotRunning(f"trial {short} is not running (status {status})", hint)
        try:
            user = getpass.getuser()
        except Exception:  # no user name (containers): the host says enough
            user = None
        request = {"at": time.time(), "host": host, "user": user}
        store.update_trial(trial_id=doc["id"], fields={"stop_requested": request})
        runner = doc.get("runner") or {}
        within = config.heartbeat_interval
        if not args.json:
            emit(
                f"asked trial {short} to stop: its runner on {runner.get('host')} stops it "
                f"within about {within:g} s; resume it later with 'kleio run {short}'\n"
            )
        stdout_bytes().flush()
        while args.wait:
            time.sleep(0.2)
            doc = store.get_trial(trial_id=doc["id"]) or doc
            status = display_status(doc, host=host, stale_after=stale)
            if status not in HELD:
                break
        if args.json:
            print_json(
                {
                    "id": doc["id"],
                    "stop_requested": request,
                    "status": display_status(doc, host=host, stale_after=stale),
                }
            )
        elif args.wait:
            emit(f"trial {short} is {status}\n")
    return 0
