"""The dashboard, `reflow ui`: a local web app over a store (FastAPI, server-rendered pages,
a JSON API under /api/). Needs the `reflow[ui]` extra; nothing else in reflow imports it.

    from reflow.ui import create_app
    app = create_app("runs.db")             # an ASGI app: serve it with uvicorn
"""

from reflow.ui.app import create_app

__all__ = ["create_app"]
