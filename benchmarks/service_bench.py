"""`memshelf serve` under load: many users chatting and searching over HTTP at once.

    python benchmarks/service_bench.py --backend sqlite,redis --users 50 --duration 60
    python benchmarks/service_bench.py --backend sqlite --workers 2 --duration 30
    python benchmarks/service_bench.py --backend none --real-turns 5   # the local model

Each backend gets a fresh data directory (and, for ``redis``, a fresh Redis 8 from
``memshelf.testing.redis_server``), one API key per user, and a real ``memshelf serve``
subprocess (uvicorn, ``--workers N``) with the deterministic chat model
(``MEMSHELF_CHAT_MODEL=fake``), the real local embedder (``--embeddings fake`` for the
hashed one) and no rate limit. Every user loops over one *iteration* until the time is up:

1. ``POST /threads`` and ``POST /threads/{id}/runs/wait`` telling a new fact
   ("My project <codename> runs on port <n>.");
2. extraction lag, measured from the end of that run: on even iterations by polling
   ``GET /v1/threads/{id}/extraction`` until it says ``done``, on odd ones by polling
   ``POST /v1/memories/search`` until the fact comes back (every ``--poll-ms``);
3. ``POST /threads`` and ``POST /threads/{id}/runs/stream`` (messages-tuple + values)
   asking about the fact in a new thread (the reply must quote the port: recall check);
4. ``POST /v1/memories/search`` and ``POST /store/items/search`` with the question.

Then the two search endpoints alone: one client in sequence (latency), the users at once
(throughput), and the same searches made in-process on the same store (``ops`` and
``store.search``: the HTTP overhead as a ratio). ``--real-turns N`` runs N turns of the
real local model through ``runs.stream`` (langgraph-sdk, messages-tuple): time to first
token and whole turn. Raw numbers go to ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from memshelf.config import Settings
from memshelf.namespaces import memories_namespace
from memshelf.ops.keys import KeyRing

SYLLABLES = "ka lo mi nu re sa ti vo ba de fi go hu ja ke lu ma ne po ri".split()
START_S = 240.0  # a cold `memshelf serve` imports langgraph, FastAPI, onnxruntime on shared cores
LAG_TIMEOUT_S = 60.0
POLL_MAX_S = 0.5
POLL_KINDS = ("poll extraction status", "poll memories search")


def codename(user: int, i: int) -> str:
    """A made-up word, unique per (user, iteration): the fact's handle for keyword search."""
    n, parts = user * 10_000 + i, []
    for _ in range(4):
        n, digit = divmod(n, len(SYLLABLES))
        parts.append(SYLLABLES[digit])
    return "".join(parts)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f}"


@dataclass(frozen=True)
class Served:
    url: str
    pid: int


@dataclass
class Recorder:
    """Latencies and errors per route kind, extraction lags, recall checks."""

    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    lag_status: list[float] = field(default_factory=list)
    lag_search: list[float] = field(default_factory=list)
    stream_first_message: list[float] = field(default_factory=list)
    recalled: Counter[str] = field(default_factory=Counter)
    iterations: int = 0

    def fail(self, kind: str, why: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < 20:
            self.samples.append(f"{kind}: {why}")

    def summary(self, seconds: float) -> dict[str, Any]:
        requests = sum(len(v) for v in self.latency.values())
        return {
            "seconds": seconds,
            "iterations": self.iterations,
            "requests": requests,
            "requests_per_s": requests / seconds,
            "requests_per_s_without_polls": sum(
                len(v) for k, v in self.latency.items() if k not in POLL_KINDS
            )
            / seconds,
            "errors": sum(self.errors.values()),
            "errors_by_kind": dict(self.errors),
            "error_samples": self.samples,
            "routes": {
                kind: {
                    "n": len(v),
                    "p50_ms": _ms(percentile(v, 50)),
                    "p99_ms": _ms(percentile(v, 99)),
                }
                for kind, v in sorted(self.latency.items())
            },
            "lag_status_done": _dist(self.lag_status),
            "lag_searchable": _dist(self.lag_search),
            "stream_first_message_ms": _dist(self.stream_first_message),
            "recall": dict(self.recalled),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _dist(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_ms": _ms(percentile(values, 50)),
        "p95_ms": _ms(percentile(values, 95)),
        "max_ms": _ms(max(values) if values else None),
    }


async def timed(
    rec: Recorder, kind: str, request: Awaitable[httpx.Response]
) -> httpx.Response | None:
    """One request (a coroutine not yet started), timed and checked: a transport error or
    a 4xx/5xx counts as an error of ``kind``."""
    start = time.perf_counter()
    try:
        response = await request
    except httpx.HTTPError as exc:
        rec.fail(kind, type(exc).__name__)
        return None
    took = time.perf_counter() - start
    if response.status_code >= 400:
        rec.fail(kind, f"{response.status_code} {response.text[:200]}")
        return None
    rec.latency[kind].append(took)
    return response


def said(text: str) -> dict[str, Any]:
    return {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": text}]}}


async def new_thread(client: httpx.AsyncClient, rec: Recorder) -> str | None:
    r = await timed(rec, "POST /threads", client.post("/threads", json={}))
    return None if r is None else str(r.json()["thread_id"])


async def stream_turn(client: httpx.AsyncClient, rec: Recorder, thread: str, text: str) -> str:
    """A streamed run; the reply text ('' on error). Time to the first ``messages`` event
    is kept apart from the whole stream's time."""
    kind = "POST /threads/{id}/runs/stream"
    body = {**said(text), "stream_mode": ["messages-tuple", "values"]}
    start, first, values, failed = time.perf_counter(), None, None, None
    try:
        async with aconnect_sse(
            client, "POST", f"/threads/{thread}/runs/stream", json=body
        ) as source:
            if source.response.status_code != 200:
                await source.response.aread()
                failed = f"{source.response.status_code} {source.response.text[:200]}"
            else:
                async for event in source.aiter_sse():
                    if event.event == "messages" and first is None:
                        first = time.perf_counter() - start
                    elif event.event == "values":
                        values = event.json()
                    elif event.event == "error":
                        failed = f"error event {event.data[:200]}"
    except httpx.HTTPError as exc:
        failed = type(exc).__name__
    if failed or values is None:
        rec.fail(kind, failed or "no values event")
        return ""
    rec.latency[kind].append(time.perf_counter() - start)
    if first is not None:
        rec.stream_first_message.append(first)
    return str(values["messages"][-1]["content"])


async def status_done(client: httpx.AsyncClient, rec: Recorder, thread: str) -> bool:
    """Whether the thread's extraction status says it finished (done or failed)."""
    r = await timed(rec, POLL_KINDS[0], client.get(f"/v1/threads/{thread}/extraction"))
    if r is None:
        return False
    state = r.json()["state"]
    if state == "failed":
        rec.fail("extraction", str(r.json()["error"]))
    return state in ("done", "failed")


async def searchable(client: httpx.AsyncClient, rec: Recorder, name: str) -> bool:
    """Whether /v1/memories/search finds the fact named ``name``."""
    body = {"query": name, "k": 3}
    r = await timed(rec, POLL_KINDS[1], client.post("/v1/memories/search", json=body))
    return r is not None and any(name in hit["text"] for hit in r.json())


async def poll(rec: Recorder, check: Callable[[], Awaitable[bool]], every: float) -> bool:
    """Call ``check`` until it says yes, for at most LAG_TIMEOUT_S: at once, then every
    ``every`` seconds, or a tenth of the time waited so far (at most POLL_MAX_S), so a lag
    is measured to about 10% without the polls themselves loading the service."""
    start = time.monotonic()
    while time.monotonic() < start + LAG_TIMEOUT_S:
        if await check():
            return True
        await asyncio.sleep(min(POLL_MAX_S, max(every, (time.monotonic() - start) / 10)))
    rec.fail("extraction lag", f"not done after {LAG_TIMEOUT_S:.0f} s")
    return False


async def iteration(
    client: httpx.AsyncClient, rec: Recorder, user: int, i: int, every: float
) -> str | None:
    """Tell a fact, wait until it is remembered, ask about it in a new thread, search for
    it; the question (None if a step failed)."""
    name, port = codename(user, i), 1000 + i
    question = f"Which port does project {name} use?"
    thread = await new_thread(client, rec)
    if thread is None:
        return None
    tell = said(f"My project {name} runs on port {port}.")
    kind = "POST /threads/{id}/runs/wait"
    if await timed(rec, kind, client.post(f"/threads/{thread}/runs/wait", json=tell)) is None:
        return None
    ended = time.perf_counter()
    if i % 2 == 0:
        if await poll(rec, functools.partial(status_done, client, rec, thread), every):
            rec.lag_status.append(time.perf_counter() - ended)
    elif await poll(rec, functools.partial(searchable, client, rec, name), every):
        rec.lag_search.append(time.perf_counter() - ended)
    other = await new_thread(client, rec)
    if other is None:
        return None
    reply = await stream_turn(client, rec, other, question)
    rec.recalled["stream reply quotes the port" if str(port) in reply else "stream missed"] += 1
    body = {"query": question, "k": 5}
    found = await timed(
        rec, "POST /v1/memories/search", client.post("/v1/memories/search", json=body)
    )
    if found is not None:
        hit = any(name in h["text"] for h in found.json())
        rec.recalled["search finds the fact" if hit else "search missed"] += 1
    shelf = list(memories_namespace(f"u{user:03d}"))
    body = {"namespace_prefix": shelf, "query": question, "limit": 5}
    await timed(rec, "POST /store/items/search", client.post("/store/items/search", json=body))
    rec.iterations += 1
    return question


async def user_loop(
    client: httpx.AsyncClient, rec: Recorder, user: int, until: float, every: float
) -> list[str]:
    """One user's iterations until ``until``; the questions asked (for the search phase)."""
    questions: list[str] = []
    i = 0
    while time.monotonic() < until:
        question = await iteration(client, rec, user, i, every)
        if question is None:
            await asyncio.sleep(0.5)  # a failed step: counted; do not spin on it
        else:
            questions.append(question)
        i += 1
    return questions


# --- the service process ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMSHELF_")}
    env.update(
        {
            "MEMSHELF_DATA_DIR": str(settings.data_dir),
            "MEMSHELF_CHAT_MODEL": settings.chat_model,
            "MEMSHELF_EMBEDDINGS": settings.embeddings,
            "MEMSHELF_RATE_LIMIT_PER_MINUTE": "0",
            "MEMSHELF_REDIS_PREFIX": settings.redis_prefix,
        }
    )
    if settings.store_url:
        env["MEMSHELF_STORE_URL"] = settings.store_url
    if settings.models_dir:
        env["MEMSHELF_MODELS_DIR"] = str(settings.models_dir)
    env.update(extra or {})
    return env


@contextlib.contextmanager
def serve(env: dict[str, str], workers: int, log: Path) -> Iterator[Served]:
    """`memshelf serve --workers N` as a subprocess, ready once /readyz says so."""
    port = free_port()
    command = [sys.executable, "-m", "memshelf.cli", "serve", "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*command, "--workers", str(workers)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"memshelf serve exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=10).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"memshelf serve did not get ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield Served(url, proc.pid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def extraction_worker(env: dict[str, str], concurrency: int, log: Path) -> Iterator[int]:
    """One `memshelf worker` process (Redis only); yields its pid once it is ready."""
    command = [sys.executable, "-m", "memshelf.cli", "worker", "--concurrency", str(concurrency)]
    with log.open("w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_S
        while "memshelf worker ready" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"memshelf worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pids: list[int]) -> float:
    """CPU time used so far by these processes and their children (Linux /proc)."""
    tick, total, stack = os.sysconf("SC_CLK_TCK"), 0.0, list(pids)
    while stack:
        pid = stack.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            for task in Path(f"/proc/{pid}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
    return total


def make_keys(settings: Settings, users: int) -> tuple[list[str], str]:
    """One chat + memories key per user (u000, u001, ...) and an admin key."""
    from memshelf.stores import open_store

    with open_store(settings=settings) as store:
        ring = KeyRing(store)
        tokens = [ring.create(f"u{u:03d}")[1] for u in range(users)]
        admin = ring.create("bench-admin", ["admin"])[1]
    return tokens, admin


# --- phases ----------------------------------------------------------------------------


def client_for(url: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"x-api-key": token}, timeout=120)


async def load_phase(
    url: str, tokens: list[str], duration: float, every: float
) -> tuple[dict[str, Any], list[list[str]]]:
    rec = Recorder()
    clients = [client_for(url, t) for t in tokens]
    try:
        await asyncio.gather(*(c.get("/v1/me") for c in clients))  # connections open
        start = time.monotonic()
        asked = await asyncio.gather(
            *(user_loop(c, rec, u, start + duration, every) for u, c in enumerate(clients))
        )
        took = time.monotonic() - start
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return rec.summary(took), list(asked)


SEARCHES: dict[str, Callable[[int, str], tuple[str, dict[str, Any]]]] = {
    "POST /v1/memories/search": lambda u, q: ("/v1/memories/search", {"query": q, "k": 5}),
    "POST /store/items/search": lambda u, q: (
        "/store/items/search",
        {"namespace_prefix": list(memories_namespace(f"u{u:03d}")), "query": q, "limit": 5},
    ),
}


async def search_phase(
    url: str, tokens: list[str], asked: list[list[str]], requests: int
) -> dict[str, Any]:
    """The search endpoints alone: one client in sequence, then every user at once."""
    users = [u for u, qs in enumerate(asked) if qs]
    out: dict[str, Any] = {}
    clients = [client_for(url, t) for t in tokens]
    try:
        for kind, make in SEARCHES.items():
            rec = Recorder()
            for j in range(requests):  # sequential: latency alone
                u = users[j % len(users)]
                path, body = make(u, asked[u][j % len(asked[u])])
                await timed(rec, kind, clients[u].post(path, json=body))
            seq = rec.latency[kind]
            crec = Recorder()
            per_user = max(10, requests // len(users))
            start = time.perf_counter()
            await asyncio.gather(
                *(
                    one_user(clients[u], crec, kind, [make(u, q) for q in asked[u]], per_user)
                    for u in users
                )
            )
            took = time.perf_counter() - start
            conc = crec.latency[kind]
            out[kind] = {
                "sequential": {"n": len(seq), **_pcts(seq)},
                "concurrent": {
                    "clients": len(users),
                    "n": len(conc),
                    "per_s": len(conc) / took,
                    **_pcts(conc),
                },
                "errors": sum(rec.errors.values()) + sum(crec.errors.values()),
                "error_samples": rec.samples + crec.samples,
            }
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return out


async def one_user(
    client: httpx.AsyncClient,
    rec: Recorder,
    kind: str,
    requests: list[tuple[str, dict[str, Any]]],
    count: int,
) -> None:
    """``count`` searches by one user, one after another."""
    for j in range(count):
        path, body = requests[j % len(requests)]
        await timed(rec, kind, client.post(path, json=body))


def _pcts(values: list[float]) -> dict[str, float | None]:
    return {"p50_ms": _ms(percentile(values, 50)), "p99_ms": _ms(percentile(values, 99))}


def direct_phase(settings: Settings, asked: list[list[str]], requests: int) -> dict[str, Any]:
    """The same searches in this process, on the same store: the baseline without HTTP."""
    from memshelf.ops import memories as ops
    from memshelf.stores import open_store

    users = [u for u, qs in enumerate(asked) if qs]
    out: dict[str, Any] = {}
    with open_store(settings=settings) as store:
        calls: dict[str, Callable[[int, str], object]] = {
            "ops.search_memories (k=5)": lambda u, q: ops.search_memories(
                store, f"u{u:03d}", q, k=5
            ),
            "store.search (limit=5)": lambda u, q: store.search(
                memories_namespace(f"u{u:03d}"), query=q, limit=5
            ),
        }
        for name, call in calls.items():
            for u in users:  # warm: each namespace's vectors cached, as in the server
                call(u, asked[u][0])
            took = []
            for j in range(requests):
                u = users[j % len(users)]
                start = time.perf_counter()
                call(u, asked[u][j % len(asked[u])])
                took.append(time.perf_counter() - start)
            out[name] = {"n": len(took), **_pcts(took)}
    return out


GAUGES = ("memshelf_extraction_queued", "memshelf_extraction_lag_seconds")
TIMES = ("memshelf_recall_duration_seconds_sum", "memshelf_model_call_duration_seconds_sum")


def scrape_metrics(url: str, admin: str, wanted: tuple[str, ...] = GAUGES) -> dict[str, float]:
    """Samples of the service's own metrics (one worker's view), by name and labels."""
    text = httpx.get(f"{url}/metrics", headers={"x-api-key": admin}, timeout=30).text
    found = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def run_backend(backend: str, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    """Load, search over HTTP, then the same searches in-process on the same store."""
    from memshelf.testing import redis_server

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="svcbench-")))
        store_url = stack.enter_context(redis_server()) if backend == "redis" else None
        settings = Settings(
            data_dir=tmp / "data",
            chat_model="fake",
            embeddings=args.embeddings,
            store_url=store_url,
            redis_prefix="svcbench",
        )
        tokens, admin = make_keys(settings, args.users)
        name = out_dir / f"service_bench_{backend}_w{args.workers}"
        with contextlib.ExitStack() as processes:
            extra, pids = {}, []
            if backend == "redis" and args.worker_concurrency:
                extra["MEMSHELF_EXTRACTION_WORKER"] = "false"  # only the worker extracts
                env = service_env(settings)
                log = Path(f"{name}_worker.log")
                pids.append(
                    processes.enter_context(extraction_worker(env, args.worker_concurrency, log))
                )
            served = processes.enter_context(
                serve(service_env(settings, extra), args.workers, Path(f"{name}.log"))
            )
            pids.append(served.pid)
            print(
                f"[{backend}] {served.url}: {args.users} users, {args.duration:.0f} s", flush=True
            )
            cpu_before, mine_before = cpu_seconds(pids), time.process_time()
            load_before = os.getloadavg()[0]
            every = args.poll_ms / 1000
            load, asked = asyncio.run(load_phase(served.url, tokens, args.duration, every))
            load["cpu_s"] = {
                "service": round(cpu_seconds(pids) - cpu_before, 1),
                "load_generator": round(time.process_time() - mine_before, 1),
                "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            }
            print(json.dumps({backend: load}, indent=2), flush=True)
            metrics = scrape_metrics(served.url, admin)
            search = asyncio.run(search_phase(served.url, tokens, asked, args.search_requests))
            print(json.dumps({backend: search}, indent=2), flush=True)
        # the service has stopped: the in-process baseline gets the cores the service had
        direct = direct_phase(settings, asked, args.search_requests)
        print(json.dumps({backend: direct}, indent=2), flush=True)
    return {"load": load, "metrics_at_end": metrics, "search": search, "direct": direct}


# --- the real local model --------------------------------------------------------------

REAL_TURNS = [
    ("A", "I'm Sukhveer, I deploy on Fly.io, and I prefer answers with code."),
    ("A", "I play the cello in a community orchestra on Thursdays."),
    ("B", "Where do I deploy?"),
    ("B", "What instrument do I play?"),
    ("C", "Our team keeps all production data in PostgreSQL 14."),
    ("D", "Which database does my team use?"),
]


async def real_turns(url: str, token: str, admin: str, turns: int) -> list[dict[str, Any]]:
    """Turns of the local model through langgraph-sdk's runs.stream (messages-tuple), with
    where each turn's time went, from the service's /metrics: recall (which first waits
    for the user's pending memories), the reply's model calls, extraction's model calls."""
    from langgraph_sdk import get_client

    client = get_client(url=url, api_key=token, timeout=600)
    threads: dict[str, str] = {}
    rows = []
    before = scrape_metrics(url, admin, TIMES)
    for name, text in REAL_TURNS[:turns]:
        if name not in threads:
            threads[name] = (await client.threads.create())["thread_id"]
        start, first, reply = time.perf_counter(), None, ""
        async for part in client.runs.stream(
            threads[name], "agent", input=said(text)["input"], stream_mode=["messages-tuple"]
        ):
            if part.event == "messages":
                chunk, meta = part.data
                if meta.get("langgraph_node") == "respond" and chunk.get("content"):
                    first = first or time.perf_counter() - start
                    reply += str(chunk["content"])
            elif part.event == "error":
                raise RuntimeError(f"run failed: {part.data}")
        took = time.perf_counter() - start
        after = scrape_metrics(url, admin, TIMES)
        spent = {k: round(v - before.get(k, 0.0), 2) for k, v in after.items()}
        before = after
        row = {
            "thread": name,
            "message": text,
            "first_token_s": None if first is None else round(first, 2),
            "turn_s": round(took, 2),
            "recall_s": spent.get(TIMES[0]),
            "model_s_by_phase": {
                k.split('phase="')[1].rstrip('"}'): v for k, v in spent.items() if "phase=" in k
            },
            "reply": reply,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def run_real(args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="svcbench-real-") as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            models_dir=args.models_dir,
            embeddings="local",
        )
        tokens, admin = make_keys(settings, 1)
        threads = {"MEMSHELF_LLM_THREADS": str(args.llm_threads)} if args.llm_threads else {}
        with serve(service_env(settings, threads), 1, out_dir / "service_bench_real.log") as served:
            rows = asyncio.run(real_turns(served.url, tokens[0], admin, args.real_turns))
    warm = rows[1:]
    return {
        "model": settings.chat_model,
        "llm_threads": args.llm_threads or "all cores",
        "turns": rows,
        "first_turn": {k: rows[0][k] for k in ("first_token_s", "turn_s")} if rows else None,
        "warm_first_token_p50_s": percentile(
            [r["first_token_s"] for r in warm if r["first_token_s"] is not None], 50
        ),
        "warm_turn_p50_s": percentile([r["turn_s"] for r in warm], 50),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", default="sqlite,redis", help="sqlite, redis, or none")
    parser.add_argument("--workers", type=int, default=1, help="memshelf serve --workers")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--embeddings", default="local", help="local (default) or fake")
    parser.add_argument("--poll-ms", type=float, default=50.0, help="extraction-lag polling")
    parser.add_argument("--search-requests", type=int, default=300, help="per search endpoint")
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=0,
        help="redis: extract in one `memshelf worker --concurrency N` instead of in the service",
    )
    parser.add_argument("--real-turns", type=int, default=0, help="turns of the local model")
    parser.add_argument(
        "--llm-threads", type=int, default=0, help="MEMSHELF_LLM_THREADS (0: all cores)"
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=Path("~/.local/share/memshelf/models").expanduser(),
        help="where the local chat model is installed",
    )
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()}",
        "users": args.users,
        "duration_s": args.duration,
        "workers": args.workers,
        "embeddings": args.embeddings,
        "backends": {},
    }
    for backend in [b for b in args.backend.split(",") if b and b != "none"]:
        report["backends"][backend] = run_backend(backend, args, args.out_dir)
    if args.real_turns:
        report["real_model"] = run_real(args, args.out_dir)
        print(json.dumps(report["real_model"], indent=2), flush=True)
    print_tables(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


def print_tables(report: dict[str, Any]) -> None:
    """Markdown tables of the headline numbers, ready for BENCHMARKS.md."""
    for backend, result in report["backends"].items():
        load = result["load"]
        print(
            f"\n### {backend}, {report['users']} users, {load['seconds']:.0f} s, "
            f"--workers {report['workers']}, embeddings {report['embeddings']}\n"
        )
        cpu = load["cpu_s"]
        print(
            f"CPU s: service {cpu['service']}, load generator {cpu['load_generator']}; "
            f"load average before/after {cpu['load_average_before_after']}"
        )
        print(
            f"requests/s {load['requests_per_s']:.1f} (without lag polls "
            f"{load['requests_per_s_without_polls']:.1f}), iterations {load['iterations']}, "
            f"errors {load['errors']}, recall {load['recall']}"
        )
        print("\n| route | n | p50 ms | p99 ms |\n|---|---|---|---|")
        for kind, row in load["routes"].items():
            print(f"| {kind} | {row['n']} | {row['p50_ms']} | {row['p99_ms']} |")
        for name in ("lag_status_done", "lag_searchable", "stream_first_message_ms"):
            d = load[name]
            print(f"{name}: n={d['n']} p50={d['p50_ms']} ms p95={d['p95_ms']} ms max={d['max_ms']}")
        clients = next(iter(result["search"].values()))["concurrent"]["clients"]
        print(f"\n| search | one client p50 / p99 ms | {clients} at once p50 / p99 ms | per s |")
        print("|---|---|---|---|")
        for kind, row in result["search"].items():
            s, c = row["sequential"], row["concurrent"]
            print(
                f"| {kind} | {s['p50_ms']} / {s['p99_ms']} | {c['p50_ms']} / {c['p99_ms']} "
                f"| {c['per_s']:.0f} |"
            )
        for name, row in result["direct"].items():
            print(f"| in-process {name} | {row['p50_ms']} / {row['p99_ms']} | - | - |")


if __name__ == "__main__":
    main()
