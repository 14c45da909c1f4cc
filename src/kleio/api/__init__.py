"""Read trials from Python: for notebooks, scripts, ``kleio ls``/``best``/``export`` and plots.

Everything here only *reads* the journal (SQLite or MongoDB); nothing is ever written.

Quick start::

    import kleio.api as ka

    runs = ka.trials(where=["status=completed", "lr<0.1"], sort="-val_acc", limit=10)
    best = runs[0]
    best.id, best.short_id, best.status, best.options["lr"], best.metrics["val_acc"]["best"]
    rows = best.statistics()            # [{"epoch": 1, "val_acc": 0.8, ...}, ...] (lineage)
    for group in ka.groups(runs, except_=("seed",)):
        print(group.options, group.n, group.mean("val_acc"), group.std("val_acc"))
    frame = ka.to_dataframe(runs)       # needs pandas (pip install 'kleio[pandas]')

    with ka.open_journal("sqlite:///path/kleio.db") as journal:   # one connection, many calls
        journal.trials(tags=["sweep"]); journal.trial("4eda"); journal.statistics("4eda")

Module functions (``trials``, ``trial``, ``statistics``, ``best``) open the journal named by
``db`` (a URI or an SQLite path; default: the configured one, as ``kleio --db``/``KLEIO_DB``/
``kleio.yaml`` would choose) and close it before returning.

:class:`Trial` (one record, attributes read lazily and cached):

* ``id``, ``short_id`` (7 characters), ``status`` (as ``kleio ls`` shows it: ``lost`` for a
  trial whose runner died), ``command`` (list), ``project``, ``tags`` (list), ``note`` (text
  or None, set by ``kleio note``), ``parent`` (id
  or None), ``created_at``, ``started_at`` (the *first* start of any execution, epoch
  seconds or None), ``ended_at``, ``duration`` (seconds over every execution; a lost execution
  counts up to its last journalled event or heartbeat; a running one up to now),
  ``exit_code``, ``program`` (the command before its arguments), ``doc`` (the raw trial
  document);
* ``options``: ``{name: value}`` from the parsed command line (``--lr 0.1`` gives
  ``{"lr": "0.1"}``: values as typed, strings; a flag gives ``True``; a repeated option a
  list). ``positionals``: the other arguments;
* ``metrics``: ``{name: {"mode", "last", "best", "best_step", "step_key", "count"}}`` over
  the trial's **lineage** (a branch continues its parent's statistics up to the cut); see
  :mod:`kleio.metrics` for modes and the name rule;
* ``declarations``: the :class:`kleio.metrics.Declarations` in effect (command line over
  the trial's own over ``kleio.yaml``); ``primary``: the primary metric's name or None;
* ``statistics()`` (list of dicts, lineage, oldest first), ``iter_statistics()`` (a
  generator, bounded memory), ``artifacts()`` (list of ``{"filename", "metadata", "sha256",
  "size", "time", "trial"}``), ``artifact(filename=None, **metadata)`` (bytes of the newest
  match, or None);
* ``value(name)``: the value a column, ``--where`` or ``--sort`` uses for ``name`` (see
  below); ``to_json()``: the stable JSON object of ``kleio ls --json``.

Filters (keyword arguments of ``trials``; all combine with AND):

* ``where``: a list of conditions ``NAME OP VALUE``, ``OP`` one of ``= == != < <= > >=``;
  e.g. ``"lr<0.1"``, ``"status=completed"``, ``"val_acc>=0.9"``, ``"val_loss.last<0.3"``.
  ``NAME`` is a field (``id``, ``status``, ``project``, ``tag``, ``command``, ``created``,
  ``started``, ``ended``, ``duration``, ``parent``), else an option, else a metric (its best;
  ``NAME.last`` for its last value). Values compare as numbers when both sides are numbers,
  else as text; a trial without ``NAME`` never matches (``!=`` included). ``created``,
  ``started`` and ``ended`` take epoch seconds or an ISO date/time; ``id=``/``id!=`` with a
  value shorter than a full id compare a prefix. A malformed condition (a value starting with
  an operator character included) raises :class:`kleio.errors.UsageError`. One string is a
  list of one, for ``where``, ``status``, ``tags`` and ``ids``.
* ``status`` (list), ``tags`` (every one), ``project`` (substring of the project),
  ``since`` (seconds since the epoch, as a number or text, or text such as ``"2d"``,
  ``"3h"``, ``"30m"``, ``"2024-05-01"``: created at or after), ``ids`` (id prefixes).
* ``sort``: ``NAME`` or ``-NAME`` (descending); any name ``where`` accepts; a metric sorts on
  its best value; trials without the value come last in both directions. Default
  ``-created``; a name no listed trial has raises ``UsageError``. ``limit``: at most this
  many (after filtering and sorting), 0 or more.
* ``metrics``: ``["val_acc:max", "val_loss"]``: declarations of the reader, over the trials'
  own; the first is the primary metric.

Status, tags, id prefixes, ``since``, ``project`` and the conditions ``status=``,
``created>``/``>=`` and ``tag=`` are filtered by the database; so are the sort and the limit
when no other filter needs Python. Metrics come from the per-trial summaries the store keeps
as statistics are appended (:mod:`kleio.storage.summary`; one query per 200 trials, no
statistic decoded), and a sort on a metric is ranked by the store (a branch, whose lineage
decides, is ranked here and merged in), so ``sort="-val_acc", limit=50`` reads 50 trials
whatever the journal's size.

:func:`groups` puts together trials whose options are equal except the given ones (seeds):
each :class:`Group` has ``options`` (shared), ``trials``, ``n``, ``values(name, which)``,
``mean(name, which="best")`` and ``std(name, which="best")`` (sample standard deviation,
0.0 for one trial), ``to_json()``.

:func:`to_dataframe` and :func:`statistics_dataframe` need pandas (the ``kleio[pandas]``
extra); without it they raise ImportError naming the install command.

Modules, each one concern (every name above is importable from ``kleio.api`` itself):
:mod:`kleio.api.conditions` (``where``, ``since``, ``sort``, ordering, ``best_of``),
:mod:`kleio.api.trial` (:class:`Trial`, :func:`execution_times`), :mod:`kleio.api.journal`
(:class:`Journal`: finding, filtering, ranking), :mod:`kleio.api.prefetch` (reading a page of
trials in a constant number of requests), :mod:`kleio.api.groups`,
:mod:`kleio.api.shortcuts` (the module functions) and :mod:`kleio.api.dataframes`.
"""

from __future__ import annotations

from kleio.api.conditions import (
    FIELDS,
    STORE_SORTS,
    Condition,
    best_of,
    known,
    parse_since,
    parse_sort,
    ranked_sort,
    sort_trials,
)
from kleio.api.dataframes import statistics_dataframe, to_dataframe
from kleio.api.groups import Group, groups
from kleio.api.journal import Journal
from kleio.api.shortcuts import best, open_journal, statistics, trial, trials
from kleio.api.trial import Trial, execution_times

__all__ = [
    "FIELDS",
    "STORE_SORTS",
    "Condition",
    "Group",
    "Journal",
    "Trial",
    "best",
    "best_of",
    "execution_times",
    "groups",
    "known",
    "open_journal",
    "parse_since",
    "parse_sort",
    "ranked_sort",
    "sort_trials",
    "statistics",
    "statistics_dataframe",
    "to_dataframe",
    "trial",
    "trials",
]
