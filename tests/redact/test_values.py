"""kleio.redact.values: URI passwords, pairs, tokens and PEM keys inside a value."""

from __future__ import annotations

from kleio.redact import REDACTED, redact_env, redact_value

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nq9Zx\n-----END RSA PRIVATE KEY-----\n"


def test_redact_value_masks_uri_passwords_and_tokens():
    assert redact_value("mongodb://me:hunter2@db.example/x") == "mongodb://me:***@db.example/x"
    assert "ghp_" not in redact_value("token ghp_" + "a" * 36)
    assert redact_value("https://h/x?api_key=abc123&page=2") == "https://h/x?api_key=***&page=2"
    assert "s3cr3t" not in redact_value("AccountName=x;AccountKey=s3cr3t;Endpoint=y")
    assert redact_value("Authorization: Bearer abcdefghijklmnop") == "Authorization: Bearer ***"
    assert REDACTED in redact_value("AKIAABCDEFGHIJKLMNOP")


def test_redact_value_leaves_ordinary_text_alone():
    for text in ["0.1", "train.py", "https://example.com/a/b", "lr=0.1", "--max-tokens=512", ""]:
        assert redact_value(text) == text


def test_redact_env():
    env = {
        "MY_API_TOKEN": "abc",
        "PWD": "/home/me",
        "DATABASE_URL": "postgres://u:pw@h/db",
        "OMP_NUM_THREADS": "4",
    }
    assert redact_env(env) == {
        "MY_API_TOKEN": REDACTED,
        "PWD": "/home/me",
        "DATABASE_URL": "postgres://u:***@h/db",
        "OMP_NUM_THREADS": "4",
    }


def test_pem_keys_are_masked_anywhere():
    masked = redact_value("key=" + PEM)
    assert "MIIE" not in masked and "q9Zx" not in masked
    assert redact_value(PEM).splitlines() == [
        "-----BEGIN RSA PRIVATE KEY-----",
        REDACTED,
        REDACTED,
        "-----END RSA PRIVATE KEY-----",
    ]
    assert "MIIE" not in redact_value(PEM.replace("\n", ""))  # one line, no newlines
    assert "AAAB3" not in redact_value("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAB3")  # no END
    certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    assert redact_value(certificate) == certificate  # public


def test_mask_uri_ends_an_authority_at_what_the_pattern_s_would():
    """kleio.storage finds whitespace without re (off the start path): the same characters."""
    import re

    from kleio.storage import _SPACES, mask_uri

    pattern = re.compile(r"\s")
    assert {c for c in map(chr, range(0x110000)) if pattern.match(c)} == set(_SPACES)
    for space in _SPACES:
        assert mask_uri(f"mongodb://u:pw@h{space}x:y@z") == f"mongodb://u:***@h{space}x:y@z"
