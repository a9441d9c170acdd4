"""Real English sentences for the ANN benchmarks, embedded by the local model and cached.

Random vectors are the worst case for graph indexes and say little about real
text, so the approximate-index benchmarks use sentences people wrote: the
docstrings of the Python standard library and of the packages installed beside
memshelf, and the turns and observations of the LoCoMo dev conversations.
Held-out sentences and LoCoMo questions are the queries. Everything is built
offline; the embedded matrix is cached under ``benchmarks/out/cache`` (not
committed), keyed by the sentence count and seed.

    python benchmarks/corpus.py --sentences 120000
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

CACHE = Path(__file__).resolve().parent / "out" / "cache"
LOCOMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo-dev.json"
DEFAULT_SENTENCES = 102_000
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")
_SPACE = re.compile(r"\s+")
_CODEISH = re.compile(r"(>>>|::|\{|\}|==|\w\(|\)\.|\w_\w|`|\[\d|=\w|<\w|\w/\w|\\)")


def _docstrings(path: Path) -> Iterator[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="ignore"))
    except (SyntaxError, ValueError, RecursionError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                yield doc


def _sentences(text: str) -> Iterator[str]:
    for para in text.split("\n\n"):
        flat = _SPACE.sub(" ", para).strip()
        for sentence in _SPLIT.split(flat):
            words = sentence.split()
            if not 6 <= len(words) <= 40 or not sentence[0].isupper():
                continue
            if sentence[-1] not in ".!?" or _CODEISH.search(sentence):
                continue
            letters = sum(c.isalpha() or c == " " for c in sentence)
            if letters >= 0.9 * len(sentence):
                yield sentence


def _locomo() -> Iterator[tuple[str, str]]:
    """("doc", turn or observation) and ("question", question) from LoCoMo dev."""
    if not LOCOMO.exists():
        return
    for conv in json.loads(LOCOMO.read_text()):
        for key, turns in conv["conversation"].items():
            if key.startswith("session_") and isinstance(turns, list):
                for turn in turns:
                    yield "doc", f"{turn['speaker']}: {turn['text']}"
        for session in conv.get("observation", {}).values():
            for facts in session.values():
                for fact in facts:
                    yield "doc", fact[0] if isinstance(fact, list) else str(fact)
        for qa in conv["qa"]:
            yield "question", str(qa["question"])


def _roots() -> list[Path]:
    """The standard library and every site-packages folder on this machine."""
    found = {Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])}
    found.update(Path(p) for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    found.add(
        Path(sys.base_prefix)
        / "lib"
        / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        / "site-packages"
    )
    found.add(Path("/usr/lib/python3/dist-packages"))
    return sorted(p for p in found if p.is_dir())


def _texts(root: Path) -> Iterator[str]:
    for path in sorted(root.rglob("*")):
        if "site-packages" in path.relative_to(root).parts:
            continue  # the standard library's folder holds one; it is a root of its own
        if path.suffix == ".py":
            yield from _docstrings(path)
        elif path.suffix in (".rst", ".md", ".txt") and path.stat().st_size < 2_000_000:
            yield path.read_text(encoding="utf-8", errors="ignore")


NAMES = [
    "Sukhveer",
    "Maria",
    "Jon",
    "Aiko",
    "Tomas",
    "Priya",
    "Olu",
    "Grace",
    "Mateo",
    "Lena",
    "Caroline",
    "Melanie",
    "Joanna",
    "Nate",
    "Deborah",
    "Andrew",
    "Audrey",
    "Evan",
    "Sam",
    "Tim",
    "John",
    "Maya",
    "Ravi",
    "Chen",
    "Fatima",
]
FACTS = [
    "{n} prefers {o} over {p} for most projects.",
    "{n} is learning {o} in the evenings because work needs it.",
    "{n} said that {o} broke last week and {p} fixed it.",
    "{n}'s team moved from {o} to {p} this quarter.",
    "{n} wants answers about {o} to include a short example.",
    "{n} has been using {o} at home since last spring.",
    "{n} dislikes {o} and avoids it whenever {p} is an option.",
    "{n} plans to try {o} on the next trip with friends.",
    "{n} asked for a reminder to renew the {o} subscription.",
    "{n} recommended {o} to a colleague who struggled with {p}.",
]
THINGS = [
    "Postgres",
    "SQLite",
    "Redis",
    "Kubernetes",
    "Terraform",
    "Rust",
    "Go",
    "TypeScript",
    "Python notebooks",
    "vim",
    "Emacs",
    "Grafana",
    "AWS Lambda",
    "Fly.io",
    "the gym",
    "yoga",
    "climbing",
    "espresso",
    "green tea",
    "ramen",
    "sourdough",
    "jazz records",
    "the piano",
    "oil painting",
    "pottery classes",
    "running shoes",
    "a road bike",
    "camping gear",
    "Berlin",
    "Lisbon",
    "Tokyo",
    "the library card",
    "the streaming service",
    "board games",
    "chess",
    "the vegetable garden",
    "bird watching",
    "photography",
    "a standing desk",
    "mechanical keyboards",
]


def _facts(count: int, seen: set[str], seed: int) -> list[str]:
    """Generated personal facts, the kind of sentence a memory shelf holds."""
    rng = random.Random(seed)
    out: list[str] = []
    tries = 0
    while len(out) < count and tries < count * 20:
        tries += 1
        o, p = rng.sample(THINGS, 2)
        text = rng.choice(FACTS).format(n=rng.choice(NAMES), o=o, p=p)
        if text.lower() not in seen:
            seen.add(text.lower())
            out.append(text)
    return out


def _real(seen: set[str]) -> tuple[list[str], list[str]]:
    """LoCoMo turns and observations, then docstring and doc sentences; and the questions."""
    cached = CACHE / "real-sentences.json"
    if cached.exists():
        saved = json.loads(cached.read_text())
        seen.update(t.lower() for t in saved["docs"])
        return saved["docs"], saved["questions"]
    docs: list[str] = []
    questions: list[str] = []
    for kind, text in _locomo():
        if kind == "question":
            questions.append(text)
        elif text.lower() not in seen:
            seen.add(text.lower())
            docs.append(text)
    for root in _roots():
        for text in _texts(root):
            for sentence in _sentences(text):
                if sentence.lower() not in seen:
                    seen.add(sentence.lower())
                    docs.append(sentence)
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"docs": docs, "questions": questions}))
    return docs, questions


def collect(limit: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``limit`` distinct sentences (shuffled; real ones first, topped up with generated
    facts) and the LoCoMo questions, all offline."""
    seen: set[str] = set()
    docs, questions = _real(seen)
    docs = docs + _facts(max(0, limit - len(docs)), seen, seed)
    random.Random(seed).shuffle(docs)
    return docs[:limit], questions


def load(sentences: int, seed: int = 0) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """(texts, unit vectors, questions, question vectors), embedded once and cached."""
    from memshelf.embeddings import shared_local_embedder

    stem = CACHE / f"sentences-{sentences}-{seed}"
    texts_file, mat_file = stem.with_suffix(".json"), stem.with_suffix(".npy")
    qmat_file = stem.with_name(stem.name + "-questions.npy")
    if texts_file.exists() and mat_file.exists() and qmat_file.exists():
        saved = json.loads(texts_file.read_text())
        return saved["docs"], np.load(mat_file), saved["questions"], np.load(qmat_file)
    docs, questions = collect(sentences, seed)
    embedder = shared_local_embedder()
    start = time.perf_counter()
    mat = np.zeros((len(docs), 384), dtype=np.float32)
    for base in range(0, len(docs), 4096):
        mat[base : base + 4096] = embedder.embed_array(docs[base : base + 4096])
        print(f"embedded {base + 4096:,} / {len(docs):,}", file=sys.stderr, flush=True)
    qmat = embedder.embed_array(questions)
    print(f"embedding took {time.perf_counter() - start:.0f} s", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    texts_file.write_text(json.dumps({"docs": docs, "questions": questions}))
    np.save(mat_file, mat)
    np.save(qmat_file, qmat)
    return docs, mat, questions, qmat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=DEFAULT_SENTENCES)
    parser.add_argument("--count-only", action="store_true")
    args = parser.parse_args()
    if args.count_only:
        docs, questions = _real(set())
        print(f"{len(docs):,} distinct real sentences, {len(questions):,} questions")
        for s in docs[:15]:
            print(" ", s)
        return
    docs, mat, questions, _ = load(args.sentences)
    print(f"{len(docs):,} sentences, matrix {mat.shape}, {len(questions):,} questions")


if __name__ == "__main__":
    main()
