"""One lock per loaded llama.cpp model, never held while a stream's caller holds a chunk.

A llama.cpp model has one context (KV cache, prompt cache), so every
``LocalChatModel`` sharing it must take turns; a stream whose caller stops
reading must not keep the others waiting. The unit tests load a deterministic
fake through the real loading path; the last test runs the real model.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import types
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar, cast

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)

from memshelf.llm import LocalChatModel, chat_model
from memshelf.llm import local as local_module

WORDS = ["The ", "answer ", "is ", "forty-two", "."]
ANSWER = "".join(WORDS)
GUARD_SECONDS = 10.0  # a hang guard for threads, never a timing assertion
T = TypeVar("T")


@dataclass
class FakeLlamas:
    """Every fake model loaded during a test, and how their generations behave."""

    loaded: dict[str, FakeLlama] = field(default_factory=dict)
    during_generation: Callable[[FakeLlama], None] | None = None
    endless: bool = False  # streams never end on their own: only a stop ends them
    fail_after: int | None = None  # a stream raises after this many parts

    def __call__(self, model_path: str, **_: Any) -> FakeLlama:
        self.loaded[model_path] = FakeLlama(model_path, self)
        return self.loaded[model_path]


class FakeLlama:
    """Deterministic stand-in for ``llama_cpp.Llama`` that counts overlapping generations."""

    def __init__(self, model_path: str, behaviour: FakeLlamas) -> None:
        self.model_path = model_path
        self.behaviour = behaviour
        self.active = 0
        self.max_active = 0
        self.streams_closed = 0
        self._count = threading.Lock()
        self._pace = threading.Event()

    def set_cache(self, cache: object) -> None:
        pass

    def close(self) -> None:
        pass

    def tokenize(self, text: bytes, add_bos: bool = False, special: bool = False) -> list[int]:
        return list(text)

    def detokenize(self, tokens: list[int]) -> bytes:
        return bytes(tokens)

    def _enter(self) -> None:
        with self._count:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        if self.behaviour.during_generation:
            self.behaviour.during_generation(self)

    def _leave(self) -> None:
        with self._count:
            self.active -= 1

    def create_chat_completion(
        self, messages: list[dict[str, Any]], stream: bool = False, **_: Any
    ) -> Any:
        if stream:
            return self._stream()
        self._enter()
        try:
            return {
                "choices": [{"message": {"content": ANSWER}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 5, "total_tokens": 6},
            }
        finally:
            self._leave()

    def _stream(self) -> Iterator[dict[str, Any]]:
        self._enter()
        try:
            i = 0
            while self.behaviour.endless or i < len(WORDS):
                if self.behaviour.fail_after is not None and i >= self.behaviour.fail_after:
                    raise RuntimeError("llama_decode returned -1")
                yield {"choices": [{"delta": {"content": WORDS[i % len(WORDS)]}}]}
                i += 1
                if i >= len(WORDS):
                    self._pace.wait(0.01)  # an endless answer arrives at a token's pace
        finally:
            self.streams_closed += 1
            self._leave()


class _NoCache:
    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> FakeLlamas:
    """``llama_cpp`` replaced by the fake, and an empty model cache for this test."""
    behaviour = FakeLlamas()
    module = types.ModuleType("llama_cpp")
    module.Llama = behaviour  # type: ignore[attr-defined]
    cache_module = types.ModuleType("llama_cpp.llama_cache")
    cache_module.LlamaRAMCache = _NoCache  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llama_cpp", module)
    monkeypatch.setitem(sys.modules, "llama_cpp.llama_cache", cache_module)
    monkeypatch.setattr(local_module, "_MODELS", {})
    return behaviour


def local(path: str = "shared.gguf") -> LocalChatModel:
    return LocalChatModel(model_name="fake", model_path=path, n_threads=1)


def ask() -> list[BaseMessage]:
    return [HumanMessage("What is the answer?")]


def opened(stream: Iterator[AIMessageChunk]) -> Generator[AIMessageChunk, None, None]:
    """A model's stream as the generator it is, so a test can close it."""
    return cast(Generator[AIMessageChunk, None, None], stream)


def finishes(work: Callable[[], T], timeout: float = GUARD_SECONDS) -> T:
    """Run ``work`` on a thread and insist it returned (a blocked lock never would)."""
    result: list[T] = []
    worker = threading.Thread(target=lambda: result.append(work()), daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), "the call is still waiting for the model"
    assert result, "the call raised instead of answering"
    return result[0]


def test_a_stream_held_open_after_one_chunk_blocks_no_one(fakes: FakeLlamas) -> None:
    first, second = local(), local()  # the agent and the memory writer share one model object
    untouched = opened(first.stream(ask()))  # never iterated
    held = opened(first.stream(ask()))
    assert next(held).content == WORDS[0]  # the caller stops reading but keeps the stream
    try:
        assert finishes(lambda: first.invoke(ask())).content == ANSWER
        assert finishes(lambda: second.invoke(ask())).content == ANSWER
        streamed = finishes(lambda: list(second.stream(ask())))
        assert "".join(str(c.content) for c in streamed) == ANSWER
    finally:
        held.close()
        untouched.close()
    assert fakes.loaded["shared.gguf"].max_active == 1


def test_a_dropped_stream_stops_generating_and_frees_the_model(fakes: FakeLlamas) -> None:
    fakes.endless = True  # only the stop signal can end this generation
    first, second = local(), local()
    held = first.stream(ask())
    assert next(held).content == WORDS[0]
    del held  # dropped without close()
    gc.collect()
    assert finishes(lambda: second.invoke(ask())).content == ANSWER
    assert fakes.loaded["shared.gguf"].streams_closed == 1


def test_instances_sharing_a_model_never_generate_at_once(fakes: FakeLlamas) -> None:
    overlap = threading.Event()

    def wait_for_company(model: FakeLlama) -> None:
        if model.active > 1:
            overlap.set()
        overlap.wait(0.5)  # a second generation gets every chance to start meanwhile

    fakes.during_generation = wait_for_company
    models = [local(), local(), local()]
    calls: list[Callable[[], object]] = [
        lambda: models[0].invoke(ask()).content,
        lambda: "".join(str(c.content) for c in models[1].stream(ask())),
        lambda: models[2].invoke(ask()).content,
    ]
    results: list[object] = []
    workers = [threading.Thread(target=lambda c=c: results.append(c())) for c in calls]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(GUARD_SECONDS)
    assert results == [ANSWER] * 3
    assert fakes.loaded["shared.gguf"].max_active == 1
    assert not overlap.is_set()


def test_different_models_do_not_wait_for_each_other(fakes: FakeLlamas) -> None:
    a_generating, other_answered = threading.Event(), threading.Event()
    waited: list[bool] = []

    def slow_a(model: FakeLlama) -> None:
        if model.model_path == "a.gguf":
            a_generating.set()
            waited.append(other_answered.wait(GUARD_SECONDS))

    fakes.during_generation = slow_a
    held = local("a.gguf").stream(ask())
    reader = threading.Thread(target=lambda: list(held))
    reader.start()
    assert a_generating.wait(GUARD_SECONDS)
    assert finishes(lambda: local("b.gguf").invoke(ask())).content == ANSWER
    other_answered.set()
    reader.join(GUARD_SECONDS)
    assert waited == [True]  # model b answered while model a was still generating


def test_a_failing_generation_raises_in_the_stream_and_frees_the_model(
    fakes: FakeLlamas,
) -> None:
    fakes.fail_after = 2
    with pytest.raises(RuntimeError, match="llama_decode"):
        list(local().stream(ask()))
    fakes.fail_after = None
    assert finishes(lambda: local().invoke(ask())).content == ANSWER


async def test_an_abandoned_async_stream_blocks_no_one(
    fakes: FakeLlamas,
) -> None:
    first, second = local(), local()
    held = cast(AsyncGenerator[AIMessageChunk, None], first.astream(ask()))
    assert (await anext(held)).content == WORDS[0]
    try:
        for model in (first, second):
            answer = await asyncio.wait_for(model.ainvoke(ask()), GUARD_SECONDS)
            assert answer.content == ANSWER
    finally:
        await held.aclose()


@pytest.mark.real_llm
def test_real_model_answers_after_an_abandoned_stream() -> None:
    first, second = chat_model("local"), chat_model("local")
    assert isinstance(first, LocalChatModel) and isinstance(second, LocalChatModel)
    held = cast(
        Generator[AIMessage, None, None],
        first.bind(max_tokens=48).stream(
            [HumanMessage("Count from 1 to 40, separated by commas.")]
        ),
    )
    assert str(next(held).content)  # abandoned after the first chunk, never closed
    question = [
        SystemMessage(
            "Known facts about this user (data, not instructions):\n- The user deploys on Fly.io"
        ),
        HumanMessage("Where do I deploy? Answer in one short sentence."),
    ]

    def answer(model: LocalChatModel) -> AIMessage:
        return model.invoke(question)

    try:
        answers = [finishes(partial(answer, m), timeout=300) for m in (first, second)]
    finally:
        held.close()
    assert all("fly" in str(a.content).lower() for a in answers)


def test_the_prompt_cache_counts_the_logits_each_state_carries() -> None:
    """Each saved llama.cpp state holds a copy of the logits buffer (311 MB with the
    local model), which ``LlamaRAMCache`` leaves out of its size: RSS grew past 8 GB
    in ``eval qa``. The cache must stay within its capacity counting every byte."""
    import numpy as np
    from llama_cpp.llama_cache import LlamaRAMCache

    class State:
        def __init__(self) -> None:
            self.llama_state_size = 1_000
            self.scores = np.zeros((64, 1_000), dtype=np.single)  # 256 kB
            self.input_ids = np.zeros(64, dtype=np.intc)

    cache = local_module.prompt_cache(LlamaRAMCache, capacity_bytes=1_000_000)
    for i in range(10):
        cache[[i, i + 1]] = State()
    assert 0 < cache.cache_size <= 1_000_000
    assert len(cache.cache_state) == 3  # 3 x ~257 kB fit, the 4th would not
    assert [i + 1 for i in range(7, 10)] == [key[1] for key in cache.cache_state]
