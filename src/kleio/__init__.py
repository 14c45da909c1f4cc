"""kleio: an experiment journal for command-line programs.

``import kleio`` also gives the read API's main functions (``kleio.open_journal``,
``kleio.trials``, ``kleio.best``, ``kleio.groups``, ``kleio.to_dataframe``,
``kleio.statistics_dataframe``: see :mod:`kleio.api`), imported on first use: the run path
imports this package and must not pay for the read API.
"""

__version__ = "0.1.0"

_READ_API = frozenset(
    {"open_journal", "trials", "best", "groups", "to_dataframe", "statistics_dataframe"}
)


def __getattr__(name: str) -> object:
    if name in _READ_API:
        import kleio.api  # on first use only (start-up speed)

        return getattr(kleio.api, name)
    raise AttributeError(f"module 'kleio' has no attribute {name!r}")
