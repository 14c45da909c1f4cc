"""Secrets inside a value: URI passwords, ``secret=...`` pairs, token shapes, PEM keys.

Also the regular expressions compiled on first use that every part of redaction shares, and
the words without which none of them can match (a ``str.find`` rules a pattern out at C
speed).
"""

from __future__ import annotations

from kleio.redact.names import is_secret_name

TYPE_CHECKING = False
if TYPE_CHECKING:  # collections.abc imports collections: milliseconds per run
    import re
    from collections.abc import Mapping

REDACTED = "***"


class _Lazy:
    """A regular expression compiled on first use, :mod:`re` imported on first use.

    The patterns run only where a cheap ``str.find`` found a word they need, so most runs
    never use them; :mod:`re` and the patterns, imported and compiled at import, would cost
    the start of every run about half a bare interpreter's start.
    """

    __slots__ = ("_args", "_compiled")

    def __init__(self, pattern: str, flags: str) -> None:
        self._args = (pattern, flags)
        self._compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> object:
        if self._compiled is None:
            import re

            pattern, flags = self._args
            self._compiled = re.compile(pattern, getattr(re, flags) if flags else 0)
        return getattr(self._compiled, name)


def lazy(pattern: str, flags: str = "") -> re.Pattern[str]:
    """``re.compile(pattern, re.FLAGS)``, on first use (``flags``: a flag's name)."""
    return _Lazy(pattern, flags)  # type: ignore[return-value]  # duck-typed: used by methods


# Well-known token shapes, masked wherever they appear. Every alternative starts with a
# literal and ends with its open-ended run, so a failed attempt costs a bounded prefix; the
# JWT, whose runs are followed by more pattern, may only start where a run of its characters
# starts, so no run is scanned twice.
_TOKEN_PATTERNS = lazy(
    r"""
    \b(?:gh[pousr]_[A-Za-z0-9]{20,}          # GitHub
      |github_pat_[A-Za-z0-9_]{20,}
      |glpat-[A-Za-z0-9_-]{20,}               # GitLab
      |xox[abposr]-[A-Za-z0-9-]{10,}          # Slack
      |sk-[A-Za-z0-9_-]{20,}                  # OpenAI, Anthropic and others
      |[sr]k_(?:live|test)_[A-Za-z0-9]{10,}   # Stripe
      |hf_[A-Za-z0-9]{20,}                    # Hugging Face
      |npm_[A-Za-z0-9]{36}                    # npm
      |pypi-[A-Za-z0-9_-]{50,}                # PyPI
      |(?:AKIA|ASIA)[0-9A-Z]{16}              # AWS access key id
      |AIza[0-9A-Za-z_-]{35}                  # Google API key
    )
    |(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+   # JWT
    """,
    "VERBOSE",
)
# [ \t], not \s: "token" at the end of a line of code must not swallow the next line's word.
_BEARER = lazy(r"(?i)\b(bearer|basic|token)([ \t]+)[A-Za-z0-9._~+/=-]{8,}")
# key=value pairs inside a value: URL queries, connection strings, Hydra overrides. The run
# before '=' may only start where a run of key characters starts (the look-behind), so a long
# run without '=' is scanned once, not once per character; its leading digits, dots and dashes
# are then dropped (``--password=x`` has the key ``password``).
_PAIR = lazy(r"(?<![A-Za-z0-9_.-])(?P<key>[A-Za-z0-9_.-]+)=(?P<value>[^&;,\s]+)")
_PEM_BEGIN = lazy(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_LINE_CONTENT = lazy(r"[^\r\n]+")


def _mask_pair(match: re.Match[str]) -> str:
    key = match.group("key").lstrip("0123456789.-")
    if key and match.group("value") != REDACTED and is_secret_name(key.rsplit(".", 1)[-1]):
        return match.group(0)[: match.start("value") - match.start()] + REDACTED
    return match.group(0)


def mask_pem(text: str) -> str:
    """Mask the body of every PEM private key, line by line (the line count stays)."""
    if "-----BEGIN " not in text:
        return text
    out: list[str] = []
    done = 0
    for match in _PEM_BEGIN.finditer(text):
        if match.start() < done:
            continue  # inside the key masked just before
        footer = text.find("-----END ", match.end())
        body_end = len(text) if footer == -1 else footer
        out.append(text[done : match.end()])
        out.append(_LINE_CONTENT.sub(REDACTED, text[match.end() : body_end]))
        done = body_end
    out.append(text[done:])
    return "".join(out)


def redact_value(text: str) -> str:
    """Return ``text`` with URI passwords, ``secret=...`` pairs, PEM keys and tokens masked."""
    if not text:
        return text
    text = mask_uris(mask_pem(text))
    # Each pattern runs only where a word it needs is (a str.find, at C speed): the
    # patterns cost microseconds per call, and code has many lines.
    lower = text.lower()
    if "=" in text and any_in(SECRET_TRIGGERS, lower):
        text = _PAIR.sub(_mask_pair, text)
    return mask_tokens(text, lower)


def mask_uris(text: str) -> str:
    """Mask the password of every URI in ``text``."""
    if "://" not in text:
        return text
    # Imported here: kleio.storage pulls in the storage contract, which redaction of a
    # plain value never needs.
    from kleio.storage import mask_uri

    return mask_uri(text)


def mask_tokens(text: str, lower: str) -> str:
    """Mask ``Bearer``/``Basic`` credentials and well-known token shapes in ``text``.

    ``lower`` is ``text`` lower-cased, for the cheap look for the words they need.
    """
    if any_in(_BEARER_TRIGGERS, lower):
        text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    if any_in(_TOKEN_TRIGGERS, lower):
        text = _TOKEN_PATTERNS.sub(REDACTED, text)
    return text


def any_in(words: tuple[str, ...], lower: str) -> bool:
    """Whether one of ``words`` is in ``lower`` (a ``str.find`` each, at C speed)."""
    return any(word in lower for word in words)


def redact_env(mapping: Mapping[str, str]) -> dict[str, str]:
    """Mask the values of secret-looking variables; redact the others with :func:`redact_value`."""
    return {
        name: REDACTED if is_secret_name(name) else redact_value(value)
        for name, value in mapping.items()
    }


# Words (lower-cased) without which a pattern cannot match: every secret name holds one of
# SECRET_TRIGGERS, every token shape one of _TOKEN_TRIGGERS. A line with none of TRIGGERS
# holds no secret to mask.
SECRET_TRIGGERS = (
    "key", "token", "secret", "pass", "pw", "cred", "auth", "cookie", "session", "private",
    "signature", "dsn", "bearer",
)  # fmt: skip
_BEARER_TRIGGERS = ("bearer", "basic", "token")
_TOKEN_TRIGGERS = (
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xox", "sk-", "sk_",
    "rk_", "hf_", "npm_", "pypi-", "akia", "asia", "aiza", "eyj",
)  # fmt: skip
TRIGGERS = (*SECRET_TRIGGERS, "basic", "://", *_TOKEN_TRIGGERS)
