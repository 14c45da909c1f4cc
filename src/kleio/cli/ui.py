"""``kleio ui``: serve a live, read-only dashboard of the journal (the ``ui`` extra)."""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any

from kleio.cli.common import config_from, parser
from kleio.errors import UsageError

DEFAULT_PORT = 8765


def port_number(text: str) -> int:
    """An argparse type for ``--port``: 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text[:20]!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {value}")
    return value


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; port 0 picks a free one."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise UsageError(
            f"cannot listen on {host!r}: {error.strerror}",
            "give --host an address of this machine, e.g. 0.0.0.0",
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        hint = (
            "pick another with --port N (0 picks a free one)"
            if port
            else "give --host an address of this machine"
        )
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}", hint) from None
    sock.set_inheritable(True)
    return sock


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser(
        "ui",
        "Serve a live, read-only dashboard of the journal to a web browser.",
        json_output=False,
    )
    p.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"port to listen on (default: {DEFAULT_PORT}; 0 picks a free one)",
    )
    p.add_argument(
        "--host",
        metavar="ADDRESS",
        help="listen on this address instead of 127.0.0.1 (e.g. 0.0.0.0); an "
        "access token is then printed and required on every request",
    )
    p.add_argument("--open", action="store_true", help="open the dashboard in a web browser")
    args = p.parse_args(argv)

    from kleio.ui import UI_INSTALL, require

    require("starlette", "uvicorn", command="kleio ui", install=UI_INSTALL)
    config = config_from(flags)
    uri = config.db

    import secrets

    from kleio.storage import mask_uri
    from kleio.ui.readonly import ReadOnlyJournal, check_exists

    check_exists(uri)
    ReadOnlyJournal(uri).store.close()  # a journal that cannot be opened fails here, at once
    host = args.host or "127.0.0.1"
    token = secrets.token_urlsafe(24) if args.host else None
    sock = listen(host, args.port)
    port = sock.getsockname()[1]
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")

    from kleio.ui.server import create_app

    app = create_app(
        lambda: ReadOnlyJournal(uri), token=token, loopback=args.host is None, label=mask_uri(uri)
    )
    sys.stdout.write(f"kleio ui: {mask_uri(uri)} at {url}\nread-only; press Ctrl-C to stop\n")
    sys.stdout.flush()
    if args.open:
        import threading
        import webbrowser

        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        app.app.state.dashboard.close()
    return 0
