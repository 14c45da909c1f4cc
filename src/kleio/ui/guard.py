"""The dashboard's gate (ASGI middleware): methods, the Host header, the access token, and
the security headers of every response. See :mod:`kleio.ui.server` for the rules.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
COOKIE = "kleio_token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


class Guard:
    """ASGI middleware: methods, Host header, access token, security headers."""

    def __init__(self, app: Any, *, token: str | None, loopback: bool) -> None:
        self.app = app
        self.token = token
        self.loopback = loopback

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websocket is served: refuse before any check
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []
        }

        async def secured(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers") or []) + SECURITY_HEADERS
            await send(message)

        if scope["method"] not in ("GET", "HEAD"):
            await _plain(
                secured,
                405,
                "kleio ui is read-only: only GET and HEAD are answered",
                [(b"allow", b"GET, HEAD")],
            )
            return
        if self.loopback and not _loopback_host(headers.get("host", "")):
            await _plain(
                secured, 403, "kleio ui answers only requests addressed to 127.0.0.1 or localhost"
            )
            return
        if self.token is not None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given_query = (query.get("token") or [""])[0]
            if given_query and self._valid(given_query):
                # Trade the token in the address for a cookie, and drop it from the address
                # (history, screenshots, Referer).
                rest = urlencode([(k, v) for k, vs in query.items() if k != "token" for v in vs])
                path = scope["path"]
                # This server's own paths only: "//host" would send the browser elsewhere.
                path = quote(path) if path.startswith("/") and not path.startswith("//") else "/"
                location = path + (f"?{rest}" if rest else "")
                cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                await _plain(
                    secured,
                    303,
                    "see the dashboard",
                    [
                        (b"location", location.encode("latin-1")),
                        (b"set-cookie", cookie.encode("latin-1")),
                    ],
                )
                return
            if not self._valid(self._presented(headers)):
                await _plain(
                    secured,
                    401,
                    "this kleio dashboard needs its access token: open "
                    "the address kleio ui printed (it ends with ?token=...)",
                )
                return
        await self.app(scope, receive, secured)

    def _presented(self, headers: dict[str, str]) -> str:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
        return ""

    def _valid(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())


def _loopback_host(host: str) -> bool:
    host = host.strip().lower()
    if host.startswith("["):
        name = host[: host.find("]") + 1] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in LOOPBACK_HOSTS


async def _plain(
    send: Any, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
