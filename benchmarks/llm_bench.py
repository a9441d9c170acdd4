"""Local chat model speed: time to first token and decode rate at two prompt sizes.

    python benchmarks/llm_bench.py --runs 3

Every prompt is fresh random text, so no cached prefix helps; the numbers are
what a cold prompt of that size costs on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

from memshelf.llm import LocalChatModel, chat_model

WORDS = (
    "deploy cloud memory agent python rust server query vector index user thread fact store "
    "latency token model cache search recall answer question code test build release"
).split()


def prompt_of(llama: Any, tokens: int, rng: random.Random) -> str:
    text = ""
    while len(llama.tokenize(text.encode(), add_bos=False)) < tokens:
        text += " ".join(rng.choice(WORDS) for _ in range(50)) + ". "
    ids = llama.tokenize(text.encode(), add_bos=False)[:tokens]
    return str(llama.detokenize(ids).decode("utf-8", errors="ignore"))


def one_run(llama: Any, prompt: str, max_tokens: int) -> dict[str, float]:
    llama.reset()
    start = time.perf_counter()
    first = last = None
    count = 0
    stream = llama.create_completion(
        prompt + "\nSummarise the text above in one sentence:",
        max_tokens=max_tokens,
        temperature=0.0,
        stream=True,
    )
    for _ in stream:
        now = time.perf_counter()
        first = first or now
        last = now
        count += 1
    assert first is not None and last is not None
    return {
        "first_token_s": first - start,
        "decode_tokens_per_s": (count - 1) / (last - first) if count > 1 else 0.0,
        "tokens": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,2000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/llm_bench.json"))
    args = parser.parse_args()
    model = chat_model("local")
    assert isinstance(model, LocalChatModel)
    llama = model._llama()
    llama.set_cache(None)  # measure cold prompts only
    rng = random.Random(0)
    print(f"# {model.model_name}, {os.cpu_count()} cores, {platform.platform()}")
    print("| prompt tokens | first token s (median) | prompt tokens/s | decode tokens/s |")
    print("|---|---|---|---|")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        runs = [
            one_run(llama, prompt_of(llama, size, rng), args.max_tokens) for _ in range(args.runs)
        ]
        ttft = statistics.median(r["first_token_s"] for r in runs)
        decode = statistics.median(r["decode_tokens_per_s"] for r in runs)
        rows.append({"prompt_tokens": size, "first_token_s": ttft, "decode_tokens_per_s": decode})
        print(f"| {size} | {ttft:.2f} | {size / ttft:.0f} | {decode:.1f} |", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
