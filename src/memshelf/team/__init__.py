"""The team: a supervisor and workers (researcher, verifier, writer) sharing a namespace
of verified findings, ``("team", <team>, "findings")``, on the same store as users' shelves.

A fact one worker verifies today is free for every worker tomorrow; a claim is shared
only once its quote has been re-read in its source and judged to support it.
"""

from memshelf.team.findings import (
    Cause,
    Evidence,
    findings_namespace,
    list_findings,
    propose,
    search_findings,
)
from memshelf.team.graph import TeamResult, build_team, open_team, run_team
from memshelf.team.nodes import Limits
from memshelf.team.sources import Sources
from memshelf.team.verify import Verdict, check, quote_in, verify_finding

__all__ = [
    "Cause",
    "Evidence",
    "Limits",
    "Sources",
    "TeamResult",
    "Verdict",
    "build_team",
    "check",
    "findings_namespace",
    "list_findings",
    "open_team",
    "propose",
    "quote_in",
    "run_team",
    "search_findings",
    "verify_finding",
]
