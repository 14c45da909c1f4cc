"""Snapshots taken at every start, one module per concern (DESIGN §2).

* :mod:`kleio.snapshot.code`: the commit, the uncommitted diff, the untracked sources and
  the config files a command names outside the repository;
* :mod:`kleio.snapshot.environment`: the interpreter, distributions, platform, GPU driver
  and a documented list of variables;
* :mod:`kleio.snapshot.host`: the host name, user, CPUs, memory and GPUs;
* :mod:`kleio.snapshot.compare`: what differs between two snapshots, and what refuses a
  resume.

Nothing is imported here: ``kleio python train.py`` loads the three snapshot modules it
needs, and the comparison only on a resume or a ``kleio diff``.
"""

from __future__ import annotations
