"""Serving the dashboard: `serve(store, host=..., port=..., token=...)`, what `reflow ui` runs.

It refuses to bind anything but a loopback address without a token (anyone who can reach
the port could read the runs and resume or cancel them), binds the socket itself (so a taken
port is one clear error, and port 0 picks a free one), prints where it serves, and runs
uvicorn on that socket until SIGINT or SIGTERM. Uvicorn's access log is off: with a token,
the first request's address carries it.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import TextIO

from reflow.store.base import SQLStore
from reflow.ui.auth import check_token, is_loopback

TOKEN_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class UnsafeBind(ValueError):
    """A non-loopback address without a token."""


def check_bind(host: str, token: str | None) -> str | None:
    """The token to require; `UnsafeBind` for a non-loopback `host` without one, and
    `ValueError` for a token too short to be safe."""
    token = check_token(token)
    if token is None and not is_loopback(host):
        raise UnsafeBind(
            f"--host {host} is not a loopback address, and the dashboard has no token: anyone "
            "who can reach it could read your runs and resume or cancel them. Give it a token "
            f"(--token TOKEN, or REFLOW_UI_TOKEN; make one with {TOKEN_HINT}), or serve "
            "127.0.0.1 only"
        )
    return token


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` (port 0: a free one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"--host {host}: not an address this machine has ({exc})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise OSError(
            f"cannot serve on {host}:{port} ({exc.strerror or exc}): is another server there? "
            "Give another --port (0 picks a free one)"
        ) from None
    sock.set_inheritable(True)
    return sock


def address_of(sock: socket.socket, host: str) -> str:
    """The dashboard's URL for a bound socket."""
    port = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(
    store: str | Path | SQLStore | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8400,
    token: str | None = None,
    out: TextIO | None = None,
) -> None:
    """Serve the dashboard over `store` until stopped (SIGINT, SIGTERM)."""
    import uvicorn

    from reflow.ui.app import create_app

    token = check_bind(host, token)
    app = create_app(store, token=token)
    sock = bind(host, port)
    out = out if out is not None else sys.stdout
    url = address_of(sock, host)
    dashboard = app.state.dashboard
    print(f"reflow ui: serving {dashboard.renderer.env.globals['store_name']} at {url}", file=out)
    if token is not None:
        print(f"reflow ui: every request needs the token: open {url}?token=TOKEN once", file=out)
    print("reflow ui: Ctrl-C stops it", file=out, flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


__all__ = ["UnsafeBind", "address_of", "bind", "check_bind", "serve"]
