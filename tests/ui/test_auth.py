"""Who may use the dashboard: loopback without a token, the token on every request when
there is one (compared in constant time), the Host check, and CSRF on POSTs."""

from __future__ import annotations

import hmac
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reflow.ui import auth, create_app
from reflow.ui.server import UnsafeBind, check_bind

from .conftest import BASE

TOKEN = "a-long-enough-token-0123456789"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("localhost", True), ("::1", True),
     ("[::1]", True), ("0.0.0.0", False), ("::", False), ("192.168.1.4", False),
     ("example.org", False), ("", False)],
)  # fmt: skip
def test_which_hosts_are_loopback(host: str, loopback: bool) -> None:
    assert auth.is_loopback(host) is loopback


def test_binding_beyond_loopback_needs_a_token() -> None:
    assert check_bind("127.0.0.1", None) is None
    with pytest.raises(UnsafeBind, match=r"--host 0\.0\.0\.0 is not a loopback address.*"
                       r"--token TOKEN, or REFLOW_UI_TOKEN"):  # fmt: skip
        check_bind("0.0.0.0", None)
    assert check_bind("0.0.0.0", TOKEN) == TOKEN
    with pytest.raises(ValueError, match="at least 16 characters"):
        check_bind("0.0.0.0", "short")


def test_without_a_token_requests_must_name_a_loopback_host(
    sqlite_store: str, client_of: Any
) -> None:
    client = client_of(sqlite_store)
    assert client.get("/api/runs").status_code == 200
    assert client.get("/api/runs", headers={"host": "localhost:8400"}).status_code == 200
    rebound = client.get("/api/runs", headers={"host": "evil.example:8400"})
    assert rebound.status_code == 400
    assert "loopback addresses only" in rebound.json()["detail"]


def test_with_a_token_every_request_must_carry_it(sqlite_store: str, client_of: Any) -> None:
    client = client_of(sqlite_store, token=TOKEN)
    for path in ("/", "/api/runs", "/static/app.css", "/openapi.json", "/schedules"):
        assert client.get(path).status_code == 401, path
    assert client.get("/api/runs").headers["www-authenticate"] == "Bearer"
    bearer = {"authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/runs", headers=bearer).status_code == 200
    assert client.get("/api/runs", headers={"authorization": "Bearer wrong"}).status_code == 401
    # other names are fine with a token: the token guards
    assert client.get("/api/runs", headers={**bearer, "host": "box.lan"}).status_code == 200


def test_opening_a_page_with_the_token_sets_a_cookie_and_drops_it_from_the_address(
    sqlite_store: str,
) -> None:
    client = TestClient(create_app(sqlite_store, token=TOKEN), base_url=BASE)
    first = client.get(f"/schedules?token={TOKEN}&x=1", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/schedules?x=1"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert TOKEN not in cookie
    assert client.get("/schedules").status_code == 200  # the cookie now
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/?token=wrong-token-0000000000").status_code == 401
    client.cookies.clear()
    client.cookies.set(auth.COOKIE, "forged")
    assert client.get("/").status_code == 401


def test_tokens_are_compared_in_constant_time(
    sqlite_store: str, client_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    client = client_of(sqlite_store, token=TOKEN)
    client.get("/api/runs", headers={"authorization": "Bearer guess"})
    assert (b"guess", TOKEN.encode()) in compared


def test_a_post_needs_the_csrf_token_and_a_matching_origin(
    sqlite_store: str, client_of: Any
) -> None:
    client = client_of(sqlite_store)
    csrf = client.get("/api/csrf").json()["csrf_token"]
    bare = client.post("/api/runs/nope/cancel")
    assert bare.status_code == 403
    assert "CSRF token" in bare.json()["detail"]
    wrong = client.post("/api/runs/nope/cancel", headers={"x-reflow-csrf": "0" * 64})
    assert wrong.status_code == 403
    ok = client.post("/api/runs/nope/cancel", headers={"x-reflow-csrf": csrf})
    assert ok.status_code == 404  # through the guard: there is no such run
    form = client.post("/runs/nope/cancel", data={"csrf_token": csrf})
    assert form.status_code == 404
    foreign = client.post(
        "/api/runs/nope/cancel", headers={"x-reflow-csrf": csrf, "origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert "evil.example" in foreign.json()["detail"]
    same = client.post("/api/runs/nope/cancel", headers={"x-reflow-csrf": csrf, "origin": BASE})
    assert same.status_code == 404


def test_a_bearer_post_needs_no_csrf_token(sqlite_store: str, client_of: Any) -> None:
    client = client_of(sqlite_store, token=TOKEN)
    answer = client.post("/api/runs/nope/cancel", headers={"authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 404
    cookie_only = client_of(sqlite_store, token=TOKEN)
    cookie_only.get(f"/?token={TOKEN}")
    assert cookie_only.post("/api/runs/nope/cancel").status_code == 403


def test_responses_carry_security_headers(sqlite_store: str, client_of: Any) -> None:
    headers = client_of(sqlite_store).get("/").headers
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
