"""What every node and tool needs from LangGraph's runtime, with errors users understand."""

from __future__ import annotations

from typing import Any

from langgraph.store.base import BaseStore

from memshelf.errors import ConfigurationError, MissingUserIdError
from memshelf.namespaces import encode_label


def require_user_id(config: Any) -> str:
    """The ``user_id`` from ``config["configurable"]``, validated."""
    configurable = (config or {}).get("configurable") or {}
    user_id = configurable.get("user_id")
    if user_id is None or (isinstance(user_id, str) and not user_id.strip()):
        raise MissingUserIdError(
            "No user_id in the run config. Pass it with every call, e.g. "
            "graph.invoke(inputs, config={'configurable': {'user_id': 'alice', "
            "'thread_id': 't1'}}) (or `memshelf ask --user alice`)."
        )
    encode_label(str(user_id))  # same rules as the namespace it will address
    return str(user_id)


def require_store(store: BaseStore | None) -> BaseStore:
    """The long-term store, or an error saying how to compile the graph with one."""
    if store is None:
        raise ConfigurationError(
            "This graph has no long-term store. Compile it with one: "
            "graph.compile(checkpointer=..., store=memshelf.open_store()), or use "
            "memshelf.agent.build_agent(), which does."
        )
    return store
