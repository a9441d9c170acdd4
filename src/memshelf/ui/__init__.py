"""The web memory inspector at ``/ui``: server-rendered pages (Jinja2, autoescaped) with
htmx vendored as a static file, over the same operations as the API, CLI and MCP server.

It is a sub-application mounted in the service (``app.mount("/ui", create_ui(app))``)
and reads the service's open store, agent and keys from the parent app, so it adds no
second store or key check. Its routes take a cookie session, not an API-key header, and
are outside the API's route table and OpenAPI schema on purpose.
"""

from __future__ import annotations

from memshelf.ui.app import create_ui

__all__ = ["create_ui"]
