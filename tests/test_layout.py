"""The package's layout (issue 22): the contract is cited where it lives, and the shared pieces sit where no import has
to run up the pipeline to reach them."""

from __future__ import annotations

import re
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


CITATION = re.compile(r"ARCHITECTURE\.md § ([A-Z][A-Za-z' -]*[A-Za-z])")


def cited_sections_missing(text: str, headings: list[str]) -> list[str]:
    """The sections `text` cites as `ARCHITECTURE.md § Name` that no heading of ARCHITECTURE.md starts with."""
    return [name for name in CITATION.findall(text) if not any(h.startswith(name) for h in headings)]


def test_every_cited_section_of_architecture_exists():
    """ARCHITECTURE.md is in the repository and every `ARCHITECTURE.md § Section` in the code names one of its headings."""
    doc = PACKAGE.parent / "ARCHITECTURE.md"
    headings = [line.lstrip("#").strip() for line in doc.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    missing = {str(p): m for p in _sources(PACKAGE, TESTS) if p != Path(__file__)
               if (m := cited_sections_missing(p.read_text(encoding="utf-8"), headings))}
    assert missing == {}
    assert cited_sections_missing("see ARCHITECTURE.md § Nowhere Land", headings) == ["Nowhere Land"]  # the check can fail


def _imports(module: str) -> tuple[set[str], set[str]]:
    """(every effprof module `module` imports anywhere, those it imports inside a function), as dotted names."""
    import ast

    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = PACKAGE.parent / module.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    everywhere: set[str] = set()
    inside: set[str] = set()

    def names(node: ast.AST) -> set[str]:
        if isinstance(node, ast.Import):
            return {a.name for a in node.names if a.name.startswith("effprof")}
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("effprof"):
            return {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        return set()

    for node in ast.walk(tree):
        everywhere |= names(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                inside |= names(inner)
    return everywhere, inside


# The lazy imports that ran up the layers to break a cycle (issue 22): the shared piece now lives where both ends reach
# it going down, so each pair imports one way only, at the top of the file.
NEVER = [
    ("effprof.registry", "effprof.modules"),  # factory targets reach the registry through registry.add_maker
    ("effprof.plugins", "effprof.modules"),  # loading builds nothing; the contract builds (effprof.contract)
    ("effprof.plugins", "effprof.contract"),  # the commands pass contract.validate to load_plugin
    ("effprof.plugins", "effprof.measure.harness"),  # the structural and FLOP checks measure; loading does not
    ("effprof.plugins", "effprof.measure.isolate"),
    ("effprof.executors.ray", "effprof.runner"),  # a point's memory estimate is the cost model's (cost_model.estimated_bytes)
    ("effprof.check.baseline", "effprof.check.claims"),
]
AT_THE_TOP = [
    ("effprof.measure.breakdown", "effprof.modules.wrap"),
    ("effprof.measure.isolate", "effprof.plugins"),
    ("effprof.measure.isolate", "effprof.modules"),
    ("effprof.modules.factory", "effprof.plugins"),
    ("effprof.check.claims", "effprof.check.baseline"),
    ("effprof.runner", "effprof.cost_model"),
]


def test_the_cycles_that_lazy_imports_hid_are_gone():
    for module, other in NEVER:
        everywhere, _ = _imports(module)
        assert not any(n == other or n.startswith(other + ".") for n in everywhere), f"{module} imports {other}"
    for module, other in AT_THE_TOP:
        everywhere, inside = _imports(module)
        assert any(n == other or n.startswith(other + ".") for n in everywhere), f"{module} no longer imports {other}"
        assert not any(n == other or n.startswith(other + ".") for n in inside), f"{module} imports {other} inside a function"


def test_the_import_checker_sees_an_import_inside_a_function():
    """The negative: effprof.check.claims still imports effprof.runner inside a function (not one of issue 22's pairs)."""
    everywhere, inside = _imports("effprof.check.claims")
    assert "effprof.runner" in everywhere and "effprof.runner" in inside
