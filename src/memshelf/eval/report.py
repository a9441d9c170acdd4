"""Reports of an evaluation: the JSON as given, a Markdown table, a PNG plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memshelf.eval.locomo import CATEGORY_NAMES

BASELINE_LABELS = {
    "bm25": "BM25, raw turns",
    "dense_inmemory": "dense InMemoryStore, raw turns",
    "bm25_doc": "BM25, memshelf's document text",
    "dense_inmemory_doc": "dense InMemoryStore, memshelf's document text",
}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def markdown(report: dict[str, Any]) -> str:
    ks = list(report["recall"])
    head = "| retriever | " + " | ".join(f"R@{k}" for k in ks) + " |"
    lines = [
        f"LoCoMo evidence recall, mode `{report['mode']}`, {report['questions']} questions "
        f"(categories 1-4); memshelf query latency p50 {report['latency_ms']['p50']:.1f} ms, "
        f"p95 {report['latency_ms']['p95']:.1f} ms.",
        "",
        head,
        "|---|" + "---|" * len(ks),
        "| memshelf (hybrid) | " + " | ".join(_pct(report["recall"][k]) for k in ks) + " |",
    ]
    for name, base in (report.get("baselines") or {}).items():
        label = BASELINE_LABELS.get(name, name)
        lines.append(f"| {label} | " + " | ".join(_pct(base["recall"][k]) for k in ks) + " |")
    lines += [
        "",
        "| category | " + " | ".join(f"R@{k}" for k in ks) + " |",
        "|---|" + "---|" * len(ks),
    ]
    for cat, row in report["by_category"].items():
        label = f"{cat} {CATEGORY_NAMES.get(int(cat), '')}".strip()
        lines.append(f"| {label} | " + " | ".join(_pct(row[k]) for k in ks) + " |")
    return "\n".join(lines) + "\n"


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, or None when it is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot(report: dict[str, Any], path: Path) -> bool:
    """Recall@k per retriever as a PNG; False (and no file) when matplotlib is missing."""
    plt = pyplot()
    if plt is None:
        return False
    ks = [int(k) for k in report["recall"]]
    series = {"memshelf": report["recall"]}
    series.update({k: v["recall"] for k, v in (report.get("baselines") or {}).items()})
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in series.items():
        ax.plot(ks, [100 * values[str(k)] for k in ks], marker="o", label=name)
    ax.set_xlabel("k")
    ax.set_ylabel("evidence recall@k (%)")
    ax.set_title(f"LoCoMo ({report['mode']}, {report['questions']} questions)")
    ax.set_ylim(0, 100)
    save(plt, fig, ax, path)
    return True


def save(plt: Any, fig: Any, ax: Any, path: Path) -> None:
    """Grid, legend, tight layout, PNG at 120 dpi, figure closed: every plot's ending."""
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
