"""kleio.snapshot.environment: the interpreter, platform, packages (cached), variables and
GPUs a trial ran with."""

from __future__ import annotations

import importlib.metadata  # noqa: F401  (imported before tests narrow sys.path)
import json
import os
import sys

import pytest

from kleio.snapshot import environment
from kleio.snapshot.environment import env_snapshot
from kleio.snapshot.host import host_snapshot


def test_env_snapshot_shape_and_secrets(monkeypatch):
    monkeypatch.setenv("MY_API_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("PYTHONPATH", "https://u:pw@host/x")
    env = env_snapshot()
    text = json.dumps(env)
    assert "MY_API_TOKEN" not in text and "s3cr3t-value" not in text
    assert "pw@" not in text
    assert env["variables"]["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert env["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert env["python"]["executable"] == sys.executable
    assert set(env["platform"]) == {"system", "release", "machine"}
    assert env["packages"]["pytest"] == importlib.metadata.version("pytest")


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()

    def install(name, version):
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        return info

    monkeypatch.setattr(sys, "path", [str(site)])
    scans = []
    real_scan = environment._scan_packages
    monkeypatch.setattr(environment, "_scan_packages", lambda: scans.append(1) or real_scan())
    return site, install, scans


def test_package_cache_hit_and_miss(fake_site):
    site, install, scans = fake_site
    info = install("Foo_Bar", "1.0")
    assert environment.installed_packages() == {"foo-bar": "1.0"}
    assert len(scans) == 1
    assert os.path.exists(environment.packages_cache_path())
    # Hit: nothing in sys.path's directories changed (even if a file was edited in place).
    (info / "METADATA").write_text("Name: Foo_Bar\nVersion: 9.9\n", encoding="utf-8")
    assert environment.installed_packages() == {"foo-bar": "1.0"}
    assert len(scans) == 1
    # Miss: installing a distribution changes the directory's mtime.
    install("numpy", "2.0.0")
    stat = os.stat(site)
    os.utime(site, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert environment.installed_packages() == {"foo-bar": "9.9", "numpy": "2.0.0"}
    assert len(scans) == 2


def test_package_cache_survives_a_corrupt_file(fake_site):
    _, install, scans = fake_site
    install("foo", "1")
    path = environment.packages_cache_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("{not json")
    assert environment.installed_packages() == {"foo": "1"}
    assert len(scans) == 1


def test_env_snapshot_records_the_variable_lists(monkeypatch):
    monkeypatch.setenv("TF_DETERMINISTIC_OPS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    env = env_snapshot()
    assert env["variables"]["TF_DETERMINISTIC_OPS"] == "1"
    assert env["variables"]["OMP_NUM_THREADS"] == "4"
    assert env["variables_version"] == 2


def test_gpus_are_asked_once_per_boot(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = bin_dir / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\n"
        f"echo x >> '{calls}'\n"
        'if [ -n "$1" ]; then echo "NVIDIA A100-SXM4-40GB, 40960 MiB, 535.104.05"; '
        'else echo "| NVIDIA-SMI 535.104.05   Driver Version: 535.104.05   CUDA Version: 12.2 |"; '
        "fi\n",
        encoding="utf-8",
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(environment, "_boot_id", lambda: "boot-1")
    expected = {
        "driver": "535.104.05",
        "cuda": "12.2",
        "gpus": [{"name": "NVIDIA A100-SXM4-40GB", "memory": "40960 MiB"}],
    }
    assert environment.gpu_info() == expected
    assert host_snapshot()["gpus"] == expected["gpus"]
    assert env_snapshot()["gpu"] == {"driver": "535.104.05", "cuda": "12.2"}
    assert len(calls.read_text().splitlines()) == 2  # one query and one summary, then cached
    monkeypatch.setattr(environment, "_boot_id", lambda: "boot-2")
    environment.gpu_info()
    assert len(calls.read_text().splitlines()) == 4
