"""Templates: one autoescaping Jinja environment, and the context every page gets."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.responses import Response

from memshelf.ui.session import CSRF_FIELD, CSRF_HEADER, Viewer, base_path

HERE = Path(__file__).parent
HTMX_FILE = "htmx-2.0.11.min.js"  # vendored from npm htmx.org@2.0.11; sha256 in static/VENDORED.md


def _when(value: Any) -> str:
    """A timestamp as a short UTC string (ISO strings and datetimes alike)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    text = str(value or "")
    return text[:16].replace("T", " ") + (" UTC" if len(text) >= 16 else "")


def segment(value: Any) -> str:
    """One URL path segment: every reserved character escaped, '/' included."""
    return quote(str(value), safe="")


_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=True,  # memory text, transcripts and errors are always escaped
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["when"] = _when
_env.filters["segment"] = segment
templates = Jinja2Templates(env=_env)


def render(
    request: Request,
    name: str,
    viewer: Viewer | None = None,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """Render a page with what the layout needs: the mount path, the viewer and their
    CSRF token (as the form field name and the header htmx sends)."""
    return templates.TemplateResponse(
        request,
        name,
        {
            "base": base_path(request),
            "viewer": viewer,
            "csrf_field": CSRF_FIELD,
            "csrf_header": CSRF_HEADER,
            "htmx_file": HTMX_FILE,
            "notice": None,
            **context,
        },
        status_code=status_code,
    )
