"""Structured logs: one JSON object per line, one line per request, a request id on each.

A request line holds the request id, method, route *template* (``/threads/{thread_id}``,
never the path a caller typed), status, duration and a hash of the user id — never the
API key, never a message, a query string or a body. The ``x-request-id`` a caller sends
(letters, digits, ``.``, ``_``, ``-``; up to 128) is used and echoed, otherwise one is
made; every line logged while the request is served carries it. As a last guard, the
formatter blanks anything shaped like a memshelf key (``msk_…``), URL credentials
(``redis://:password@…``) and the configured secrets.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memshelf.config import Settings, redact

LOGGER = "memshelf"
REQUEST_ID_HEADER = "x-request-id"
UNMATCHED = "<unmatched>"  # the route label of a request no route matched (no cardinality blow-up)

request_id: ContextVar[str | None] = ContextVar("memshelf_request_id", default=None)
log = logging.getLogger("memshelf.service.requests")

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_KEY = re.compile(r"msk_[A-Za-z0-9_-]+")
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")
# LogRecord's own attributes, and uvicorn's ANSI-coloured copy of its message
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}

# (method, route template, status, seconds) for each finished request
RequestObserver = Callable[[str, str, int, float], None]


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without API keys, URL credentials or any of ``secrets``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _KEY.sub("msk_[redacted]", text)
    return _URL_CREDENTIALS.sub("[redacted]@", text)


def safe_traceback(exc: BaseException) -> str:
    """Where an error happened, without what it said: each exception's type and the
    frames it passed through (file, line, function). Messages, notes and source lines are
    left out, because an exception's text can quote a user's message or a provider's
    reply and logs must not hold user text."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = traceback.extract_tb(current.__traceback__)
        parts.append(
            "\n".join(
                [f"{type(current).__module__}.{type(current).__qualname__}"]
                + [f"  {f.filename}:{f.lineno} in {f.name}" for f in frames]
            )
        )
        current = current.__cause__ or current.__context__
    return "\ncaused by ".join(parts)


class JsonFormatter(logging.Formatter):
    """A record as one JSON line: time, level, logger, message, request id, extras."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            line["request_id"] = rid
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and name not in line:
                line[name] = value
        if record.exc_info and record.exc_info[1] is not None:
            line["exc"] = safe_traceback(record.exc_info[1])
        for name, value in line.items():  # before JSON escaping can change a secret's spelling
            if isinstance(value, str):
                line[name] = scrub(value, self.secrets)
        return scrub(json.dumps(line, default=str, ensure_ascii=False), self.secrets)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time (test capture, a redirected run)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def secrets_of(settings: Settings) -> list[str]:
    """The configured secrets a log line must never show."""
    found: list[str] = []
    for secret in (settings.redis_password, settings.tavily_api_key):
        if secret is not None:
            found.append(secret.get_secret_value())
    return found


def configure_logging(settings: Settings) -> None:
    """JSON lines on stderr for the ``memshelf`` loggers, at ``settings.log_level``. Safe to
    call again (another app in the process): the one handler is updated, not doubled.

    uvicorn's access log is turned off: the request line here replaces it, and it prints
    the raw path and query string, which can carry a user's words."""
    logging.getLogger("uvicorn.access").disabled = True
    logger = logging.getLogger(LOGGER)
    logger.setLevel(settings.log_level)
    formatter = JsonFormatter(secrets_of(settings))
    for handler in logger.handlers:
        if isinstance(handler, _StderrHandler):
            handler.setFormatter(formatter)
            return
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    logger.addHandler(handler)


class _NotOurs(logging.Filter):
    """Lets through records of loggers outside ``memshelf`` (those have their own handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != LOGGER and not record.name.startswith(LOGGER + ".")


def configure_process_logging(settings: Settings) -> None:
    """For a process that is the service (``memshelf serve`` and each of its workers):
    stderr holds JSON lines only. Every other library's records (uvicorn's start-up lines,
    warnings) get the same JSON handler on the root logger, replacing any handler there;
    a root handler also turns later ``logging.basicConfig`` calls into no-ops (the MCP SDK
    makes one with a Rich handler, which printed every request a second time)."""
    configure_logging(settings)
    logging.getLogger("uvicorn").setLevel(settings.log_level)
    root = logging.getLogger()
    handler = _StderrHandler()
    handler.addFilter(_NotOurs())
    handler.setFormatter(JsonFormatter(secrets_of(settings)))
    root.handlers = [handler]


def user_hash(user_id: str) -> str:
    """How a user appears in logs: a short hash that groups one user's lines."""
    return redact(user_id)


def route_of(scope: Scope, outer_root_path: str = "") -> str:
    """The path template of the route that served ``scope`` (never the raw path), with
    the prefix of any mounted app it passed through (``/ui/forget-me``, not
    ``/forget-me``): a mount adds its path to ``root_path``, beyond ``outer_root_path``
    (the root path the request came in with)."""
    route = scope.get("route")
    if route is None:  # FastAPI records API routes only: find a plain one (/docs) again
        routes = getattr(scope.get("app"), "routes", ())
        route = next((r for r in routes if r.matches(scope)[0] != Match.NONE), None)
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    root_path = str(scope.get("root_path", ""))
    mounted = root_path[len(outer_root_path) :] if root_path.startswith(outer_root_path) else ""
    return mounted + path if path.startswith("/") or not path else f"{mounted}/{path}"


class RequestLogMiddleware:
    """Request id in and out, one log line per request, and ``observe`` for metrics."""

    def __init__(self, app: ASGIApp, observe: RequestObserver | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        rid = offered if _VALID_ID.match(offered) else uuid.uuid4().hex
        token = request_id.set(rid)
        outer_root_path = str(scope.get("root_path", ""))
        start = time.perf_counter()
        status, started = 500, False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = int(message["status"]), True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Unforeseen (bad input must never get here): the error's type and frames go
            # to the log (never its text, which can quote the request), the caller gets
            # the request id to quote.
            log.error(
                "unhandled error: %s",
                type(exc).__name__,
                extra={"request_id": rid, "trace": safe_traceback(exc)},
            )
            if started:  # too late for another answer: the server drops the connection
                raise
            body = {"detail": f"Internal error; quote request id {rid} when reporting it."}
            await JSONResponse(body, 500, {REQUEST_ID_HEADER: rid})(scope, receive, send)
        finally:
            seconds = time.perf_counter() - start
            method, route = str(scope.get("method", "")), route_of(scope, outer_root_path)
            principal = (scope.get("state") or {}).get("principal")
            log.info(
                "request",
                extra={
                    "request_id": rid,
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "user": user_hash(principal.user_id) if principal is not None else None,
                },
            )
            if self.observe is not None:
                self.observe(method, route, status, seconds)
            request_id.reset(token)
