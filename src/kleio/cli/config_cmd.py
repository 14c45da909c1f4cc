"""``kleio config``: every effective setting, its value and where it came from."""

from __future__ import annotations

from typing import Any

from kleio.cli.common import config_from, emit, parser, print_json, table
from kleio.config import SETTINGS
from kleio.storage import mask_uri


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser("config", "Show every setting, its value and its source (passwords masked).")
    args = p.parse_args(argv)
    config = config_from(flags)
    rows = []
    for setting in SETTINGS:
        value = config.value(setting.name)
        shown = mask_uri(value) if isinstance(value, str) else value
        rows.append(
            {
                "name": setting.name,
                "value": shown,
                "source": config.sources[setting.name],
                "env": setting.env,
            }
        )
    if args.json:
        print_json(rows)
    else:
        emit(
            table(
                ["SETTING", "VALUE", "SOURCE"],
                [[r["name"], str(r["value"]), r["source"]] for r in rows],
                max_last=200,
            )
        )
    return 0
