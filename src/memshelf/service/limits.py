"""Request limits: a per-key rate on the routes that call a model (agent runs, a team's
ask and a finding's verification), and a body size cap.

Both answer before any work is done. The size cap looks at ``Content-Length`` first
(a huge body is refused unread) and counts the bytes of a body sent without one
(chunked), stopping at the limit. The rate is a token bucket per API key, applied
right after the key is verified (``auth.require``), so an unknown caller gets 401
and never spends anyone's quota. Buckets live in the process: with
``memshelf serve --workers N`` each worker admits its own ``rate_limit_per_minute``.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from memshelf.service.auth import Principal

# POST /runs, /runs/stream, /runs/wait, /runs/batch, with or without /threads/{id} before:
# the LangGraph server routes that start the agent (and so call the chat model); and the
# team's routes that call it (an ask, a finding's verification), which spend the same quota.
_MODEL_ROUTE = re.compile(
    r"^(/threads/\{[^/{}]+\})?/runs(/stream|/wait|/batch)?$"
    r"|^/v1/teams/\{[^/{}]+\}/(ask|findings/\{[^/{}]+\}/verify)$"
)
MAX_BUCKETS = 100_000  # keys remembered at once; a forgotten key starts with a full bucket


def calls_model(method: str, path: str) -> bool:
    """Whether a route (method + path template) starts a model run, and so is rate limited."""
    return method.upper() == "POST" and bool(_MODEL_ROUTE.match(path))


class RateLimited(HTTPException):
    """429 with Retry-After: the key has started its runs for now."""

    def __init__(self, per_minute: int, retry_after: int) -> None:
        super().__init__(
            429,
            f"Rate limit: a key may start {per_minute} model runs per minute "
            f"(MEMSHELF_RATE_LIMIT_PER_MINUTE); retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


class RateLimiter:
    """Token buckets per API key: ``per_minute`` runs at once at most, refilled evenly."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one run of ``key``'s; 0 when admitted, else the seconds until one is due."""
        if self.per_minute <= 0:
            return 0.0
        rate = self.per_minute / 60.0
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.pop(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - then) * rate)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate
            self._buckets[key] = (tokens - 1.0 if wait == 0.0 else tokens, now)
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        return wait

    def admit(self, request: Request, principal: Principal) -> None:
        """Raise :class:`RateLimited` when ``request`` starts a run the key has no quota for."""
        route = request.scope.get("route")
        path = getattr(route, "path", None)
        if not isinstance(path, str) or not calls_model(request.method, path):
            return
        wait = self.take(principal.key_id)
        if wait > 0:
            raise RateLimited(self.per_minute, max(1, math.ceil(wait)))


class BodyTooLarge(HTTPException):
    """413 naming the limit. Raised from ``receive`` it passes FastAPI's body reader
    unchanged (an HTTPException is re-raised, not turned into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"The request body is larger than the service accepts ({limit:,} bytes, "
            "MEMSHELF_MAX_REQUEST_BYTES). Send less at once, e.g. import in smaller batches.",
        )


class BodyLimitMiddleware:
    """Refuse bodies over ``limit`` bytes: by ``Content-Length`` before reading a byte,
    and by counting when the body comes without one."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await _refuse(BodyTooLarge(self.limit), scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge as exc:  # read outside FastAPI's handlers (or escaped them)
            if started:
                raise
            await _refuse(exc, scope, receive, send)


async def _refuse(exc: HTTPException, scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
    response.headers["Connection"] = "close"  # the rest of the body is never read
    await response(scope, receive, send)
