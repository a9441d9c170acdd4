"""Review of issue 14's unreachable-vs-rejected split (adversarial), and the corpus
server's refusal of paths outside its pages. Real sockets on 127.0.0.1, a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from langgraph.store.base import BaseStore

from memshelf.llm.fake import ScriptedChatModel
from memshelf.team.corpus_server import serve_corpus
from memshelf.team.findings import get_finding
from memshelf.team.verify import verify_finding
from tests.team._quoted import TEAM, verified_quote


def test_a_page_that_answers_200_without_text_rejects_the_claim(
    store: BaseStore, model: ScriptedChatModel, tmp_path: Path
) -> None:
    with verified_quote(store, model, tmp_path) as (_, page, sources, key):
        # the page replaced by a file that is not text: the server answers, with no quote
        page.body, page.kind = b"\x00\x01", "application/octet-stream"
        verdict = verify_finding(store, TEAM, key, sources, model)
    assert verdict.unreachable is None
    assert get_finding(store, TEAM, key).value["status"] == "rejected"


@pytest.mark.parametrize(
    "path",
    ["/../../config.py", "/..%2f..%2fconfig.py", "/%2e%2e/%2e%2e/corpus_server.py",
     "//etc/passwd", "/../notes/apiary-log.md", "/pages", "/%2e%2e"],
)  # fmt: skip
def test_the_corpus_server_serves_only_its_pages(path: str) -> None:
    with serve_corpus() as origin:
        with httpx.Client() as client:
            request = client.build_request("GET", origin)
            request.url = request.url.copy_with(raw_path=path.encode())
            answer = client.send(request)
        assert answer.status_code == 404, (path, answer.text[:200])
        assert httpx.get(f"{origin}/queen.html").status_code == 200
