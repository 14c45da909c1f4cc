"""kleio.snapshot.host: the machine a trial ran on, named as the runner is."""

from __future__ import annotations

import os

from kleio.snapshot.host import host_snapshot


def test_host_snapshot(monkeypatch):
    monkeypatch.setenv("KLEIO_HOSTNAME", "node-7")
    host = host_snapshot()
    assert host["hostname"] == "node-7"
    assert host["cpus"] == os.cpu_count()
    assert host["memory_bytes"] is None or host["memory_bytes"] > 0
    assert isinstance(host["gpus"], list)
    assert set(host) >= {"hostname", "user", "cpus", "cpu_model", "memory_bytes", "gpus"}


def test_the_hostname_setting_names_the_host_in_the_snapshot(git_repo):
    from kleio.reservation import hostname

    (git_repo / "kleio.yaml").write_text("hostname: login-node\n", encoding="utf-8")
    assert host_snapshot()["hostname"] == "login-node"  # as the runner is named
    assert host_snapshot("given")["hostname"] == "given"
    assert hostname() == os.uname().nodename and hostname("x") == "x"
