"""``kleio init``: a commented ``kleio.yaml`` and the journal, in one command."""

from __future__ import annotations

import os
import sys
from typing import Any

from kleio.cli.common import config_from, parser, print_json

#: Every line is a comment: the file documents the settings and changes none of them.
TEMPLATE = """\
# kleio settings for this repository (see 'kleio config' for every value and its source).
# Every line is commented out: kleio's defaults apply until you uncomment one.

# The journal: an SQLite file (the default, private to you) or a MongoDB database shared
# by a team, e.g. mongodb://user@host/kleio (put the password in KLEIO_DB, not here).
# db: sqlite://{db_path}

# Metric modes, for ranking (kleio ls --sort, kleio best), diff and the checks. Names kleio
# knows (loss, acc, f1, ...) get a mode without this; 'primary' is the one to rank by.
# metrics: {{val_loss: min, val_acc: max}}

# Thresholds of the checks that watch running trials ('kleio check --list' lists them),
# or 'off' to turn one off:
# checks:
#   diverged: {{factor: 10}}
#   plateau: {{patience: 20}}
#   silent: off

# Checks whose finding stops the program, as 'kleio stop' does (the trial stays resumable):
# stop_on: [nan, diverged]

# Seconds between two heartbeats of a runner (0.05 to 3600):
# heartbeat_interval: 5.0

# Seconds without a heartbeat after which a runner is taken for dead and its trial may be
# taken over (0.01 to 2592000); keep it several times every machine's heartbeat_interval:
# stale_after: 60.0

# Longest delay, in seconds, before an event the program sent is written to the journal
# (0.001 to 60):
# flush_interval: 0.2

# Where events wait while the journal cannot be reached ('kleio sync' replays them); a
# directory on this machine's local disk:
# spool_dir: {spool_dir}

# Host name recorded for this machine's runners (empty: the machine's own name):
# hostname: ""

# Largest size of one logged statistic once encoded as JSON (bytes, or 4MiB, 4MB...; 1024 to
# 16000000); a larger one is refused at the log_statistic call:
# max_statistic_size: 1048576

# Seconds a program asked to stop by 'kleio stop' has after its SIGTERM before SIGKILL
# (0.1 to 3600):
# stop_grace: 10.0
"""


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser(
        "init",
        "Write a commented kleio.yaml at the root of this repository (or this "
        "directory) and create the journal; print where everything is. Running it "
        "again changes nothing.",
    )
    args = p.parse_args(argv)
    from kleio.config import project_config_path
    from kleio.storage import mask_uri, open_store, scheme_of, sqlite_path

    config = config_from(flags)
    path = project_config_path()
    created = not os.path.exists(path)
    if created:
        db_path = sqlite_path(config.db) if scheme_of(config.db) == "sqlite" else "PATH"
        text = TEMPLATE.format(db_path=db_path, spool_dir=config.spool_dir)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    journal_existed = scheme_of(config.db) != "sqlite" or os.path.exists(sqlite_path(config.db))
    with open_store(config.db):
        pass  # opening creates a new journal's tables (and a private SQLite file)
    where = {
        "config": path,
        "config_created": created,
        "journal": mask_uri(config.db),
        "journal_created": not journal_existed,
        "spool_dir": config.spool_dir,
    }
    if args.json:
        print_json(where)
        return 0
    said = "written" if created else "exists, unchanged"
    out = sys.stdout
    out.write(f"settings   {path} ({said})\n")
    out.write(
        f"journal    {where['journal']} ({'created' if where['journal_created'] else 'exists'})\n"
    )
    out.write(f"spool      {where['spool_dir']} (events wait here when the journal is down)\n")
    out.write("next       kleio python train.py  (then: kleio ls, kleio info ID, kleio ui)\n")
    return 0
