"""The pages' templates (Jinja2, autoescaped, shipped in `reflow/ui/templates/`) and the
helpers they use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape

from reflow import __version__
from reflow.ui import fmt
from reflow.ui.masking import mask_text
from reflow.ui.svg import type_class

TEMPLATES = Path(__file__).parent / "templates"


def query(base: dict[str, Any], **changes: Any) -> str:
    """`?a=1&b=2`: the page's query with `changes` (None removes a key)."""
    merged = {**base, **changes}
    kept = {k: v for k, v in merged.items() if v not in (None, "", False)}
    return "?" + urlencode(kept) if kept else "?"


def pretty(value: Any) -> str:
    """A JSON-able value as indented JSON (for parameters and results)."""
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)


class Renderer:
    """Renders the templates with what every page needs (the CSRF token, the store's name)."""

    def __init__(self, csrf_token: str, store_name: str) -> None:
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            when=fmt.when,
            iso=fmt.iso,
            seconds=fmt.seconds,
            relative=fmt.relative,
            kind=type_class,
            pretty=pretty,
        )
        self.env.globals.update(
            csrf_token=csrf_token,
            store_name=mask_text(store_name),
            version=__version__,
            query=query,
            final_types=fmt.FINAL_TYPES,
        )

    def page(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)


__all__ = ["Renderer", "pretty", "query"]
