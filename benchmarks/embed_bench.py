"""Query-embedding latency of the local ONNX embedder, by stage, and batch throughput.

    python benchmarks/embed_bench.py --queries 1000 --baseline HEAD

Queries are short (10-20 words, every one distinct, as the recall node embeds
them); documents go in batches of 64, as a store's put embeds them. Prints three
Markdown tables:

1. before/after: ``embed_query`` p50/p95 and ``embed_documents`` docs/s of the
   working tree's embedder and of ``--baseline`` (``src/memshelf/embeddings/local.py``
   at that git revision, loaded beside it), run interleaved call by call so a busy
   machine slows both alike, plus the largest cosine distance between their vectors;
2. where a query's time goes: tokenization, ONNX run, pooling + normalisation,
   and the Python overhead left over (``embed_query`` p50 minus the stages' p50s);
3. ONNX Runtime session options and IO binding, timing the ONNX run alone
   (also interleaved) and docs/s for batches of 64.

The machine is shared and has 2 cores: only the interleaved comparisons are
fair; absolute numbers move with whatever else runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnxruntime as ort

from memshelf.embeddings.local import TOKENIZER_PATH, LocalEmbedder, default_model_path
from memshelf.eval.metrics import percentile

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "where do I deploy my apps what database does the team prefer for analytics and which "
    "editor did my manager recommend last week remind me about the trip to Berlin in May "
    "how long should emails be for the Postgres migration on Fly.io"
).split()
BATCH = 64


def cpu_busy() -> tuple[float, float, float]:
    """(wall s, whole-machine busy CPU s, this process's CPU s), to see what else ran."""
    busy = 0.0
    stat = Path("/proc/stat")
    if stat.exists():
        fields = [int(x) for x in stat.read_text().split("\n", 1)[0].split()[1:]]
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    own = os.times()
    return time.perf_counter(), busy, own.user + own.system


def pct(samples: list[float], p: float) -> float:
    """Percentile of durations in seconds, in milliseconds."""
    return percentile(samples, p) * 1000


def queries(n: int, seed: int) -> list[str]:
    """n distinct questions of 10-20 words (about 13-25 tokens)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(9, 19))]
        out.append(" ".join(words).capitalize() + f" #{i}?")
    return out


def load_baseline(rev: str) -> ModuleType:
    """local.py as it was at git revision ``rev``, importable beside the working tree's."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:src/memshelf/embeddings/local.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="embed-bench-")) / "baseline_local.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_local", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def interleaved(
    calls: Mapping[str, Callable[[Any], object]], items: list[Any], block: int = 25
) -> dict[str, Any]:
    """Seconds per call of every call on every item, taking turns a block of items at a time.

    Blocks (not single items) keep each call's weights warm in the cache, as in real use;
    taking turns spreads the machine's other load over all calls alike.
    """
    times: dict[str, list[float]] = {name: [] for name in calls}
    for start in range(0, len(items), block):
        for name, call in calls.items():
            for item in items[start : start + block]:
                t0 = time.perf_counter()
                call(item)
                times[name].append(time.perf_counter() - t0)
    return times


def cos_dist(a: np.ndarray, b: np.ndarray) -> float:
    """Largest cosine distance between matching rows, in float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(np.max(1 - cos))


def before_after(
    embedders: dict[str, Any], qs: list[str], docs: list[str], rows: list[dict[str, Any]]
) -> None:
    q_times = interleaved({n: e.embed_query for n, e in embedders.items()}, qs)
    batches = [docs[i : i + BATCH] for i in range(0, len(docs), BATCH)]
    d_times = interleaved({n: e.embed_documents for n, e in embedders.items()}, batches, 1)
    vectors = {
        n: (np.array([e.embed_query(t) for t in qs[:200]]), np.array(e.embed_documents(docs)))
        for n, e in embedders.items()
    }
    names = list(embedders)
    ref_q, ref_d = vectors[names[0]]
    print("| embedder | query p50 ms | query p95 ms | docs/s (batches of 64) | max cos dist |")
    print("|---|---|---|---|---|")
    for name in names:
        vq, vd = vectors[name]
        dist = max(cos_dist(vq, ref_q), cos_dist(vd, ref_d))
        row = {
            "table": "before_after",
            "embedder": name,
            "query_p50_ms": pct(q_times[name], 50),
            "query_p95_ms": pct(q_times[name], 95),
            "docs_per_s": len(docs) / sum(d_times[name]),
            "max_cos_dist": dist,
        }
        rows.append(row)
        print(
            f"| {name} | {row['query_p50_ms']:.2f} | {row['query_p95_ms']:.2f} | "
            f"{row['docs_per_s']:.0f} | {dist:.1e} |"
        )


Stages = tuple[
    Callable[[str], dict[str, np.ndarray]],
    Callable[[dict[str, np.ndarray]], np.ndarray],
    Callable[[np.ndarray, dict[str, np.ndarray]], object],
]


def current_stages(embedder: Any) -> Stages:
    """The working tree's query path, through its own methods."""
    from memshelf.embeddings.local import _mean_unit

    session, outputs = embedder._session, embedder._outputs
    return (
        embedder._feeds_one,
        lambda feeds: session.run(outputs, feeds)[0],
        lambda hidden, feeds: _mean_unit(hidden[0]).tolist(),
    )


def baseline_stages(embedder: Any) -> Stages:
    """The query path before this change (``embed_array([text])``), step for step."""
    tokenizer, session = embedder._tokenizer, embedder._session

    def tokenize(text: str) -> dict[str, np.ndarray]:
        encodings = tokenizer.encode_batch([text])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def pool(hidden: np.ndarray, feeds: dict[str, np.ndarray]) -> object:
        mask = feeds["attention_mask"]
        summed = (hidden * mask[..., None]).sum(axis=1)
        pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)[0].tolist()

    return tokenize, lambda feeds: session.run(None, feeds)[0], pool


def stages(
    embedders: dict[str, Any], splits: dict[str, Stages], qs: list[str], rows: list[dict[str, Any]]
) -> None:
    """Each embedder's query path stage by stage, then whole, on the same query in turn."""
    names = ["tokenize", "onnx run", "pool + normalise", "whole"]
    times: dict[str, dict[str, list[float]]] = {e: {n: [] for n in names} for e in embedders}
    for start in range(0, len(qs), 25):
        for name, embedder in embedders.items():
            tokenize, run, pool = splits[name]
            samples = times[name]
            for text in qs[start : start + 25]:
                t0 = time.perf_counter()
                feeds = tokenize(text)
                t1 = time.perf_counter()
                hidden = run(feeds)
                t2 = time.perf_counter()
                pool(hidden, feeds)
                t3 = time.perf_counter()
                embedder.embed_query(text)
                t4 = time.perf_counter()
                for stage, took in zip(names, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    samples[stage].append(took)
    print("| stage | " + " | ".join(f"{e} p50 ms | {e} p95 ms" for e in embedders) + " |")
    print("|---" * (1 + 2 * len(embedders)) + "|")
    for stage in names:
        cells = []
        for name in embedders:
            p50, p95 = pct(times[name][stage], 50), pct(times[name][stage], 95)
            rows.append({"table": "stages", "embedder": name, "stage": stage, "p50_ms": p50})
            cells.append(f"{p50:.3f} | {p95:.3f}")
        print(f"| {stage} | " + " | ".join(cells) + " |")
    cells = []
    for name in embedders:
        stage_sum = sum(pct(times[name][s], 50) for s in names[:3])
        cells.append(f"{pct(times[name]['whole'], 50) - stage_sum:.3f} | ")
    print("| python overhead (whole p50 - stage p50s) | " + " | ".join(cells) + " |")


def session(
    threads: int,
    level: str = "all",
    parallel: bool = False,
    disabled: tuple[str, ...] = (),
    config: dict[str, str] | None = None,
) -> Any:
    """A session on the bundled model; ``config`` holds extra session config entries."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 2 if parallel else 1
    options.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    options.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    for key, value in {"session.intra_op.allow_spinning": "0", **(config or {})}.items():
        options.add_session_config_entry(key, value)
    return ort.InferenceSession(
        str(default_model_path()),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(disabled),
    )


def bound_runner(sess: Any) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """Run through IO binding into one preallocated output buffer (reused every call)."""
    buffer = np.empty((1, 512, 384), dtype=np.float32)
    output = sess.get_outputs()[0].name

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        binding = sess.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        length = feeds["input_ids"].shape[1]
        out = buffer[:, :length]
        binding.bind_output(output, "cpu", 0, np.float32, list(out.shape), out.ctypes.data)
        sess.run_with_iobinding(binding)
        return out

    return run


def options(
    embedder: LocalEmbedder, qs: list[str], docs: list[str], rows: list[dict[str, Any]]
) -> None:
    """Session variants on the same queries: the run alone, and run + pooling + a 100k scan.

    The scan (100,000 x 384 float32 dot products and a top-10, as an exact vector search
    does) shows whether threads left spinning after a run slow down what follows it.
    """
    cores = os.cpu_count() or 1
    spin = "session.intra_op.allow_spinning"
    spin_us = "session.intra_op.spin_duration_us"
    no_sln = ("SkipLayerNormFusion",)
    variants = {
        f"intra {cores}, no spinning, ALL (before)": session(cores),
        f"intra {cores}, no spinning, ALL but SkipLayerNormFusion (after)": session(
            cores, disabled=no_sln
        ),
        "intra 1, ALL but SkipLayerNormFusion": session(1, disabled=no_sln),
        f"intra {cores}, spinning (default length)": session(
            cores, disabled=no_sln, config={spin: "1"}
        ),
        f"intra {cores}, spinning 100 us": session(
            cores, disabled=no_sln, config={spin: "1", spin_us: "100"}
        ),
        f"intra {cores}, spinning 1000 us": session(
            cores, disabled=no_sln, config={spin: "1", spin_us: "1000"}
        ),
        f"intra {cores}, ORT_ENABLE_EXTENDED": session(cores, level="extended"),
        f"intra {cores}, ORT_ENABLE_BASIC": session(cores, level="basic"),
        f"intra {cores}, inter 2, ORT_PARALLEL": session(cores, disabled=no_sln, parallel=True),
    }
    outputs = embedder._outputs
    runners = {name: runner(s, outputs) for name, s in variants.items()}
    after = list(variants.values())[1]
    runners[f"intra {cores}, (after) + IO binding, reused output buffer"] = bound_runner(after)
    matrix = np.random.default_rng(0).standard_normal((100_000, 384), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)

    def then_scan(run: Callable[[dict[str, np.ndarray]], np.ndarray]) -> Callable[[Any], object]:
        def call(feeds: dict[str, np.ndarray]) -> object:
            scores = matrix @ _unit_mean(run(feeds))
            return np.argpartition(scores, -10)[-10:]

        return call

    feeds = [embedder._feeds_one(t) for t in qs]
    for run in runners.values():
        for f in feeds[:20]:
            run(f)
    q_times = interleaved(runners, feeds)
    s_times = interleaved({n: then_scan(r) for n, r in runners.items()}, feeds)
    batch_feeds = []
    for i in range(0, len(docs), BATCH):
        enc = embedder._tokenizer.encode_batch(docs[i : i + BATCH])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        batch_feeds.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids})
    batch_runners = {n: r for n, r in runners.items() if "IO binding" not in n}
    d_times = interleaved(batch_runners, batch_feeds, 1)
    print(
        "| session | onnx run p50 ms | onnx run p95 ms | + 100k scan p50 ms | + 100k scan p95 ms "
        "| docs/s (batches of 64) |"
    )
    print("|---|---|---|---|---|---|")
    for name in runners:
        row = {
            "table": "options",
            "session": name,
            "run_p50_ms": pct(q_times[name], 50),
            "run_p95_ms": pct(q_times[name], 95),
            "scan_p50_ms": pct(s_times[name], 50),
            "scan_p95_ms": pct(s_times[name], 95),
            "docs_per_s": len(docs) / sum(d_times[name]) if name in d_times else None,
        }
        rows.append(row)
        docs_cell = f"{row['docs_per_s']:.0f}" if name in d_times else "n/a"
        print(
            f"| {name} | {row['run_p50_ms']:.2f} | {row['run_p95_ms']:.2f} | "
            f"{row['scan_p50_ms']:.2f} | {row['scan_p95_ms']:.2f} | {docs_cell} |"
        )


def runner(sess: Any, outputs: list[str]) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        hidden: np.ndarray = sess.run(outputs, feeds)[0]
        return hidden

    return run


def _unit_mean(hidden: np.ndarray) -> np.ndarray:
    pooled: np.ndarray = hidden[0].mean(axis=0)
    unit: np.ndarray = pooled / np.linalg.norm(pooled)
    return unit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--docs", type=int, default=640, help="documents for docs/s")
    parser.add_argument("--baseline", default=None, help="git revision to compare, e.g. HEAD")
    parser.add_argument("--skip", default="", help="tables to skip: before_after,stages,options")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/embed_bench.json"))
    args = parser.parse_args()
    skip = set(args.skip.split(",")) - {""}
    qs, docs = queries(args.queries, seed=1), queries(args.docs, seed=2)
    current = LocalEmbedder()
    embedders: dict[str, Any] = {"working tree": current}
    if args.baseline:
        baseline = load_baseline(args.baseline).LocalEmbedder(tokenizer_path=TOKENIZER_PATH)
        embedders = {f"before ({args.baseline})": baseline}
        embedders["after (working tree)"] = current
    for e in embedders.values():
        for text in qs[:20]:
            e.embed_query(text)
        e.embed_documents(docs[:BATCH])
    print(
        f"# {os.cpu_count()} cores, {platform.platform()}, Python {sys.version.split()[0]}, "
        f"onnxruntime {ort.__version__}, {args.queries} queries, {args.docs} docs"
    )
    rows: list[dict[str, Any]] = []
    start = cpu_busy()
    if "before_after" not in skip:
        print()
        before_after(embedders, qs, docs, rows)
    if "stages" not in skip:
        print()
        splits = {
            n: baseline_stages(e) if n.startswith("before") else current_stages(e)
            for n, e in embedders.items()
        }
        stages(embedders, splits, qs, rows)
    if "options" not in skip:
        print()
        options(current, qs, docs, rows)
    end = cpu_busy()
    wall = end[0] - start[0]
    others = max(0.0, (end[1] - start[1]) - (end[2] - start[2])) / (wall * (os.cpu_count() or 1))
    print(f"\n# {wall:.0f} s; other processes used {100 * others:.0f}% of the CPUs meanwhile")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
