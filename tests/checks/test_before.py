"""Warnings before a run: no seed, GPU variables naming no device."""

from __future__ import annotations

from kleio.checks.before import warnings

GPU = {"name": "A100", "memory": "40960 MiB"}


def doc(argv, config=None, gpus=()):
    return {"argv": argv, "config": config or {}, "host": {"gpus": list(gpus)}}


def test_no_seed_anywhere_is_one_warning():
    (found,) = warnings(doc(["python", "train.py", "--lr", "0.1"], {"lr": "0.1"}), {})
    assert found.startswith("no seed-like option (such as --seed) and no seed in the environment")


def test_a_seed_option_or_variable_is_enough():
    assert warnings(doc(["python", "train.py", "--seed", "1"], {"seed": "1"}), {}) == []
    assert warnings(doc(["python", "train.py", "--random-seed=3"]), {}) == []
    assert warnings(doc(["python", "train.py", "seed=3"], {"_pos": ["seed=3"]}), {}) == []
    assert warnings(doc(["python", "train.py"]), {"PYTHONHASHSEED": "0"}) == []
    assert warnings(doc(["python", "train.py"]), {"PYTHONHASHSEED": ""}) != []


def test_gpu_variables_that_name_no_device():
    seeded = ["python", "train.py", "--seed", "0"]
    assert warnings(doc(seeded), {"CUDA_VISIBLE_DEVICES": "0"}) == [
        "CUDA_VISIBLE_DEVICES=0 but this host has no NVIDIA GPU (nvidia-smi finds none): the "
        "program will run on the CPU, or fail"
    ]
    assert warnings(doc(seeded, gpus=[GPU, GPU]), {"CUDA_VISIBLE_DEVICES": "1,3"}) == [
        "CUDA_VISIBLE_DEVICES=1,3 names device 3, but this host has 2 GPUs (0 to 1)"
    ]
    assert warnings(doc(seeded, gpus=[GPU, GPU]), {"CUDA_VISIBLE_DEVICES": "1"}) == []
    for value in ("", "-1", "none", "all"):
        assert warnings(doc(seeded), {"CUDA_VISIBLE_DEVICES": value}) == []
    assert warnings(doc(seeded, gpus=[GPU]), {"NVIDIA_VISIBLE_DEVICES": "GPU-1234"}) == []
