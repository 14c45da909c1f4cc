"""Masking of secrets in names, values, environments, command lines, messages and code.

Whatever kleio records or prints (command lines, environment variables, repository URLs, the
uncommitted diff and untracked sources, error messages) goes through this module first. Two
mistakes are possible and both are costly:

* a *missed* secret ends up in a journal that a whole team, or a cluster, can read;
* a *false alarm* on a command-line option masks a real hyper-parameter, and since trial ids are
  computed over the redacted command, two different trials would share one id.

So names are matched word by word (``MY_API_TOKEN`` is ``my``/``api``/``token``; ``KEYBOARD`` is
one word, not ``key``), and a few neutral words cancel the match (``--max-tokens``,
``--pad-token``, ``--sort-key``, ``--password-file`` name sizes, vocabulary and paths, not
secrets).

Command lines follow these rules (docs/reference/journal-schema.rst, "Secrets"):

* ``--NAME=VALUE`` and ``--NAME VALUE`` lose VALUE when NAME looks like a secret. VALUE is
  masked even when it starts with ``-`` (``--password -x``, a PEM key) if NAME names a value
  (password, token, key, secret...): as getopt does for an option with a required argument.
  Only names that are often plain flags (``--private``, ``--auth``, ``--session``) let a
  following ``--option`` be an option.
* Short options are letters, not names: ``-p`` is a port (``ssh``, ``psql``), a flag
  (``mkdir -p``) or anything in a script. It is a password only after a program known to
  take one there (:data:`PASSWORD_OPTIONS`: ``mysql -pSECRET``, ``mongosh -p SECRET``,
  ``sshpass -p SECRET``, ``redis-cli -a SECRET``...), and ``psql --password`` is a flag.
* URIs lose their password, token shapes (GitHub, AWS, OpenAI...) and PEM private keys are
  masked wherever they appear.

Every function here runs in time linear in its input: a command line is redacted before every
start, and its arguments can be long. Patterns are anchored so that a failed attempt is never
retried from inside the same run of characters, and have no nested quantifiers.

One module a concern: :mod:`~kleio.redact.names` (which names are secrets),
:mod:`~kleio.redact.values` (URIs, ``key=value`` pairs, token shapes and PEM keys in a value;
environments), :mod:`~kleio.redact.commands` (command lines and messages) and
:mod:`~kleio.redact.files` (source and configuration files).
"""

from __future__ import annotations

from kleio.redact.commands import PASSWORD_OPTIONS, redact_argv, redact_message
from kleio.redact.files import might_hold_secrets, redact_text
from kleio.redact.names import is_secret_name
from kleio.redact.values import REDACTED, redact_env, redact_value

__all__ = [
    "PASSWORD_OPTIONS",
    "REDACTED",
    "is_secret_name",
    "might_hold_secrets",
    "redact_argv",
    "redact_env",
    "redact_message",
    "redact_text",
    "redact_value",
]
