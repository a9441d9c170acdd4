"""``memshelf eval``: measure recall quality on LoCoMo-format data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from memshelf.cli._common import ModelSpec, build_settings

app = typer.Typer(help="Evaluate recall quality.", no_args_is_help=True)


@app.command("locomo")
def locomo(
    data: Annotated[Path, typer.Option("--data", help="LoCoMo-format JSON file.")],
    conversations: Annotated[
        str | None, typer.Option("--conversations", help="e.g. 0-4 or 1,3 (default: all).")
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help="turns (no LLM) or facts (LLM).")] = "turns",
    k: Annotated[str, typer.Option("--k", help="Cut-offs, e.g. 5,10,25.")] = "5,10,25",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
    limit_sessions: Annotated[
        int | None,
        typer.Option("--limit-sessions", min=1, help="facts mode: first N sessions only."),
    ] = None,
    model: ModelSpec = None,
    baselines: Annotated[
        bool,
        typer.Option("--baselines/--no-baselines", help="Also score BM25 and dense InMemoryStore."),
    ] = True,
    cv: Annotated[
        bool,
        typer.Option(
            "--cv", help="Leave-one-conversation-out tuning over the candidate configurations."
        ),
    ] = False,
    keyword_weight: Annotated[
        float | None,
        typer.Option(
            "--keyword-weight", min=0.0, max=1.0, help="Store fusion weight, 0-1 (default 0.2)."
        ),
    ] = None,
    diversity: Annotated[
        float | None,
        typer.Option(
            "--diversity", min=0.0, max=1.0, help="MMR weight of the reranking, 0-1 (default 0)."
        ),
    ] = None,
    pool: Annotated[
        int | None,
        typer.Option(
            "--pool",
            min=1,
            help="Candidates fetched per wanted result (default 3: 75 for the top 25).",
        ),
    ] = None,
    speaker_boost: Annotated[
        float | None,
        typer.Option(
            "--speaker-boost",
            min=0.0,
            max=1.0,
            help="Boost for the speaker a question names, 0-1 (default 0.2).",
        ),
    ] = None,
    unnamed_query: Annotated[
        float | None,
        typer.Option(
            "--unnamed-query",
            min=0.0,
            max=1.0,
            help="Weight of a second search without the speakers a question names, 0-1 "
            "(default 0.6; 0: off).",
        ),
    ] = None,
    embed_cache: Annotated[
        Path | None,
        typer.Option(
            "--embed-cache",
            help="Keep document vectors in this SQLite file between runs (with --cv: queries too).",
        ),
    ] = None,
) -> None:
    """Evidence recall@k of memshelf vs BM25 and dense InMemoryStore, plus a PNG plot."""
    from rich.progress import Progress

    from memshelf.embeddings import CachedDocuments, from_settings
    from memshelf.eval import load, run_locomo, select
    from memshelf.eval.report import markdown, plot

    if mode not in ("turns", "facts"):
        raise typer.BadParameter("use --mode turns or --mode facts")
    if cv and mode != "turns":
        raise typer.BadParameter("--cv tunes turn retrieval: use it with --mode turns")
    settings = build_settings(model=model)
    picked = select(load(data), conversations)
    embedder, dims = from_settings(settings)
    if embed_cache is not None:
        from memshelf.eval.embcache import DiskCachedEmbeddings

        embedder = DiskCachedEmbeddings(embedder, dims, embed_cache, queries=cv)
    if cv:
        from memshelf.eval.cv import cv_markdown, run_cv

        try:
            report = run_cv(picked, embedder, dims, ks=_cutoffs(k), baselines=baselines)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        typer.echo(cv_markdown(report))
        if json_out:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(report, indent=2) + "\n")
            typer.echo(f"report: {json_out}")
        return
    chat = None
    if mode == "facts":
        from memshelf.llm import chat_model

        chat = chat_model(settings=settings)
    from dataclasses import replace

    from memshelf.eval.runner import LOCOMO_RANKING

    try:
        ranking = replace(
            LOCOMO_RANKING,
            diversity=LOCOMO_RANKING.diversity if diversity is None else diversity,
            pool=LOCOMO_RANKING.pool if pool is None else pool,
            subject_boost=LOCOMO_RANKING.subject_boost if speaker_boost is None else speaker_boost,
            unnamed_query=LOCOMO_RANKING.unnamed_query if unnamed_query is None else unnamed_query,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    total = sum(len(c.scored_questions()) for c in picked)
    with Progress(transient=True) as bar:
        task = bar.add_task("questions", total=total)
        report = run_locomo(
            picked,
            embedder if embed_cache is not None else CachedDocuments(embedder, dims),
            dims,
            ks=_cutoffs(k),
            mode=mode,
            model=chat,
            limit_sessions=limit_sessions,
            keyword_weight=keyword_weight,
            ranking=ranking,
            baselines=baselines,
            progress=lambda n: bar.advance(task, n),
        )
    typer.echo(markdown(report))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        png = json_out.with_suffix(".png")
        typer.echo(f"report: {json_out}" + (f", plot: {png}" if plot(report, png) else ""))


def _cutoffs(spec: str) -> list[int]:
    """``--k 5,10,25``: positive whole numbers, or a usage error that says so."""
    try:
        ks = [int(x) for x in spec.split(",")]
    except ValueError:
        ks = []
    if not ks or min(ks) < 1:
        raise typer.BadParameter(
            f"use positive whole numbers such as 5,10,25 (got {spec!r}).", param_hint="--k"
        )
    return ks


@app.command("qa")
def qa(
    data: Annotated[Path, typer.Option("--data", help="LoCoMo-format JSON file.")],
    model: ModelSpec = None,
    judge_model: Annotated[
        str | None, typer.Option("--judge", help="Judge model (default: the answer model).")
    ] = None,
    conversations: Annotated[
        str | None, typer.Option("--conversations", help="e.g. 0-4 or 1,3 (default: all).")
    ] = None,
    questions: Annotated[
        int | None,
        typer.Option("--questions", min=1, help="Only the first N questions per conversation."),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Memories recalled per question.")] = 10,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="turns (raw turns), facts (what the memory engine extracts; LLM) or both.",
        ),
    ] = "turns",
    limit_sessions: Annotated[
        int | None,
        typer.Option(
            "--limit-sessions",
            min=1,
            help="First N sessions only, and only questions whose evidence lies inside them "
            "(facts mode with the local model: ~10 s per turn).",
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the report (with every answer) here.")
    ] = None,
) -> None:
    """Answer questions from recalled memories; report LLM-judge accuracy (J) and token F1."""
    from rich.progress import Progress

    from memshelf.embeddings import CachedDocuments, from_settings
    from memshelf.eval import load, select
    from memshelf.eval.qa import qa_markdown, qa_modes, run_qa, session_slice
    from memshelf.llm import chat_model

    modes = qa_modes(mode)
    settings = build_settings(model=model)
    picked = select(load(data), conversations)
    total = len(modes) * sum(
        len(session_slice(c, limit_sessions).scored_questions()[:questions]) for c in picked
    )
    embedder, dims = from_settings(settings)
    answerer = chat_model(settings=settings)
    grader = chat_model(judge_model, settings=settings) if judge_model else answerer
    with Progress(transient=True) as bar:
        task = bar.add_task("questions", total=total)
        report = run_qa(
            picked,
            CachedDocuments(embedder, dims),
            dims,
            answerer,
            grader,
            k=k,
            per_conversation=questions,
            mode=mode,
            limit_sessions=limit_sessions,
            progress=lambda n: bar.advance(task, n),
            note=lambda line: typer.echo(line, err=True),
        )
    typer.echo(qa_markdown(report))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        typer.echo(f"report: {json_out}")
