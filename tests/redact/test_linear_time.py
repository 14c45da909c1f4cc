"""Every part of kleio.redact runs in time linear in its input (a start redacts argv)."""

from __future__ import annotations

from kleio.redact import redact_argv, redact_message

# Inputs on which the patterns this module used to have backtracked quadratically (a 120,000
# character argument delayed the start by 10 s): each scanned a long run once per position.
PATHOLOGICAL = [
    "a" * 200_000 + "://",  # a scheme-like run before '://'
    "x://u:" + "b" * 200_000,  # a password without '@'
    "x://u:" + "@" * 200_000,
    "a://b" * 40_000,
    "eyJ-" * 50_000,  # JWT starts in one run
    "a" * 200_000 + " =",  # a key-like run without '='
    "k=" * 100_000,
    ("token" + " " * 10) * 13_334,
    "password" + " " * 200_000 + ":",
    'password="' * 20_000,
    "-----BEGIN " * 20_000,
    "1" * 200_000,
    "--" + "password" * 25_000,
]


def test_redaction_runs_in_linear_time():
    import time

    from kleio.redact import redact_text
    from kleio.storage import mask_uri

    # Process CPU time, not wall-clock: other processes on the machine do not count. Each call
    # takes at most about 0.1 s here; the quadratic patterns took minutes on these inputs.
    calls = [
        mask_uri,
        lambda text: redact_argv(["prog", text, "--password", text]),
        redact_message,
        lambda text: redact_text(text, "train.py"),
        lambda text: redact_text(text, "config.yaml"),
    ]
    for text in PATHOLOGICAL:
        assert len(text) >= 200_000
        for call in calls:
            start = time.process_time()
            call(text)
            assert time.process_time() - start < 2.0, (text[:20], call)
