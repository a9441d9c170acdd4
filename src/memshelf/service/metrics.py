"""Prometheus metrics of one app, in the app's own registry (never the global one).

- ``memshelf_http_requests_total{method,route,status}`` and
  ``memshelf_http_request_duration_seconds{method,route}``: route is the path template;
- ``memshelf_recall_duration_seconds``: the agent's recall node (it waits for the
  user's pending memories, then searches the shelf);
- ``memshelf_model_call_duration_seconds{phase}`` and
  ``memshelf_model_tokens_total{phase,direction}``: chat model calls, ``phase`` being
  the graph node that made them or ``extraction`` for the memory writer (tokens when
  the model reports usage, as the local and hosted models do);
- ``memshelf_extraction_queued``, ``memshelf_extraction_running`` and
  ``memshelf_extraction_lag_seconds`` (age of the oldest message not yet extracted),
  read from the memory writer at scrape time.

``GET /metrics`` needs an admin key (Prometheus: ``authorization: {credentials_file: …}``):
route names and volumes are not for every key holder. Each service process has its
own registry, so with ``--workers N`` a scrape shows the worker that answered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from memshelf.memory.writer import Backlog

log = logging.getLogger(__name__)
EXTRACTION = "extraction"  # the phase of model calls made outside a graph run
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)


@runtime_checkable
class HasBacklog(Protocol):
    def backlog(self) -> Backlog: ...


class ServiceMetrics:
    """Every metric the service exports, registered in ``registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "memshelf_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "memshelf_http_request_duration_seconds",
            "Time to answer an HTTP request (to the last byte of a stream).",
            ["method", "route"],
            buckets=_FAST,
            registry=r,
        )
        self.recall = Histogram(
            "memshelf_recall_duration_seconds",
            "Time of the agent's recall step (read-your-writes wait + shelf search).",
            buckets=_FAST,
            registry=r,
        )
        self.model_seconds = Histogram(
            "memshelf_model_call_duration_seconds",
            "Time of one chat model call, by phase (graph node, or extraction).",
            ["phase"],
            buckets=_SLOW,
            registry=r,
        )
        self.model_tokens = Counter(
            "memshelf_model_tokens",
            "Tokens the chat model read (input) and wrote (output), by phase.",
            ["phase", "direction"],
            registry=r,
        )
        self.backlog = _BacklogCollector()
        r.register(self.backlog)
        self.callback = MetricsCallback(self)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def watch(self, graph: Any, writer: object | None, model: BaseChatModel | None) -> None:
        """Time the graph's recall node and model calls, the ``model``'s calls outside the
        graph (extraction), and read ``writer``'s backlog at every scrape."""
        attach_callback(graph, self.callback)
        if model is not None:
            add_model_callback(model, self.callback)
        self.backlog.writer = writer if isinstance(writer, HasBacklog) else None

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _BacklogCollector(Collector):
    """The memory writer's queue, read when Prometheus scrapes (nothing to keep in sync)."""

    def __init__(self) -> None:
        self.writer: HasBacklog | None = None

    def collect(self) -> Iterator[Metric]:
        writer = self.writer
        if writer is None:
            return
        try:
            backlog = writer.backlog()
        except Exception as exc:  # a queue on a Redis that is away: the scrape goes on
            log.warning("extraction backlog unavailable: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily(
            "memshelf_extraction_queued", "Messages waiting for extraction.", backlog.queued
        )
        yield GaugeMetricFamily(
            "memshelf_extraction_running", "Threads being extracted now.", backlog.running
        )
        yield GaugeMetricFamily(
            "memshelf_extraction_lag_seconds",
            "Age of the oldest message not yet extracted (0 when none waits).",
            backlog.oldest_s,
        )


class MetricsCallback(BaseCallbackHandler):
    """LangChain callbacks that time the recall node and chat model calls."""

    run_inline = True  # cheap, and in order: never handed to an executor

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics
        self._started: dict[UUID, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def _start(self, run_id: UUID, phase: str | None) -> None:
        with self._lock:
            self._started[run_id] = (time.perf_counter(), phase)

    def _stop(self, run_id: UUID) -> tuple[float, str | None] | None:
        with self._lock:
            found = self._started.pop(run_id, None)
        return None if found is None else (time.perf_counter() - found[0], found[1])

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("name") == "recall" and (metadata or {}).get("langgraph_node") == "recall":
            self._start(run_id, None)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if (done := self._stop(run_id)) is not None:
            self.metrics.recall.observe(done[0])

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._stop(run_id)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: Any,
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, str((metadata or {}).get("langgraph_node") or EXTRACTION))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        done = self._stop(run_id)
        if done is None:
            return
        seconds, phase = done
        phase = phase or EXTRACTION
        self.metrics.model_seconds.labels(phase).observe(seconds)
        used_in, used_out = _usage(response)
        if used_in:
            self.metrics.model_tokens.labels(phase, "input").inc(used_in)
        if used_out:
            self.metrics.model_tokens.labels(phase, "output").inc(used_out)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._stop(run_id)


def _usage(response: LLMResult) -> tuple[int, int]:
    """(input, output) tokens a model reported, or zeros."""
    used_in = used_out = 0
    for generations in response.generations:
        for generation in generations:
            if isinstance(generation, ChatGeneration) and isinstance(generation.message, AIMessage):
                usage: Mapping[str, Any] = generation.message.usage_metadata or {}
                used_in += int(usage.get("input_tokens", 0))
                used_out += int(usage.get("output_tokens", 0))
    return used_in, used_out


def attach_callback(graph: Any, handler: BaseCallbackHandler) -> None:
    """Add ``handler`` to the config every run of ``graph`` starts from (LangGraph merges
    ``graph.config`` into each call's config, with the caller's own callbacks)."""
    config = dict(getattr(graph, "config", None) or {})
    callbacks = config.get("callbacks")
    if callbacks is None:
        config["callbacks"] = [handler]
    elif isinstance(callbacks, list):
        if handler not in callbacks:
            config["callbacks"] = [*callbacks, handler]
    else:  # a callback manager
        callbacks.add_handler(handler)
    graph.config = config


def add_model_callback(model: BaseChatModel, handler: BaseCallbackHandler) -> None:
    """Let ``model`` report every call to ``handler`` (inside a graph run, LangChain sees
    the same handler twice and keeps one)."""
    callbacks = model.callbacks
    if callbacks is None:
        model.callbacks = [handler]
    elif isinstance(callbacks, list):
        if handler not in callbacks:
            model.callbacks = [*callbacks, handler]
    else:
        callbacks.add_handler(handler)
