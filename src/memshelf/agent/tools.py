"""The agent's tools. Memory tools act on the calling user's shelf only; what they
return from memory is quoted data. Research tools reach the web and the user's notes.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.tools import BaseTool, tool
from langgraph.prebuilt import ToolRuntime

from memshelf.agent.research import (
    FetchError,
    NotesIndex,
    WebSearchDisabled,
    fetch_text,
    web_search,
)
from memshelf.agent.runtime import require_store, require_user_id
from memshelf.config import Settings
from memshelf.memory import Provenance, forget, recall, save_fact
from memshelf.memory.guard import quote_facts


@tool
def search_memory(query: str, runtime: ToolRuntime) -> str:
    """Search what you remember about the user (facts they told you in earlier chats)."""
    store, user_id = require_store(runtime.store), require_user_id(runtime.config)
    facts = recall(store, user_id, query, k=5)
    return quote_facts([f.text for f in facts])


@tool
def save_memory(fact: str, runtime: ToolRuntime) -> str:
    """Remember one fact the user stated about themselves, as a short sentence."""
    store, user_id = require_store(runtime.store), require_user_id(runtime.config)
    thread = (runtime.config.get("configurable") or {}).get("thread_id")
    save_fact(store, user_id, fact, Provenance(thread_id=thread, source="tool"))
    return f"Saved: {json.dumps(fact)}"


@tool
def forget_memory(what: str, runtime: ToolRuntime) -> str:
    """Forget a fact about the user when they ask you to (describe the fact to forget)."""
    store, user_id = require_store(runtime.store), require_user_id(runtime.config)
    gone = forget(store, user_id, what, provenance=Provenance(source="tool"))
    if not gone:
        return f"Nothing matching {json.dumps(what)} was stored."
    return "Forgotten: " + "; ".join(json.dumps(g) for g in gone)


def research_tools(settings: Settings) -> list[BaseTool]:
    """web_search, fetch_url and search_notes, configured from settings."""

    @tool("web_search")
    def web_search_tool(query: str) -> str:
        """Search the web; returns titles, URLs and snippets."""
        try:
            hits = web_search(
                query,
                provider=settings.web_search,
                api_key=settings.tavily_api_key.get_secret_value()
                if settings.tavily_api_key
                else None,
                base_url=settings.web_search_url,
            )
        except WebSearchDisabled as exc:
            return str(exc)
        except Exception as exc:  # the provider's failure is the model's information
            return f"Web search failed: {exc}"
        return "\n".join(f"- {h.title} ({h.url}): {h.snippet}" for h in hits) or "No results."

    @tool("fetch_url")
    def fetch_url_tool(url: str) -> str:
        """Fetch a web page and return its readable text."""
        try:
            return fetch_text(
                url,
                max_bytes=settings.fetch_max_bytes,
                timeout=settings.fetch_timeout_s,
                allow_private=settings.fetch_allow_private,
            )
        except FetchError as exc:
            return f"Could not fetch: {exc}"

    @tool("search_notes")
    def search_notes_tool(query: str, runtime: ToolRuntime) -> str:
        """Search the user's own notes (Markdown and text files) by meaning."""
        if settings.notes_dir is None:
            return "No notes folder is configured (set MEMSHELF_NOTES_DIR)."
        store, user_id = require_store(runtime.store), require_user_id(runtime.config)
        hits = NotesIndex(store, user_id, settings.notes_dir).search(query)
        if not hits:
            return "No matching notes."
        return "\n\n".join(f"[{path}]\n{text}" for path, text, _ in hits)

    return [web_search_tool, fetch_url_tool, search_notes_tool]


def default_tools(settings: Settings) -> list[Any]:
    return [search_memory, save_memory, forget_memory, *research_tools(settings)]
