"""The MCP server: thin tools over :mod:`memshelf.ops`, for desktop clients over stdio
(``memshelf mcp --user U``) and for remote agents over streamable HTTP at the service's
``/mcp`` (see :mod:`memshelf.mcp.http`), authorised by the same API keys."""

from memshelf.mcp.access import Access, Caller, KeyAccess, LocalAccess
from memshelf.mcp.server import TOOLSETS, build_server, serve_stdio

__all__ = [
    "TOOLSETS",
    "Access",
    "Caller",
    "KeyAccess",
    "LocalAccess",
    "build_server",
    "serve_stdio",
]
