"""schemathesis against the live service's own OpenAPI schema: no input reaches a 5xx.

Every operation in /openapi.json is fuzzed with valid and invalid cases on a real
uvicorn on SQLite, with an admin key, so admin routes are exercised past auth and every
user route acts for the admin's user. The examples per operation are bounded (the run
stays well under two minutes on two cores) and derandomized, so a failure reproduces.
Nothing is excluded. Valid cases are sent again with odd content in each object field
(engine fields of the wrong type, 900-deep nesting), every request carries an odd
Last-Event-ID, and the listings are read back afterwards: each of those once got a 500.

The operations are driven from one test with ``operation.as_strategy()`` rather than
``schemathesis.pytest.from_fixture``: that loader renames pytest's private
``item._nodeid``, which pytest 9 no longer has.
"""

from __future__ import annotations

from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation.case import Case

from tests.service.conftest import Service

EXAMPLES = 6  # per operation and generation mode: under a minute for ~50 operations
SHELF = ["memories", "root"]  # the admin key's user is root
DEEP: Any = []
for _ in range(900):
    DEEP = [DEEP]
# what valid-looking bodies can still carry: engine fields of the wrong type and nesting
# JSON encoders refuse (NaN cannot be sent through schemathesis: test_limits.py sends it)
ODD: list[dict[str, Any]] = [{"version": "abc", "text": 5}, {"v": DEEP}]
# every request carries a Last-Event-ID that is a digit to str.isdigit but not to int()
ODD_HEADERS = {"Last-Event-ID": "\xb2"}


def hostile(body: Any) -> list[dict[str, Any]]:
    """``body`` with each object-valued field swapped for odd content, aimed at the
    caller's own shelf where the body names a namespace (or it never gets stored)."""
    if not isinstance(body, dict):
        return []
    aimed = {**body, "namespace": SHELF} if "namespace" in body else body
    return [
        {**aimed, name: {**value, **odd}}
        for name, value in body.items()
        if isinstance(value, dict)
        for odd in ODD
    ]


HEAD_LIMIT = 16 * 1024  # uvicorn's h11_max_incomplete_event_size (request line + headers)


def head_size(case: Case[Any], headers: dict[str, str]) -> int:
    """Bytes of the request line and headers ``case`` sends."""
    sent = case.as_transport_kwargs(headers=headers)
    keep = ("method", "url", "headers", "params", "cookies")
    prepared = requests.Request(**{k: sent[k] for k in keep if k in sent}).prepare()
    return len(prepared.url or "") + sum(len(k) + len(v) + 4 for k, v in prepared.headers.items())


def fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    """Up to EXAMPLES cases of one operation; raises on the first server error."""

    @given(operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing case is shown
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Case[Any]) -> None:
        sent = {**headers, **ODD_HEADERS}
        bodies = [case.body] + (hostile(case.body) if mode is GenerationMode.POSITIVE else [])
        for body in bodies:
            case.body = body
            try:
                case.call_and_validate(headers=sent, checks=[not_a_server_error], timeout=60)
            except requests.ConnectionError:
                if head_size(case, sent) <= HEAD_LIMIT:
                    raise
                # uvicorn (h11) refuses a request head over 16 KiB with a 400 and closes
                # the connection; the unread rest can reach the client as a reset first.
                # The request never got to the app: not a server error.

    check()


def test_no_input_reaches_a_server_error(sqlite_service: Service) -> None:
    # The fuzzer starts hundreds of runs with one key; the per-key run limit would answer
    # most of them 429 before their bodies were looked at. Lift it on this service only
    # (test_limits.py covers the limit).
    assert sqlite_service.app is not None
    sqlite_service.app.state.limiter.per_minute = 0
    schema = schemathesis.openapi.from_url(f"{sqlite_service.url}/openapi.json")
    headers = {"x-api-key": sqlite_service.keys["admin"]}
    paths = schema.raw_schema["paths"]
    failures: list[str] = []
    operations = 0
    for found in schema.get_all_operations():
        assert isinstance(found, Ok), f"an operation schemathesis cannot use: {found.err()}"
        operation = found.ok()
        operations += 1
        declared = paths[operation.path][operation.method.lower()]
        # An operation without parameters or body has no invalid input to send (Hypothesis
        # proves it: Unsatisfiable), so it gets valid requests only.
        modes = [GenerationMode.POSITIVE]
        if declared.get("parameters") or declared.get("requestBody"):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            try:
                fuzz(operation, mode, headers)
            except Exception as exc:  # collect them all: one report for every operation
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    # whatever the fuzz stored must not fail the listings that show it afterwards
    for method, path, body in [
        ("GET", "/v1/memories?status=all", None),
        ("GET", "/v1/memories/export", None),
        ("POST", "/store/items/search", {"namespace_prefix": SHELF, "limit": 1000}),
        ("POST", "/threads/search", {"limit": 1000}),
    ]:
        shown = requests.request(method, sqlite_service.url + path, json=body, headers=headers)
        if shown.status_code >= 500:
            failures.append(f"{method} {path} after the fuzz: {shown.status_code}")
    assert operations == sum(len(p) for p in paths.values()) >= 40
    assert not failures, "\n\n".join(failures)
