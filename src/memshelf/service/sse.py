"""Server-sent events as LangGraph's server writes them, and JSON for what graphs hold.

A frame is ``event: <name>``, ``data: <one line of JSON>``, ``id: <sequence>`` and a blank
line; comment lines (``: heartbeat``) keep an idle stream open and reveal a client that
left. :class:`EventStream` runs a callback however the response ends, so a run whose
reader went away is stopped instead of running on for nobody.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

HEARTBEAT = b": heartbeat\n\n"


def _default(value: Any) -> Any:
    """What ``json`` cannot encode by itself: messages and other pydantic models (as
    LangGraph's server does, by ``model_dump``), dataclasses, sets, times, bytes."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def _null(_constant: str) -> None:
    return None


def dumps(value: Any) -> bytes:
    """Compact JSON on one line (newlines in strings are escaped), UTF-8. Always valid
    JSON: ``NaN`` and ``Infinity`` (which Python's parser accepts in a request body and a
    graph can carry) are written as ``null``, as no JSON parser reads them."""
    try:
        text = json.dumps(
            value, default=_default, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except ValueError:  # a non-finite float somewhere: once more, with those as null
        loose = json.dumps(value, default=_default, ensure_ascii=False)
        text = json.dumps(
            json.loads(loose, parse_constant=_null),
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        )
    return text.encode()


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types, for a JSON response."""
    return json.loads(dumps(value))


def frame(event: str, data: bytes, event_id: str | None = None) -> bytes:
    """One SSE frame; ``data`` is already JSON (one line)."""
    head = b"event: " + event.encode() + b"\ndata: " + data + b"\n"
    return head + (b"id: " + event_id.encode() + b"\n" if event_id else b"") + b"\n"


class EventStream(StreamingResponse):
    """``text/event-stream`` that calls ``on_close`` when the response is over, however it
    ended: all sent, the client gone, or the server shutting down."""

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        on_close: Callable[[], None],
        headers: Mapping[str, str] | None = None,
        status_code: int = 200,  # FastAPI's OpenAPI generator reads this default
    ) -> None:
        super().__init__(
            content,
            status_code,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", **(headers or {})},
        )
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()
