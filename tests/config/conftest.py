"""What the configuration tests share: writing the user's configuration file."""

from __future__ import annotations

import os

from kleio.config import user_config_path


def write_user(text):
    path = user_config_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path
