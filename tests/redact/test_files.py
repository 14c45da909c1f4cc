"""kleio.redact.files: secrets in the text of source and configuration files are masked,
line by line, and ordinary code is left alone."""

from __future__ import annotations

import pytest

from kleio.redact import REDACTED, redact_text

PEM_LINES = [
    "-----BEGIN RSA PRIVATE KEY-----",
    "MIIEpAIBAAKCAQEA7",
    "q9Zx",
    "-----END RSA PRIVATE KEY-----",
]


@pytest.mark.parametrize(
    ("line", "path", "expected"),
    [
        ('API_KEY = "sk-abcdefghijklmnopqrstuvwxyz"', "a.py", 'API_KEY = "***"'),
        ('password: str = "hunter2"', "a.py", 'password: str = "***"'),
        (
            'os.environ["AWS_SECRET_ACCESS_KEY"] = "wJalrXUtn/K7MDENG"',
            "a.py",
            'os.environ["AWS_SECRET_ACCESS_KEY"] = "***"',
        ),
        ('client = Client(api_key="abc123")', "a.py", 'client = Client(api_key="***")'),
        ('{"password": "x"}', "a.json", '{"password": "***"}'),
        ('conn = "host=h;password=abc;user=u"', "a.py", 'conn = "host=h;password=***;user=u"'),
        (
            'url = "https://h/x?api_key=abc&page=2"',
            "a.py",
            'url = "https://h/x?api_key=***&page=2"',
        ),
        ("# see mongodb://u:pa/ss@h/db", "a.py", "# see mongodb://u:***@h/db"),
        ('run("prog --password hunter2")', "a.py", 'run("prog --password ***")'),
        ('aws = "AKIAABCDEFGHIJKLMNOP"', "a.py", 'aws = "***"'),
        (
            'h = {"Authorization": "Bearer abcdefghijklmnop"}',
            "a.py",
            'h = {"Authorization": "Bearer ***"}',
        ),
        ("  password: hunter2", "conf.yaml", "  password: ***"),
        ("AWS_SECRET_ACCESS_KEY=wJalr", ".env", "AWS_SECRET_ACCESS_KEY=***"),
        ("export GITHUB_TOKEN=ghp_abc", "run.sh", "export GITHUB_TOKEN=***"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG",
            "credentials",
            "aws_secret_access_key = ***",
        ),
        ("//registry.npmjs.org/:_authToken=abc", ".npmrc", "//registry.npmjs.org/:_authToken=***"),
    ],
)
def test_secrets_in_sources_are_masked(line, path, expected):
    assert redact_text(line + "\n", path) == expected + "\n"


@pytest.mark.parametrize(
    ("line", "path"),
    [
        ('key = "lr"', "a.py"),  # a dictionary key, not a credential
        ('token = "[CLS]"', "a.py"),
        ("db_password = get_password()", "a.py"),  # code, not a value
        ("password = hunter2", "a.py"),  # in a program a bare word is a variable
        ("f(api_key=api_key, auth=auth)", "a.py"),
        ("secret_token: ${TOKEN}", "conf.yaml"),  # a reference
        ("password: ''", "conf.yaml"),
        ("use_auth: true", "conf.yaml"),
        ("  key: learning_rate", "conf.yaml"),
        ("for key, value in sorted(items):", "a.py"),
        ("max_tokens = 512", "a.py"),
    ],
)
def test_ordinary_code_is_left_alone(line, path):
    assert redact_text(line, path) == line


def test_a_pem_key_keeps_its_lines():
    text = 'KEY = """\n' + "\n".join(PEM_LINES) + '\n"""\nX = 1\n'
    masked = redact_text(text, "keys.py")
    assert masked.splitlines() == [
        'KEY = """',
        PEM_LINES[0],
        REDACTED,
        REDACTED,
        PEM_LINES[3],
        '"""',
        "X = 1",
    ]


def test_masking_keeps_every_line_and_every_other_byte():
    text = "a = 1\r\npassword: hunter2\r\n\xe9t\xe9 = '\udcff'\n\n"
    masked = redact_text(text, "c.yaml")
    assert masked == "a = 1\r\npassword: ***\r\n\xe9t\xe9 = '\udcff'\n\n"
