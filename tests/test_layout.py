"""The package's layout (issue 22): the contract is cited where it lives, and the shared pieces sit where no import has
to run up the pipeline to reach them."""

from __future__ import annotations

from pathlib import Path

import effprof

PACKAGE = Path(effprof.__file__).parent
TESTS = Path(__file__).parent


def _sources(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*.py")]


def test_no_code_cites_a_design_document_outside_the_repository():
    """DESIGN.md was never in the repository; the contract and data flow are ARCHITECTURE.md's."""
    citing = [str(p) for p in _sources(PACKAGE, TESTS) if p != Path(__file__) and "DESIGN" in p.read_text(encoding="utf-8")]
    assert citing == []
