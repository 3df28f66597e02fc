"""The dashboard's FastAPI application: `create_app(store, token=...)`.

It serves the pages (`reflow.ui.pages`), the JSON API under `/api/` (`reflow.ui.api`, its
OpenAPI schema at `/openapi.json`) and the packaged static files under `/static/`, every
request through the `Guard` (token, Host, CSRF). There is no `/docs`: FastAPI's Swagger UI
loads its scripts from a CDN, and the dashboard loads nothing from outside; `/api` lists the
API's endpoints instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import Response

from reflow.store.base import SQLStore
from reflow.store.control import Refused
from reflow.ui.actions import Actions
from reflow.ui.auth import Guard
from reflow.ui.data import BadRequest, NotFound
from reflow.ui.render import Renderer

HERE = Path(__file__).parent
STATIC = HERE / "static"


@dataclass
class Dashboard:
    """What the routes share: the store, its name, the guard, the actions and the pages'
    renderer (`request.app.state.dashboard`)."""

    store: SQLStore
    location: str | None
    guard: Guard
    actions: Actions
    renderer: Renderer


def store_location(store: str | Path | SQLStore | None) -> str | None:
    """How `reflow runs resume --store` names the store (None: the default one)."""
    if store is None or isinstance(store, str | Path):
        return None if store is None else str(store)
    url = getattr(store, "url", None)
    if isinstance(url, str):
        return url
    path = getattr(store, "path", None)
    return str(path) if path is not None else None


def create_app(store: str | Path | SQLStore | None = None, *, token: str | None = None) -> FastAPI:
    """The dashboard over `store` (a URL, a path, a store object, or None: the default
    store). With `token`, every request must carry it (see `reflow.ui.auth`)."""
    from reflow import __version__
    from reflow.store import open_store
    from reflow.ui import api, pages

    if isinstance(store, str) and store == "memory":
        raise ValueError(
            "the store is 'memory': nothing is kept to look at; give the dashboard a store "
            "(--store URL, or unset REFLOW_STORE)"
        )
    guard = Guard(token)
    opened = store if isinstance(store, SQLStore) else open_store(store)
    location = store_location(store)
    owns = not isinstance(store, SQLStore)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns:
            opened.close()

    app = FastAPI(
        title="reflow dashboard",
        version=__version__,
        summary="Runs kept in a reflow store: read them, resume or cancel them.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.dashboard = Dashboard(
        store=opened,
        location=location,
        guard=guard,
        actions=Actions(opened, location),
        renderer=Renderer(guard.csrf_token, repr(opened)),
    )
    app.add_middleware(BaseHTTPMiddleware, dispatch=guard)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _handle_errors(app)
    return app


def _handle_errors(app: FastAPI) -> None:
    """Lookups that fail are 404s, bad filters 422s, refused actions 409s: as JSON under
    /api/, as a page elsewhere."""

    def answer(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": message}, status_code=status)
        dashboard: Dashboard = request.app.state.dashboard
        page = dashboard.renderer.page("error.html", status=status, message=message)
        return HTMLResponse(page, status_code=status)

    async def not_found(request: Request, exc: Exception) -> Response:
        return answer(request, 404, str(exc))

    async def bad_request(request: Request, exc: Exception) -> Response:
        return answer(request, 422, str(exc))

    async def refused(request: Request, exc: Exception) -> Response:
        return answer(request, 409, str(exc))

    async def http_error(request: Request, exc: Any) -> Response:
        if request.url.path.startswith("/api/") or not isinstance(exc, StarletteHTTPException):
            return JSONResponse(
                {"detail": getattr(exc, "detail", "error")},
                status_code=getattr(exc, "status_code", 500),
                headers=getattr(exc, "headers", None),
            )
        return answer(request, exc.status_code, str(exc.detail))

    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(BadRequest, bad_request)
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(StarletteHTTPException, http_error)


__all__ = ["Dashboard", "create_app", "store_location"]
