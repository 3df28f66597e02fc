"""Who may use the dashboard: the token, the Host check, and CSRF protection.

- Without a token the server binds loopback only (`reflow ui` refuses anything else), and a
  request must name it by a loopback host (`127.0.0.1`, `localhost`, `[::1]`): a web page
  that re-points its own domain at 127.0.0.1 (DNS rebinding) gets a 400, not the data.
- With a token, every request (pages, API, static files) must carry it: an
  `Authorization: Bearer TOKEN` header, or the session cookie. Opening any page once with
  `?token=TOKEN` sets that cookie (HttpOnly, SameSite=Strict; its value is derived from the
  token, not the token) and redirects to the same page without the token in its address.
  Tokens and cookies are compared in constant time (`hmac.compare_digest`).
- A POST (resume, cancel) from a browser must carry the page's CSRF token (the
  `X-Reflow-CSRF` header, or the `csrf_token` field of a form), and an `Origin` header, when
  sent, must be the dashboard's own. A POST with a valid `Authorization: Bearer` header needs
  no CSRF token: a browser never adds that header by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from html import escape
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

COOKIE = "reflow_ui_session"
CSRF_HEADER = "x-reflow-csrf"
CSRF_FIELD = "csrf_token"
MIN_TOKEN = 16
"""Fewer characters than this make a token too easy to guess."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM = 64 * 1024

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or address, IPv6 with or without brackets) is this machine
    only: `localhost`, 127.0.0.0/8, ::1."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_token(token: str | None) -> str | None:
    """The token to require (None: none), refusing one too short to be safe."""
    if token is None or token == "":
        return None
    if len(token) < MIN_TOKEN:
        raise ValueError(
            f"the dashboard's token must have at least {MIN_TOKEN} characters (it has "
            f"{len(token)}); make one with: python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'"
        )
    return token


def _host_name(host_header: str) -> str:
    """The host of a `Host` header, without its port."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Guard:
    """Checks each request against the token (when there is one), the Host header and, for
    POSTs, the CSRF token and Origin."""

    def __init__(self, token: str | None) -> None:
        self.token = check_token(token)
        key = secrets.token_bytes(32)
        self.csrf_token = hmac.new(key, b"reflow-ui-csrf", hashlib.sha256).hexdigest()
        """What this server's pages send back with a POST (new at each start)."""
        self._cookie = (
            hmac.new(self.token.encode(), b"reflow-ui-session", hashlib.sha256).hexdigest()
            if self.token is not None
            else None
        )

    # -- the checks -----------------------------------------------------------------------

    def token_matches(self, given: str) -> bool:
        """Whether `given` is the token (in constant time)."""
        assert self.token is not None
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

    def cookie_matches(self, given: str) -> bool:
        assert self._cookie is not None
        return hmac.compare_digest(given.encode("utf-8", "replace"), self._cookie.encode())

    def csrf_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.csrf_token.encode())

    def bearer(self, request: Request) -> bool:
        """Whether the request carries the token in its Authorization header."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return (
            self.token is not None
            and scheme.lower() == "bearer"
            and self.token_matches(value.strip())
        )

    def authenticated(self, request: Request) -> bool:
        if self.token is None:
            return True
        if self.bearer(request):
            return True
        cookie = request.cookies.get(COOKIE)
        return cookie is not None and self.cookie_matches(cookie)

    # -- the middleware ---------------------------------------------------------------------

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        refused = await self._refusal(request)
        response = refused if refused is not None else await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _refusal(self, request: Request) -> Response | None:
        """The response refusing the request, or None to let it through."""
        api = request.url.path.startswith("/api/") or request.url.path == "/openapi.json"
        if self.token is None:
            host = _host_name(request.headers.get("host", ""))
            if not is_loopback(host):
                return _refuse(
                    400,
                    api,
                    f"this dashboard serves loopback addresses only (127.0.0.1, localhost), "
                    f"not {host or 'a request without a Host header'}: start it with --token "
                    "to serve other names",
                )
        else:
            given = request.query_params.get("token")
            if given is not None:
                if not self.token_matches(given):
                    return _refuse(401, api, "the token in the address is not this dashboard's")
                return self._login(request)
            if not self.authenticated(request):
                return _refuse(
                    401,
                    api,
                    "this dashboard needs its token: send `Authorization: Bearer TOKEN`, or "
                    "open any page once as /?token=TOKEN (the token given to `reflow ui "
                    "--token` or REFLOW_UI_TOKEN)",
                )
        if request.method not in SAFE_METHODS:
            return await self._csrf_refusal(request, api)
        return None

    def _login(self, request: Request) -> Response:
        """Set the session cookie and send the browser to the same page without the token."""
        assert self._cookie is not None
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, self._cookie, httponly=True, samesite="strict", path="/")
        return response

    async def _csrf_refusal(self, request: Request, api: bool) -> Response | None:
        origin = request.headers.get("origin")
        if origin is not None and origin != "null":
            own = f"{request.url.scheme}://{request.headers.get('host', '')}"
            if origin != own:
                return _refuse(403, api, f"a request from {origin} may not change runs here")
        elif origin == "null":
            return _refuse(403, api, "a request from an opaque origin may not change runs here")
        if self.bearer(request):
            return None
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            body = await request.body()
            if len(body) <= MAX_FORM:
                fields = parse_qs(body.decode("utf-8", "replace"))
                found = fields.get(CSRF_FIELD)
                given = found[0] if found else None
        if given is None or not self.csrf_matches(given):
            return _refuse(
                403,
                api,
                "a POST needs this dashboard's CSRF token: the X-Reflow-CSRF header (GET "
                "/api/csrf gives it) or an Authorization: Bearer header",
            )
        return None


def _refuse(status: int, api: bool, message: str) -> Response:
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    if api:
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>reflow: "
        f"{status}</title></head><body><h1>reflow dashboard</h1><p>{escape(message)}</p>"
        "</body></html>"
    )
    return HTMLResponse(page, status_code=status, headers=headers)


__all__ = ["COOKIE", "CSRF_FIELD", "CSRF_HEADER", "Guard", "check_token", "is_loopback"]
