"""Extraction quality against LoCoMo's gold observations, with the real local models.

    python benchmarks/extraction_bench.py --data ../shared/data/locomo-dev.json \
        --sessions 1 --json extraction.json

For the first ``--sessions`` sessions of each conversation, every turn goes through
the memory engine's extraction (speaker as the user, the session date as the message
date). Extracted facts and the gold ``observation`` facts of the same sessions are
embedded by the local MiniLM embedder and matched by cosine similarity: an extracted
fact is precise if some gold fact of its speaker scores at least ``--threshold``; a
gold fact is recalled if some extracted fact of its speaker does. ``--pairs N`` prints
N matched pairs closest to the threshold, for checking it by hand.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from memshelf.config import Settings
from memshelf.embeddings import from_settings
from memshelf.llm import chat_model
from memshelf.memory import extract_facts


def _unit(vectors: list[list[float]]) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-9)


def conversation(
    raw: dict[str, Any], sessions: int, model: Any
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], float, int]:
    """(speaker, extracted fact) and (speaker, gold fact) pairs, extraction seconds, turns."""
    conv = raw["conversation"]
    extracted: list[tuple[str, str]] = []
    seconds, turns = 0.0, 0
    for n in range(1, sessions + 1):
        date = str(conv.get(f"session_{n}_date_time", ""))
        for turn in conv.get(f"session_{n}", []):
            start = time.perf_counter()
            facts = extract_facts(model, turn["text"], at=date, speaker=turn["speaker"])
            seconds += time.perf_counter() - start
            turns += 1
            extracted += [(turn["speaker"], f.text) for f in facts]
    return extracted, conversation_gold(raw, sessions), seconds, turns


def _speaker_of(raw: dict[str, Any], text: str) -> str:
    a, b = raw["conversation"]["speaker_a"], raw["conversation"]["speaker_b"]
    return b if b in text and (a not in text or text.index(b) < text.index(a)) else a


def _neutral(speaker: str, text: str) -> str:
    """The speaker's name (or "The user") as "The person" on both sides: a shared name
    alone must not make two different facts look alike, nor its absence unlike."""
    text = re.sub(r"\b[Tt]he user\b", "The person", text)
    return re.sub(rf"\b{re.escape(speaker)}\b", "The person", text)


def conversation_gold(raw: dict[str, Any], sessions: int) -> list[tuple[str, str]]:
    gold_all = raw["observation"]
    return [
        (speaker, fact)
        for n in range(1, sessions + 1)
        for speaker, facts in (gold_all.get(f"session_{n}_observation") or {}).items()
        for fact, _ in facts
    ]


def score(
    embed: Any, extracted: list[tuple[str, str]], gold: list[tuple[str, str]], threshold: float
) -> tuple[float, float, list[tuple[float, str, str]]]:
    if not extracted or not gold:
        return 0.0, 0.0, []
    e = _unit(embed.embed_documents([_neutral(s, t) for s, t in extracted]))
    g = _unit(embed.embed_documents([_neutral(s, t) for s, t in gold]))
    sims = e @ g.T
    same = np.array([[a == b for b, _ in gold] for a, _ in extracted])
    sims = np.where(same, sims, -1.0)
    precise = float((sims.max(axis=1) >= threshold).mean())
    recalled = float((sims.max(axis=0) >= threshold).mean())
    pairs = [
        (float(sims[i].max()), extracted[i][1], gold[int(sims[i].argmax())][1])
        for i in range(len(extracted))
    ]
    return precise, recalled, pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--rescore", type=Path, help="Score the facts saved in an earlier --json, no model."
    )
    args = parser.parse_args()
    settings = Settings()
    model = None if args.rescore else chat_model(settings=settings)
    embed, _ = from_settings(settings)
    rows, every_pair = [], []
    saved = (
        {r["conversation"]: r for r in json.loads(args.rescore.read_text())["conversations"]}
        if args.rescore
        else {}
    )
    for raw in json.loads(args.data.read_text(encoding="utf-8")):
        if saved:
            old = saved[raw.get("sample_id")]
            extracted = [tuple(pair) for pair in old.get("extracted_by_speaker", [])] or [
                (_speaker_of(raw, text), text) for text in old.get("extracted", [])
            ]  # files written before speakers were saved: the name in the fact says whose
            gold = conversation_gold(raw, args.sessions)
            seconds, turns = old["extraction_s_per_turn"] * old["turns"], old["turns"]
        else:
            extracted, gold, seconds, turns = conversation(raw, args.sessions, model)
        precise, recalled, pairs = score(embed, extracted, gold, args.threshold)
        every_pair += pairs
        rows.append(
            {
                "conversation": raw.get("sample_id"),
                "turns": turns,
                "gold_facts": len(gold),
                "extracted_facts": len(extracted),
                "precision": round(precise, 3),
                "recall": round(recalled, 3),
                "extraction_s_per_turn": round(seconds / max(turns, 1), 2),
                "extracted_by_speaker": extracted,
            }
        )
        shown = {k: v for k, v in rows[-1].items() if k != "extracted_by_speaker"}
        print(json.dumps(shown), flush=True)
    every_pair.sort(key=lambda p: abs(p[0] - args.threshold))
    print(f"\n{args.pairs} pairs closest to the threshold {args.threshold}:")
    for sim, fact, gold_fact in every_pair[: args.pairs]:
        verdict = "MATCH" if sim >= args.threshold else "no   "
        print(f"{sim:.3f}  {verdict}  {fact!r}  ~  {gold_fact!r}")
    report = {
        "threshold": args.threshold,
        "embedder": settings.embeddings,
        "chat_model": settings.chat_model,
        "mean_precision": round(float(np.mean([r["precision"] for r in rows])), 3),
        "mean_recall": round(float(np.mean([r["recall"] for r in rows])), 3),
        "conversations": rows,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "conversations"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
