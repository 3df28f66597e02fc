"""`reflow ui`: the dashboard over the store. Its packages (FastAPI, uvicorn, Jinja2) come
with the `reflow[ui]` extra and are imported here only, when the command runs."""

from __future__ import annotations

from typing import Annotated

import typer

from reflow.cli._common import CLIError, UsageError, handle_errors, store_url
from reflow.cli.run import StoreOpt

UI_PACKAGES = frozenset({"fastapi", "starlette", "uvicorn", "jinja2", "markupsafe"})


@handle_errors
def ui(
    store: StoreOpt = None,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            metavar="ADDRESS",
            help="Where to listen. Anything but a loopback address (127.0.0.1, localhost, "
            "::1) needs --token.",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="The port (0: a free one).")
    ] = 8400,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            metavar="TOKEN",
            envvar="REFLOW_UI_TOKEN",
            show_envvar=True,
            help="Every request must carry it (Authorization: Bearer, or open /?token=TOKEN "
            "once). 16 characters or more.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the dashboard: runs (filter, live), a run's task graph, attempt timeline,
    retries, logs and parameters (secrets masked), resume and cancel buttons, schedules,
    and a JSON API under /api/. Needs `pip install 'reflow[ui]'`.

    **Examples**

    ```
    reflow ui
    reflow ui --store postgresql://db/reflow --port 8500
    export REFLOW_UI_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')
    reflow ui --host 0.0.0.0
    ```
    """
    try:
        from reflow.ui.server import UnsafeBind, serve
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in UI_PACKAGES:
            raise
        raise CLIError(
            f"the dashboard needs the ui extra, and {missing} is not installed: "
            "pip install 'reflow[ui]'"
        ) from None
    url = store_url(store)
    if url == "memory":
        raise UsageError(
            "the store is 'memory' (REFLOW_STORE): nothing is kept to look at; give --store URL "
            "or unset REFLOW_STORE"
        )
    try:
        serve(url, host=host, port=port, token=token)
    except UnsafeBind as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:  # a token too short
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise CLIError(str(exc)) from None
