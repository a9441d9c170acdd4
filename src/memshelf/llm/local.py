"""The offline default chat model: a GGUF model run in-process by llama.cpp.

``LocalChatModel`` is a LangChain ``BaseChatModel``, so the agent and the
memory engine use it exactly like a hosted model: ``bind_tools`` (the model's
own chat template renders the tools; ``<tool_call>`` blocks in its answer
become ``AIMessage.tool_calls``), ``with_structured_output`` (decoding is
constrained by llama.cpp's JSON-schema grammar, so output always parses),
and streaming. History that does not fit the context window is trimmed from
the oldest turns; the call never fails for being too long.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import ToolCall
from langchain_core.messages.tool import tool_call as make_tool_call
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict

from memshelf.errors import ModelError, ModelFileError

_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


@dataclass(frozen=True)
class LoadedModel:
    """A llama.cpp model and the lock every generation on it holds.

    The model has one context (KV cache, prompt cache), so generations take turns
    on it whichever ``LocalChatModel`` asks; different models never wait for each other.
    """

    llama: Any
    lock: threading.Lock


_MODELS: dict[tuple[str, int, int], LoadedModel] = {}
_LOAD_LOCK = threading.Lock()
_SHUTTING_DOWN = threading.Event()
# Tokens kept free for the template's own framing around the messages.
_TEMPLATE_SLACK = 64
_PROMPT_CACHE_BYTES = 3 << 29  # 1.5 GiB: about four prompts (see prompt_cache)
_EXIT_WAIT_S = 5.0


@atexit.register
def _close_models() -> None:
    """Free llama.cpp models before interpreter teardown (their __del__ fails after it).

    A stream still generating on a daemon thread stops at its next token first; a plain
    ``invoke`` cannot be interrupted, so exit waits for it only a few seconds and then
    leaves that model to the operating system rather than hang.
    """
    _SHUTTING_DOWN.set()
    for model in _MODELS.values():
        if model.lock.acquire(timeout=_EXIT_WAIT_S):
            try:
                model.llama.close()
            finally:
                model.lock.release()
    _MODELS.clear()


def load_model(path: str, n_ctx: int, n_threads: int) -> LoadedModel:
    """One llama.cpp model (and its lock) per (file, context, threads) per process."""
    key = (path, n_ctx, n_threads)
    with _LOAD_LOCK:
        if key not in _MODELS:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ModelError(
                    "llama-cpp-python is not installed; `make demo` builds it, or see the "
                    "README section 'The local chat model' for the pip command and flags."
                ) from exc
            try:
                from llama_cpp.llama_cache import LlamaRAMCache

                llama = Llama(
                    model_path=path,
                    n_ctx=n_ctx,
                    n_threads=n_threads,
                    n_threads_batch=n_threads,
                    seed=0,
                    verbose=False,
                )
                # The agent alternates prompts (answer, extract facts, answer...); keeping
                # the KV state of recent prompts lets each one resume from its cached prefix.
                llama.set_cache(prompt_cache(LlamaRAMCache, _PROMPT_CACHE_BYTES))
                _MODELS[key] = LoadedModel(llama, threading.Lock())
            except Exception as exc:
                raise ModelFileError(
                    f"llama.cpp could not load {path}: {exc}. Delete it and run "
                    "`memshelf models install` again."
                ) from exc
        return _MODELS[key]


def prompt_cache(base: type, capacity_bytes: int) -> Any:
    """llama.cpp's RAM prompt cache, bounded by what its states really hold.

    ``LlamaRAMCache`` counts only each saved state's KV bytes (~28 kB a token here),
    but every state also carries a copy of the model's logits buffer: n_batch x vocab
    floats, 311 MB with Qwen's 152k-token vocabulary. So "1 GiB" of KV kept dozens of
    states and the process grew past 8 GB during ``eval qa``. Here every byte counts."""

    class PromptCache(base):  # type: ignore[misc]
        @property
        def cache_size(self) -> int:
            return sum(
                int(state.llama_state_size)
                + int(getattr(state.scores, "nbytes", 0))
                + int(getattr(state.input_ids, "nbytes", 0))
                for state in self.cache_state.values()
            )

    return PromptCache(capacity_bytes=capacity_bytes)


def to_chat_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as the OpenAI-style dicts the model's chat template expects."""
    out: list[dict[str, Any]] = []
    for message in messages:
        text = str(message.text)
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": text})
        elif isinstance(message, HumanMessage):
            out.append({"role": "user", "content": text})
        elif isinstance(message, AIMessage):
            entry: dict[str, Any] = {"role": "assistant", "content": text}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": call.get("id") or "",
                        "type": "function",
                        "function": {"name": call["name"], "arguments": call["args"]},
                    }
                    for call in message.tool_calls
                ]
            out.append(entry)
        elif isinstance(message, ToolMessage):
            out.append({"role": "tool", "content": text, "tool_call_id": message.tool_call_id})
        else:
            out.append({"role": "user", "content": text})
    return out


def _json_objects(text: str) -> Iterator[tuple[int, int, Any]]:
    """Every top-level JSON value starting with '{' or '[' in ``text``, with its span."""
    decoder = json.JSONDecoder()
    i = 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except ValueError:
                i += 1
                continue
            yield i, end, value
            i = end
        else:
            i += 1


def _as_call(data: Any, names: set[str] | None) -> ToolCall | None:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    if names is not None and data["name"] not in names:
        return None
    args = data.get("arguments", data.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            args = {"input": args}
    return make_tool_call(
        name=data["name"],
        args=args if isinstance(args, dict) else {"input": args},
        id=f"call_{uuid.uuid4().hex[:12]}",
    )


def parse_tool_calls(text: str, names: set[str] | None = None) -> tuple[str, list[ToolCall]]:
    """Split an answer into prose and tool calls.

    Qwen's template asks for ``<tool_call>{json}</tool_call>``; small models often
    answer with a bare or fenced JSON object instead, so a JSON object naming one
    of the bound tools (``names``) counts as a call too.
    """
    calls: list[ToolCall] = []
    for raw in _TOOL_CALL.findall(text):
        for _, _, value in _json_objects(raw):
            call = _as_call(value, None)
            if call:
                calls.append(call)
    if calls:
        return _TOOL_CALL.sub("", text).strip(), calls
    spans = []
    for start, end, value in _json_objects(text):
        found = [
            c
            for c in (_as_call(v, names) for v in (value if isinstance(value, list) else [value]))
            if c
        ]
        if found:
            calls.extend(found)
            spans.append((start, end))
    if not calls:
        return text.strip(), []
    prose = text
    for start, end in reversed(spans):
        prose = prose[:start] + prose[end:]
    prose = re.sub(r"```(?:json)?\s*```", "", prose).strip()
    return prose, calls


def _call_key(call: ToolCall) -> str:
    return call["name"] + json.dumps(call["args"], sort_keys=True)


def _answered_calls(messages: Sequence[BaseMessage]) -> set[str]:
    """Tool calls in the history that already have a tool result."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    return {
        _call_key(call)
        for m in messages
        if isinstance(m, AIMessage)
        for call in m.tool_calls
        if call.get("id") in answered
    }


class LocalChatModel(BaseChatModel):
    """A chat model served by llama.cpp from a local GGUF file."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    late_system_messages: ClassVar[bool] = True  # its template accepts mid-chat system turns

    model_name: str
    model_path: str
    n_ctx: int = 4096
    n_threads: int = 0
    max_tokens: int = 512
    temperature: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "memshelf-local-llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "n_ctx": self.n_ctx}

    def _model(self) -> LoadedModel:
        return load_model(self.model_path, self.n_ctx, self.n_threads or (os.cpu_count() or 1))

    def _llama(self) -> Any:
        return self._model().llama

    # ---------------------------------------------------------------- tools / schema
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer the tools; ``tool_choice`` may be auto (default) or none, not a forced call."""
        if tool_choice == "none":
            return self.bind(**kwargs)
        if tool_choice not in (None, "auto"):
            raise ModelError(
                f"The local model cannot be forced to call a tool (tool_choice={tool_choice!r}); "
                "use tool_choice='auto', or a hosted model for forced tool calls."
            )
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Grammar-constrained JSON that matches ``schema`` (a pydantic class or JSON schema)."""
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            json_schema = schema.model_json_schema()
            parser: Runnable[Any, Any] = PydanticOutputParser(pydantic_object=schema)
        else:
            json_schema = (
                schema
                if isinstance(schema, dict) and "properties" in schema
                else convert_to_openai_tool(schema)["function"]["parameters"]
            )
            parser = JsonOutputParser()
        bound = self.bind(response_format={"type": "json_object", "schema": json_schema})
        if include_raw:
            return bound | RunnableLambda(
                lambda raw: {"raw": raw, "parsed": parser.invoke(raw), "parsing_error": None}
            )
        return bound | parser

    # ---------------------------------------------------------------- context window
    def _count(self, text: str) -> int:
        return len(self._llama().tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def fit_to_context(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> list[dict[str, Any]]:
        """Drop the oldest turns (never the system prompt or the last message) until they fit."""
        budget = self.n_ctx - self.max_tokens - _TEMPLATE_SLACK
        if tools:
            budget -= self._count(json.dumps(tools))
        cost = [self._count(json.dumps(m, ensure_ascii=False)) + 8 for m in messages]
        if sum(cost) <= budget:
            return messages
        system = [i for i, m in enumerate(messages) if m["role"] == "system"][:1]
        keep_last = len(messages) - 1
        fixed = set(system) | {keep_last}
        total = sum(cost[i] for i in fixed)
        kept: list[int] = []
        for i in range(keep_last - 1, -1, -1):
            if i in fixed:
                continue
            if total + cost[i] > budget:
                break
            kept.append(i)
            total += cost[i]
        chosen = sorted(fixed | set(kept))
        # A tool answer must not open the window without the call that asked for it.
        while len(chosen) > 1 and messages[chosen[len(system)]]["role"] == "tool":
            chosen.pop(len(system))
        result = [dict(messages[i]) for i in chosen]
        if total > budget:
            last = result[-1]
            room = max(budget - (total - cost[keep_last]), 32)
            tokens = self._llama().tokenize(str(last["content"]).encode(), add_bos=False)
            tail = self._llama().detokenize(tokens[-room:]).decode("utf-8", errors="ignore")
            last["content"] = "…" + tail
        return result

    # ---------------------------------------------------------------- generation
    def _call_args(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        tools = kwargs.get("tools")
        args: dict[str, Any] = {
            "messages": self.fit_to_context(to_chat_dicts(messages), tools),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "temperature": kwargs.get("temperature", self.temperature),
            "seed": 0,
            "stop": stop,
        }
        if tools:
            args["tools"] = tools
        if kwargs.get("response_format"):
            args["response_format"] = kwargs["response_format"]
        return args

    def _split(
        self, text: str, messages: list[BaseMessage], tools: list[dict[str, Any]] | None
    ) -> tuple[str, list[ToolCall], bool]:
        """(prose, new tool calls, whether the model only repeated calls already answered)."""
        if not tools:
            return text.strip(), [], False
        prose, calls = parse_tool_calls(text, {t["function"]["name"] for t in tools})
        fresh = [c for c in calls if _call_key(c) not in _answered_calls(messages)]
        return prose, fresh, bool(calls) and not fresh

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        args = self._call_args(messages, stop, kwargs)
        model = self._model()
        with model.lock:
            out = model.llama.create_chat_completion(**args)
        text = out["choices"][0]["message"].get("content") or ""
        prose, calls, repeated = self._split(text, messages, args.get("tools"))
        if repeated:
            # A small model that repeats an answered call is done with tools: ask again
            # without them, so it answers from the tool results it already has.
            args.pop("tools")
            with model.lock:
                out = model.llama.create_chat_completion(**args)
            prose = (out["choices"][0]["message"].get("content") or "").strip()
        usage = out.get("usage") or {}
        message = AIMessage(
            content=prose,
            tool_calls=calls,
            usage_metadata={
                "input_tokens": usage.get("prompt_tokens", 0),
                "output_tokens": usage.get("completion_tokens", 0),
                "total_tokens": usage.get("total_tokens", 0),
            },
            response_metadata={
                "model_name": self.model_name,
                "finish_reason": out["choices"][0].get("finish_reason"),
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _deltas(self, args: dict[str, Any]) -> Iterator[str]:
        """The answer's text pieces, generated on a thread that alone holds the model lock.

        A caller that stops reading (close, garbage collection, an exception) stops the
        generation at its next token; one that keeps the stream without reading holds
        the model only until the answer is complete, never while it sits on a chunk.
        """
        parts: queue.SimpleQueue[str | Exception | None] = queue.SimpleQueue()
        stop = threading.Event()
        threading.Thread(
            target=_generate_into,
            args=(self._model(), args, parts, stop),
            name=f"memshelf-llm-stream-{self.model_name}",
            daemon=True,
        ).start()
        try:
            while (part := parts.get()) is not None:
                if isinstance(part, Exception):
                    raise part
                yield part
        finally:
            stop.set()

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Prose streams token by token; an answer that opens like a tool call is held
        back and parsed whole, since a call is only known once it is complete."""
        args = self._call_args(messages, stop, kwargs)
        tools = args.get("tools")

        def chunk(delta: str) -> ChatGenerationChunk:
            out = ChatGenerationChunk(message=AIMessageChunk(content=delta))
            if run_manager:
                run_manager.on_llm_new_token(delta, chunk=out)
            return out

        text, mode = "", "undecided" if tools else "prose"
        for delta in self._deltas(args):
            text += delta
            if mode == "undecided":
                mode = _answer_kind(text)
                if mode == "prose":
                    yield chunk(text)
            elif mode == "prose":
                yield chunk(delta)
        if mode == "undecided" and text:
            yield chunk(text)
        prose, calls, repeated = self._split(text, messages, tools)
        if repeated:
            args.pop("tools")
            yield from (chunk(delta) for delta in self._deltas(args))
        elif mode == "call" and not calls:
            yield chunk(prose)
        elif calls:
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="" if mode == "prose" else prose,
                    tool_call_chunks=[
                        {
                            "name": c["name"],
                            "args": json.dumps(c["args"]),
                            "id": c["id"],
                            "index": i,
                            "type": "tool_call_chunk",
                        }
                        for i, c in enumerate(calls)
                    ],
                )
            )


def _generate_into(
    model: LoadedModel,
    args: dict[str, Any],
    parts: queue.SimpleQueue[str | Exception | None],
    stop: threading.Event,
) -> None:
    """Stream one answer into ``parts`` under the model lock; ``None`` marks the end."""
    try:
        with model.lock:
            if stop.is_set() or _SHUTTING_DOWN.is_set():
                return
            stream = model.llama.create_chat_completion(**args, stream=True)
            try:
                for part in stream:
                    if stop.is_set() or _SHUTTING_DOWN.is_set():
                        break
                    delta = part["choices"][0].get("delta", {}).get("content")
                    if delta:
                        parts.put(delta)
            finally:
                stream.close()  # llama.cpp's state is settled before the next caller gets it
    except Exception as exc:
        parts.put(exc)
    finally:
        parts.put(None)


_CALL_OPENINGS = ("<tool_call>", "```", "{", "[")


def _answer_kind(text: str) -> str:
    """'call' when an answer opens like a tool call, 'prose' when it cannot, else 'undecided'."""
    head = text.lstrip()
    if not head:
        return "undecided"
    if head.startswith(_CALL_OPENINGS):
        return "call"
    if any(opening.startswith(head) for opening in _CALL_OPENINGS):
        return "undecided"
    return "prose"
