"""The memshelf service: a LangGraph-server-compatible API plus memshelf's own ``/v1``."""

from memshelf.service.app import create_app

__all__ = ["create_app"]
