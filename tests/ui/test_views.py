"""The dashboard's views, one module a page, are all importable from ``kleio.ui.views``
(the path the server and older code use), and each page's module imports on its own."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kleio.ui import comparison, trial_page, trials_table, views

#: Where each name ``kleio.ui.views`` has always offered is defined now.
HOMES = {
    "MAX_PAGE": trials_table,
    "finite": trials_table,
    "row": trials_table,
    "trials_page": trials_table,
    "metric_columns": trials_table,
    "OUTPUT_TAIL": trial_page,
    "MAX_CHARTS": trial_page,
    "LIVE_KINDS": trial_page,
    "trial_detail": trial_page,
    "trial_series": trial_page,
    "output": trial_page,
    "artifacts": trial_page,
    "find_artifact": trial_page,
    "new_events": trial_page,
    "compare": comparison,
}


@pytest.mark.parametrize("name", sorted(HOMES))
def test_every_view_is_still_importable_from_kleio_ui_views(name):
    assert getattr(views, name) is getattr(HOMES[name], name)


def test_the_views_module_offers_exactly_what_it_lists():
    assert sorted(views.__all__) == sorted(
        [*HOMES, "ColumnCache", "PREVIEW_OVER", "DEFAULT_POINTS"]
    )
    for name in views.__all__:
        assert hasattr(views, name), name


@pytest.mark.parametrize(
    "module",
    ["kleio.ui.trials_table", "kleio.ui.trial_page", "kleio.ui.comparison", "kleio.ui.views"],
)
def test_each_page_module_imports_first_in_a_fresh_interpreter(module):
    # The page modules name ColumnCache only for type checking: importing one of them
    # before kleio.ui.views must not run into a circular import.
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
